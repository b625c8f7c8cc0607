"""The servos' EEPROM calibration, read, compared and written through our driver against the
simulator."""

from __future__ import annotations

from dataclasses import replace

import pytest

from so101d.arm import Arm
from so101d.calibration.eeprom import (
    CALIBRATION_REGISTERS,
    EepromDifference,
    compare_servo_calibration,
    read_servo_calibration,
)
from so101d.calibration.model import DEFAULT_MOTOR_MAP, ArmCalibration, MotorCalibration, Role
from so101d.feetech import BusTimeout, FeetechBus
from so101d.motion import ArmGuard, MotionGate, MotionLimits
from so101d.sim import VirtualArm
from tests.test_calibration_healthy import REAL_FOLLOWER, arm, changed

IDS = [1, 2, 3, 4, 5, 6]
LIMITS = MotionLimits(margin_deg=2, max_speed_dps=180, max_dt_s=0.02)


def expected(follower: VirtualArm) -> ArmCalibration:
    return {
        joint: MotorCalibration(**fields)
        for joint, fields in follower.expected_calibration().items()
    }


@pytest.fixture
def calibrated(follower: VirtualArm) -> ArmCalibration:
    """Put the arm's proper calibration in its EEPROM as a factory would (not via the bus)."""
    calibration = expected(follower)
    for motor in calibration.values():
        for field, name in CALIBRATION_REGISTERS.items():
            follower.servo(motor.id).set(name, getattr(motor, field))
    return calibration


def test_reading_the_servos_gives_their_calibration(
    calibrated: ArmCalibration, bus: FeetechBus
) -> None:
    assert read_servo_calibration(bus) == calibrated


def test_a_matching_file_has_no_differences(calibrated: ArmCalibration, bus: FeetechBus) -> None:
    assert compare_servo_calibration(bus, calibrated) == []


def test_each_difference_is_reported(calibrated: ArmCalibration, bus: FeetechBus) -> None:
    elbow, gripper = calibrated["elbow_flex"], calibrated["gripper"]
    in_file = changed(calibrated, "elbow_flex", homing_offset=elbow.homing_offset - 100)
    in_file = changed(in_file, "gripper", range_max=gripper.range_max - 1)
    differences = compare_servo_calibration(bus, in_file)
    assert differences == [
        EepromDifference(
            "elbow_flex", 3, "homing_offset", elbow.homing_offset - 100, elbow.homing_offset
        ),
        EepromDifference("gripper", 6, "range_max", gripper.range_max - 1, gripper.range_max),
    ]
    assert differences[1].describe() == (
        f"gripper (motor 6) range_max: the file says {gripper.range_max - 1}, "
        f"the servo holds {gripper.range_max}"
    )


def test_id_and_drive_mode_are_not_compared(calibrated: ArmCalibration, bus: FeetechBus) -> None:
    assert compare_servo_calibration(bus, changed(calibrated, "wrist_flex", drive_mode=1)) == []


def test_writing_a_file_persists_and_leaves_torque_off(
    follower: VirtualArm, bus: FeetechBus
) -> None:
    new = arm(REAL_FOLLOWER, (-2047, -1, -300, 17, -1024, 2047))
    for motor_id in IDS:  # as the daemon leaves a follower: holding, EEPROM locked
        bus.write("Torque_Enable", motor_id, 1)
        bus.write("Lock", motor_id, 1)
    guard = ArmGuard(
        Arm(Role.FOLLOWER, bus.port, DEFAULT_MOTOR_MAP, new, bus=bus), MotionGate(), LIMITS
    )
    guard.write_calibration(new)  # the daemon's way: torque confirmed off first
    assert compare_servo_calibration(bus, new) == []
    assert follower.servo(1).get("Homing_Offset") == -2047
    assert bus.sync_read("Torque_Enable", IDS) == dict.fromkeys(IDS, 0)
    assert bus.sync_read("Lock", IDS) == dict.fromkeys(IDS, 0)
    follower.power_cycle()
    assert compare_servo_calibration(bus, new) == []


def test_a_missing_motor_raises_the_drivers_error(
    calibrated: ArmCalibration, bus: FeetechBus
) -> None:
    calibration = {**calibrated, "gripper": replace(calibrated["gripper"], id=9)}
    with pytest.raises(BusTimeout):
        compare_servo_calibration(bus, calibration)
