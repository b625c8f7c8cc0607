"""LeRobot's own teleop loop, timed: run by ``so101d bench`` with LeRobot's interpreter.

    python lerobot_loop.py LEADER FOLLOWER LEADER_CAL_DIR FOLLOWER_CAL_DIR FPS SECONDS
        COUNT_SECONDS OUT.json

SOLeader and SOFollower (ids ``bench_leader``, ``bench_follower``) connect as
``lerobot-teleoperate`` connects them, then ``teleop_loop`` runs: a short warm-up,
``SECONDS`` timed (CPU of this process; each cycle from ``get_observation`` to the end of
``send_action``), then ``COUNT_SECONDS`` with system calls counted. ``FPS`` 0 runs
unthrottled. Imports LeRobot and the standard library only, never so101d.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from measuring import SyscallCounter, cpu_seconds, save_result  # type: ignore[import-not-found]

WARM_UP_S = 0.5
UNTHROTTLED_FPS = 1_000_000  # teleop_loop sleeps 1/fps minus the cycle: never, here


def main() -> None:
    from lerobot.processor import make_default_processors  # type: ignore[import-not-found]
    from lerobot.robots.so_follower import (  # type: ignore[import-not-found]
        SOFollower,
        SOFollowerRobotConfig,
    )
    from lerobot.scripts.lerobot_teleoperate import teleop_loop  # type: ignore[import-not-found]
    from lerobot.teleoperators.so_leader import (  # type: ignore[import-not-found]
        SOLeader,
        SOLeaderTeleopConfig,
    )

    leader_port, follower_port, leader_dir, follower_dir = sys.argv[1:5]
    fps = int(float(sys.argv[5])) or UNTHROTTLED_FPS
    seconds, count_seconds, out = float(sys.argv[6]), float(sys.argv[7]), sys.argv[8]
    teleop = SOLeader(
        SOLeaderTeleopConfig(port=leader_port, id="bench_leader", calibration_dir=Path(leader_dir))
    )
    robot = SOFollower(
        SOFollowerRobotConfig(
            port=follower_port, id="bench_follower", calibration_dir=Path(follower_dir)
        )
    )
    teleop.connect()
    robot.connect()
    starts: list[float] = []
    ends: list[float] = []
    observe, act = robot.get_observation, robot.send_action

    def timed_observation() -> Any:
        starts.append(time.perf_counter())
        return observe()

    def timed_action(action: Any) -> Any:
        sent = act(action)
        ends.append(time.perf_counter())
        return sent

    robot.get_observation, robot.send_action = timed_observation, timed_action

    def run(duration: float) -> None:
        teleop_loop(teleop, robot, fps, *make_default_processors(), duration=duration)

    run(WARM_UP_S)
    starts.clear()
    ends.clear()
    cpu, began = cpu_seconds(), time.perf_counter()
    run(seconds)
    cpu, elapsed = cpu_seconds() - cpu, time.perf_counter() - began
    durations = [end - start for start, end in zip(starts, ends, strict=False)]
    ends.clear()
    with SyscallCounter() as counter:
        run(count_seconds)
    counted = len(ends)
    teleop.disconnect()
    robot.disconnect()
    save_result(out, cpu, elapsed, durations, counter, counted)


if __name__ == "__main__":
    main()
