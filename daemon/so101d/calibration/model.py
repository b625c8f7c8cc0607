"""What a calibration is: per joint, the values LeRobot's ``MotorCalibration`` holds.

An arm's calibration maps joint names to :class:`MotorCalibration` in file order (LeRobot
writes the motors in their bus order, shoulder_pan first, gripper last).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeAlias

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
WRIST_ROLL = "wrist_roll"
GRIPPER = "gripper"

DEFAULT_MOTOR_MAP: Mapping[str, int] = MappingProxyType(
    {joint: motor_id for motor_id, joint in enumerate(JOINTS, start=1)}
)

# Keys of one joint's entry, in the order LeRobot's dataclass (and so its JSON) has them.
FIELDS = ("id", "drive_mode", "homing_offset", "range_min", "range_max")


class Role(enum.StrEnum):
    LEADER = "leader"  # moved by hand; LeRobot calls it a teleoperator
    FOLLOWER = "follower"  # mirrors the leader; LeRobot calls it a robot


@dataclass(frozen=True)
class MotorCalibration:
    """One joint, as in LeRobot: positions and offset in encoder ticks (0..4095)."""

    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int

    @property
    def span(self) -> int:
        """The calibrated range of motion in ticks (what the reference bands describe)."""
        return self.range_max - self.range_min

    @property
    def midpoint(self) -> float:
        """Centre of the range: where LeRobot's DEGREES mode puts 0 degrees."""
        return (self.range_min + self.range_max) / 2

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in FIELDS}


ArmCalibration: TypeAlias = dict[str, MotorCalibration]
