"""Healthy arms must pass: real and reference calibrations that the validator has to accept.

A validator that rejects a healthy arm is as wrong as one that passes a wrapped one. The
other calibration tests build their cases from the calibrations defined here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from so101d.calibration.files import serialize_calibration
from so101d.calibration.model import JOINTS, ArmCalibration, MotorCalibration, Role
from so101d.calibration.validate import Level, validate_file

Ranges = Mapping[str, tuple[int, int]]

# NVIDIA's published SO-101 follower means, each range centred where homing puts 2047.
REFERENCE_FOLLOWER: Ranges = {
    "shoulder_pan": (685, 3410),
    "shoulder_lift": (872, 3222),
    "elbow_flex": (936, 3158),
    "wrist_flex": (883, 3212),
    "wrist_roll": (0, 4095),
    "gripper": (1310, 2785),
}
# A real pair calibrated with LeRobot 0.4.3 (ranges as printed by lerobot-calibrate): the
# follower's shoulder_pan and shoulder_lift lie far outside the published bands.
REAL_FOLLOWER: Ranges = {
    "shoulder_pan": (884, 3320),
    "shoulder_lift": (756, 3353),
    "elbow_flex": (868, 3061),
    "wrist_flex": (805, 3153),
    "wrist_roll": (0, 4095),
    "gripper": (1899, 3363),
}
REAL_LEADER: Ranges = {
    "shoulder_pan": (754, 3230),
    "shoulder_lift": (871, 3271),
    "elbow_flex": (862, 3054),
    "wrist_flex": (829, 3169),
    "wrist_roll": (0, 4095),
    "gripper": (1903, 3135),
}
# Before LeRobot 0.4.3 the SO-101 wrist_roll was swept by hand like every other joint.
OLD_LEROBOT_FOLLOWER: Ranges = {**REFERENCE_FOLLOWER, "wrist_roll": (131, 3952)}
HOMING_OFFSETS = (-747, 1203, -2047, 2047, 0, -12)


def arm(ranges: Ranges, homing_offsets: tuple[int, ...] = HOMING_OFFSETS) -> ArmCalibration:
    """A calibration with the SO-101 motor map, drive_mode 0 and the given ranges."""
    return {
        joint: MotorCalibration(motor_id, 0, offset, *ranges[joint])
        for motor_id, (joint, offset) in enumerate(zip(JOINTS, homing_offsets, strict=True), 1)
    }


def changed(calibration: ArmCalibration, joint: str, **fields: int) -> ArmCalibration:
    """A copy with some fields of one joint changed."""
    return {**calibration, joint: replace(calibration[joint], **fields)}


def write(path: Path, content: ArmCalibration | bytes) -> Path:
    """Write a calibration (in LeRobot's format) or raw bytes; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content if isinstance(content, bytes) else serialize_calibration(content)
    path.write_bytes(data)
    return path


HEALTHY = {
    "reference follower": (Role.FOLLOWER, arm(REFERENCE_FOLLOWER)),
    "real follower": (Role.FOLLOWER, arm(REAL_FOLLOWER)),
    "real leader": (Role.LEADER, arm(REAL_LEADER)),
    "old LeRobot follower": (Role.FOLLOWER, arm(OLD_LEROBOT_FOLLOWER)),
}


@pytest.mark.parametrize("name", HEALTHY)
@pytest.mark.parametrize("give_role", [True, False])
def test_healthy_arms_are_usable(tmp_path: Path, name: str, give_role: bool) -> None:
    role, calibration = HEALTHY[name]
    path = write(tmp_path / f"{role}.json", calibration)
    report = validate_file(path, role if give_role else None)
    assert report.usable, [f.message for f in report.findings]
    assert report.calibration == calibration


def test_the_reference_follower_draws_no_warning(tmp_path: Path) -> None:
    path = write(tmp_path / "f.json", arm(REFERENCE_FOLLOWER))
    report = validate_file(path, Role.FOLLOWER)
    assert report.findings == ()
    assert report.verdict == "ok"


def test_real_arms_outside_the_bands_get_warnings_only(tmp_path: Path) -> None:
    path = write(tmp_path / "f.json", arm(REAL_FOLLOWER))
    report = validate_file(path, Role.FOLLOWER)
    assert report.verdict == "warning"
    assert {f.level for f in report.findings} == {Level.WARNING}
    assert {f.joint for f in report.findings} >= {"shoulder_pan", "shoulder_lift"}
