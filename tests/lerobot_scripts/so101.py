"""Shared helpers for scripts run by LeRobot's interpreter (they never import so101d)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from lerobot.motors import Motor, MotorNormMode
from lerobot.motors.feetech import FeetechMotorsBus
from lerobot.robots.so_follower import SOFollower, SOFollowerRobotConfig
from lerobot.teleoperators.so_leader import SOLeader, SOLeaderTeleopConfig

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


def emit(**result: Any) -> None:
    """Report one result to the test (a line the test parses)."""
    print("@@ " + json.dumps(result), flush=True)


def bus(port: str) -> FeetechMotorsBus:
    motors = {
        name: Motor(
            i, "sts3215", MotorNormMode.RANGE_0_100 if name == "gripper" else MotorNormMode.DEGREES
        )
        for i, name in enumerate(JOINTS, start=1)
    }
    return FeetechMotorsBus(port=port, motors=motors)


def follower(port: str, ident: str, calibration_dir: str) -> SOFollower:
    config = SOFollowerRobotConfig(port=port, id=ident, calibration_dir=Path(calibration_dir))
    return SOFollower(config)


def leader(port: str, ident: str, calibration_dir: str) -> SOLeader:
    config = SOLeaderTeleopConfig(port=port, id=ident, calibration_dir=Path(calibration_dir))
    return SOLeader(config)


def describe(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "mro": [cls.__name__ for cls in type(exc).__mro__],
        "message": str(exc),
    }


def fail(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(1)
