"""so101d's own teleop loop, timed: run by ``so101d bench`` in a process of its own.

    python so101d_loop.py CONFIG.toml SECONDS COUNT_SECONDS OUT.json [--unthrottled]
        [--read-only-leader]

The pair in CONFIG is opened as the daemon opens it (exclusive ports, the guard on the
follower, LeRobot's servo settings), engaged, then mirrored by :class:`TeleopLoop`: a short
warm-up, ``SECONDS`` timed (CPU of this process, each cycle's duration from the end of the
tick's wait to the end of the cycle), then ``COUNT_SECONDS`` with system calls counted.
It is run as a file, with ``PYTHONPATH`` naming the checkout to measure, and uses only what
every so101d checkout since the motion guard has, so one commit can be compared with another.
``--unthrottled`` never sleeps between cycles. ``--read-only-leader`` writes nothing to the
leader (a real arm): no settings; the loop itself only reads it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from so101d import teleop
from so101d.checking import load_pair_calibration
from so101d.config import PairConfig, load_config
from so101d.motion import MotionGate
from so101d.motion.settings import setting_changes
from so101d.pair import arm_files, arm_guard, open_arms

sys.path.insert(0, str(Path(__file__).parent))
from measuring import SyscallCounter, cpu_seconds, save_result  # type: ignore[import-not-found]

WARM_UP_S = 0.5


class _Cycles:
    """Cycle start and end times: the tick's wait returning, then the loop's on_cycle."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []

    def started(self) -> None:
        self.starts.append(time.perf_counter())

    def ended(self) -> None:
        self.ends.append(time.perf_counter())

    def durations(self) -> list[float]:
        return [end - start for start, end in zip(self.starts, self.ends, strict=False)]

    def clear(self) -> None:
        self.starts.clear()
        self.ends.clear()


def _timed_ticker(cycles: _Cycles, unthrottled: bool) -> type[teleop.Ticker]:
    class TimedTicker(teleop.Ticker):
        def wait(self) -> None:
            if not unthrottled:
                super().wait()
            cycles.started()

    return TimedTicker


def _until(seconds: float) -> Callable[[], bool]:
    end = time.monotonic() + seconds
    return lambda: time.monotonic() < end


def measure(config: PairConfig, calibration_dir: Path, args: list[str]) -> None:
    seconds, count_seconds, out = float(args[0]), float(args[1]), args[2]
    cycles = _Cycles()
    teleop.Ticker = _timed_ticker(cycles, "--unthrottled" in args)  # type: ignore[misc]
    calibration = load_pair_calibration(calibration_dir, *arm_files(config))
    gate = MotionGate()
    with open_arms(config, calibration) as (leader, follower):
        guard = arm_guard(follower, config, gate)
        if "--read-only-leader" not in args:
            arm_guard(leader, config, gate).apply_settings(setting_changes(leader))
        guard.apply_settings(setting_changes(follower))
        keep_going = _until(0.0)
        loop = teleop.TeleopLoop(leader, guard, config, lambda: keep_going(), cycles.ended)
        try:
            keep_going = _until(30.0)
            if not loop.engage():
                raise RuntimeError("the follower did not reach the leader within 30 s")
            keep_going = _until(WARM_UP_S)
            loop.run()
            cycles.clear()
            cpu, began = cpu_seconds(), time.perf_counter()
            keep_going = _until(seconds)
            loop.run()
            cpu, elapsed = cpu_seconds() - cpu, time.perf_counter() - began
            durations = cycles.durations()
            cycles.clear()
            with SyscallCounter([leader.bus, follower.bus]) as counter:
                keep_going = _until(count_seconds)
                loop.run()
            counted = len(cycles.ends)
        finally:
            guard.release()
    save_result(out, cpu, elapsed, durations, counter, counted)


def main() -> None:
    config = load_config(sys.argv[1])
    (pair,) = config.pairs.values()
    measure(pair, config.calibration_dir, sys.argv[2:])


if __name__ == "__main__":
    main()
