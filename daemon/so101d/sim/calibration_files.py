"""LeRobot calibration files that match virtual arms, so anything can run against them."""

from __future__ import annotations

from pathlib import Path

from so101d.calibration.locate import calibration_path
from so101d.calibration.model import MotorCalibration, Role
from so101d.calibration.store import save_calibration
from so101d.sim.arm import VirtualArm

_EEPROM_FIELDS = {
    "homing_offset": "Homing_Offset",
    "range_min": "Min_Position_Limit",
    "range_max": "Max_Position_Limit",
}


def save_matching_calibration(arm: VirtualArm, root: Path, arm_id: str) -> Path:
    """Write what a careful LeRobot calibration of ``arm`` records, in the >= 0.4.3 layout
    under ``root`` (``robots/so_follower/<id>.json`` or ``teleoperators/so_leader/<id>.json``)."""
    path = calibration_path(root, Role(arm.role), arm_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    calibration = {
        joint: MotorCalibration(**values) for joint, values in arm.expected_calibration().items()
    }
    save_calibration(path, calibration)
    return path


def calibrate_like_lerobot(arm: VirtualArm, root: Path, arm_id: str) -> Path:
    """What ``lerobot-calibrate`` leaves behind: the values in the servos' EEPROM and the file."""
    for motor, values in enumerate(arm.expected_calibration().values(), start=1):
        for field, register in _EEPROM_FIELDS.items():
            arm.servo(motor).set(register, values[field])
    return save_matching_calibration(arm, root, arm_id)
