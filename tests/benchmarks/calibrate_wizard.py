"""Benchmark: `so101d calibrate` on the simulator, from the command to a saved file.

    .venv/bin/python -m tests.benchmarks.calibrate_wizard [--wrap]

Runs the real daemon on a virtual pair, then the wizard in a pseudo-terminal with a scripted
hand: neutral pose, Enter, the simulator's sweep (every joint stop to stop, one after the
other), Enter, y. Prints the screen at each step (the recorded terminal session) and the
times: the whole run, and how much of it was the hand's sweep. ``--wrap``: shoulder_lift's
neutral pose is near its lower stop (LeRobot's flow would record a wrapped range).
"""

from __future__ import annotations

import sys
import time

from so101d.sim import VirtualArm
from tests.calibrating import MIDDLE, pose
from tests.daemon_harness import Daemon, PairSetup, short_tmpdir
from tests.pty_terminal import Terminal


def main(wrap: bool) -> None:
    with (
        short_tmpdir() as work,
        VirtualArm("leader", work / "so101_leader", seed=1) as leader,
        VirtualArm("follower", work / "so101_follower", seed=2) as follower,
    ):
        pair = PairSetup("main", leader, follower)
        pair.save_calibrations(work / "calibration")
        config = (
            f'calibration_dir = "{work / "calibration"}"\nsocket = "{work / "api.sock"}"\n\n'
            + pair.toml()
        )
        leader.set_motion("wave")
        daemon = Daemon(config, work)
        try:
            daemon.wait_state("teleop")
            pose(leader, {**MIDDLE, "shoulder_lift": 0.05 if wrap else 0.5})
            started = time.monotonic()
            terminal = Terminal("calibrate", "--config", str(daemon.config), "--arm", "leader")
            frames = []
            try:
                terminal.wait_for("then press Enter to capture")
                time.sleep(0.3)  # let a frame with readings come
                frames.append(terminal.screen())
                terminal.type("\r")
                terminal.wait_for("then press Enter (done)")
                sweep_started = time.monotonic()
                leader.set_motion("sweep")
                while not leader.sweep_done():
                    time.sleep(0.1)
                sweep_s = time.monotonic() - sweep_started
                time.sleep(0.3)
                frames.append(terminal.screen())
                terminal.type("\r")
                terminal.wait_for("Press y to save")
                frames.append(terminal.screen())
                terminal.type("y")
                code = terminal.wait()
                total_s = time.monotonic() - started
                frames.append(terminal.screen())
            finally:
                terminal.close()
        finally:
            daemon.terminate()
            daemon.close()
    for frame in frames:
        print("-" * 100)
        print(frame.rstrip())
    print("-" * 100)
    print(
        f"exit {code}: {total_s:.1f} s from `so101d calibrate` to the saved file, "
        f"{sweep_s:.1f} s of it the hand's sweep"
    )


if __name__ == "__main__":
    main("--wrap" in sys.argv[1:])
