"""Raw encoder ticks to LeRobot's normalized positions and back, exactly as LeRobot computes.

This mirrors ``MotorsBus._normalize`` / ``_unnormalize`` (identical in every LeRobot version
since 0.3), including the order of float operations, ``int()`` truncation toward zero, the
clamping of RANGE modes and DEGREES being neither clamped nor affected by ``drive_mode``. Any
"improvement" here would make so101d's teleop differ from LeRobot's on the same files.
"""

from __future__ import annotations

import enum

from so101d.calibration.model import GRIPPER, JOINTS, MotorCalibration
from so101d.feetech.registers import MAX_POSITION


class NormMode(enum.StrEnum):
    """LeRobot's ``MotorNormMode`` (same values)."""

    RANGE_0_100 = "range_0_100"
    RANGE_M100_100 = "range_m100_100"
    DEGREES = "degrees"


def joint_norm_modes(use_degrees: bool) -> dict[str, NormMode]:
    """The mode of each SO-101 joint: the gripper is always 0..100; the others follow
    ``use_degrees`` (LeRobot's default is True from 0.4.4, False before)."""
    body = NormMode.DEGREES if use_degrees else NormMode.RANGE_M100_100
    return {joint: NormMode.RANGE_0_100 if joint == GRIPPER else body for joint in JOINTS}


def normalize(raw: float, calibration: MotorCalibration, mode: NormMode) -> float:
    """A position read from the servo (ticks) as LeRobot reports it."""
    low, high = _range(calibration)
    if mode is NormMode.DEGREES:
        mid = (low + high) / 2
        return (raw - mid) * 360 / MAX_POSITION
    bounded = min(high, max(low, raw))
    if mode is NormMode.RANGE_M100_100:
        norm = (((bounded - low) / (high - low)) * 200) - 100
        return -norm if calibration.drive_mode else norm
    norm = ((bounded - low) / (high - low)) * 100
    return 100 - norm if calibration.drive_mode else norm


def unnormalize(value: float, calibration: MotorCalibration, mode: NormMode) -> int:
    """A LeRobot goal position as the ticks to send. DEGREES results may leave 0..4095."""
    return int(goal_position(value, calibration, mode))


def goal_position(value: float, calibration: MotorCalibration, mode: NormMode) -> float:
    """The position ``unnormalize`` truncates: LeRobot's arithmetic before its ``int()``."""
    low, high = _range(calibration)
    if mode is NormMode.DEGREES:
        mid = (low + high) / 2
        return (value * MAX_POSITION / 360) + mid
    if mode is NormMode.RANGE_M100_100:
        value = -value if calibration.drive_mode else value
        bounded = min(100.0, max(-100.0, value))
        return ((bounded + 100) / 200) * (high - low) + low
    value = 100 - value if calibration.drive_mode else value
    bounded = min(100.0, max(0.0, value))
    return (bounded / 100) * (high - low) + low


def _range(calibration: MotorCalibration) -> tuple[int, int]:
    if calibration.range_min == calibration.range_max:
        raise ValueError(
            f"invalid calibration for motor {calibration.id}: range_min and range_max are "
            f"both {calibration.range_min}"
        )
    return calibration.range_min, calibration.range_max
