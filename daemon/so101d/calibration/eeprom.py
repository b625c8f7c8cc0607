"""The calibration a servo holds in its EEPROM, compared with and written from a file.

LeRobot's ``is_calibrated`` compares exactly homing_offset, range_min and range_max with the
file (never id or drive_mode); so do we. Bus errors propagate as the driver's typed errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from so101d.calibration.model import DEFAULT_MOTOR_MAP, ArmCalibration, MotorCalibration
from so101d.feetech.bus import FeetechBus

# Calibration field -> servo register, in the order LeRobot's write_calibration writes them.
CALIBRATION_REGISTERS: Mapping[str, str] = {
    "homing_offset": "Homing_Offset",
    "range_min": "Min_Position_Limit",
    "range_max": "Max_Position_Limit",
}


@dataclass(frozen=True)
class EepromDifference:
    joint: str
    motor_id: int
    field: str
    in_file: int
    on_servo: int

    def describe(self) -> str:
        return (
            f"{self.joint} (motor {self.motor_id}) {self.field}: the file says {self.in_file}, "
            f"the servo holds {self.on_servo}"
        )


def read_servo_calibration(
    bus: FeetechBus, motor_map: Mapping[str, int] = DEFAULT_MOTOR_MAP
) -> ArmCalibration:
    """The calibration stored in the servos (drive_mode 0, as LeRobot reads it)."""
    ids = list(motor_map.values())
    values = {field: bus.sync_read(reg, ids) for field, reg in CALIBRATION_REGISTERS.items()}
    return {
        joint: MotorCalibration(
            id=motor_id,
            drive_mode=0,
            homing_offset=values["homing_offset"][motor_id],
            range_min=values["range_min"][motor_id],
            range_max=values["range_max"][motor_id],
        )
        for joint, motor_id in motor_map.items()
    }


def compare_servo_calibration(
    bus: FeetechBus, calibration: ArmCalibration
) -> list[EepromDifference]:
    """Where the servos differ from a (validated) calibration; empty when they agree."""
    motor_map = {joint: motor.id for joint, motor in calibration.items()}
    on_servo = read_servo_calibration(bus, motor_map)
    return [
        EepromDifference(joint, motor.id, field, getattr(motor, field), servo_value)
        for joint, motor in calibration.items()
        for field in CALIBRATION_REGISTERS
        if (servo_value := getattr(on_servo[joint], field)) != getattr(motor, field)
    ]


def write_servo_calibration(bus: FeetechBus, calibration: ArmCalibration) -> None:
    """Write a (validated) calibration to the servos, as LeRobot's calibrate does.

    The caller has confirmed torque off on every motor (a new homing offset must not make a
    powered joint jump): in the daemon that is ``ArmGuard.write_calibration``. Per motor:
    Lock 0 (so the EEPROM keeps the values across a power cycle), then the three registers.
    Lock stays 0, as after ``lerobot-calibrate``.
    """
    for motor in calibration.values():
        bus.write("Lock", motor.id, 0)
        for field, reg in CALIBRATION_REGISTERS.items():
            bus.write(reg, motor.id, getattr(motor, field))
