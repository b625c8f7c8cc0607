"""The STS3215 control table and the value encodings used on the wire.

Addresses, sizes and sign bits follow LeRobot's ``STS_SMS_SERIES_CONTROL_TABLE`` and
``STS_SMS_SERIES_ENCODINGS_TABLE`` (v0.4.3 and later). Multi-byte values are little-endian
(protocol 0). Some registers are sign-magnitude: the sign lives in one bit, the magnitude in
the bits below it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

STS3215_MODEL_NUMBER = 777
ENCODER_RESOLUTION = 4096
MAX_POSITION = ENCODER_RESOLUTION - 1
HALF_TURN = MAX_POSITION // 2  # 2047: where LeRobot's homing puts a joint's middle

BAUD_RATES = {0: 1_000_000, 1: 500_000, 2: 250_000, 3: 128_000, 4: 115_200}


class Area(enum.Enum):
    EEPROM = "eeprom"  # persists across power cycles (when Lock is 0)
    RAM = "ram"
    FACTORY = "factory"


@dataclass(frozen=True)
class Register:
    name: str
    address: int
    size: int
    area: Area
    readonly: bool = False
    sign_bit: int | None = None

    @property
    def end(self) -> int:
        return self.address + self.size

    def encode(self, value: int) -> bytes:
        """Encode a signed user value into the register's little-endian bytes."""
        return self.to_raw(value).to_bytes(self.size, "little")

    def decode(self, data: bytes) -> int:
        """Decode the register's little-endian bytes into a signed user value."""
        if len(data) != self.size:
            raise ValueError(f"{self.name}: expected {self.size} byte(s), got {len(data)}")
        return self.from_raw(int.from_bytes(data, "little"))

    def to_raw(self, value: int) -> int:
        """A signed user value as the unsigned number the register holds."""
        raw = encode_sign_magnitude(value, self.sign_bit) if self.sign_bit is not None else value
        if not 0 <= raw < 1 << (8 * self.size):
            raise ValueError(f"{self.name}: value {value} does not fit in {self.size} byte(s)")
        return raw

    def from_raw(self, raw: int) -> int:
        """The unsigned number the register holds as a signed user value."""
        return decode_sign_magnitude(raw, self.sign_bit) if self.sign_bit is not None else raw


def encode_sign_magnitude(value: int, sign_bit: int) -> int:
    """Sign in ``sign_bit``, magnitude below it; ValueError when the magnitude does not fit."""
    limit = (1 << sign_bit) - 1
    if abs(value) > limit:
        raise ValueError(f"magnitude {abs(value)} exceeds {limit} (sign bit {sign_bit})")
    return (1 << sign_bit) | -value if value < 0 else value


def decode_sign_magnitude(raw: int, sign_bit: int) -> int:
    """Inverse of :func:`encode_sign_magnitude`; bits above the sign bit are ignored."""
    magnitude = raw & ((1 << sign_bit) - 1)
    return -magnitude if raw & (1 << sign_bit) else magnitude


_E, _R, _F = Area.EEPROM, Area.RAM, Area.FACTORY

_TABLE = (
    Register("Firmware_Major_Version", 0, 1, _E, readonly=True),
    Register("Firmware_Minor_Version", 1, 1, _E, readonly=True),
    Register("Model_Number", 3, 2, _E, readonly=True),
    Register("ID", 5, 1, _E),
    Register("Baud_Rate", 6, 1, _E),
    Register("Return_Delay_Time", 7, 1, _E),
    Register("Response_Status_Level", 8, 1, _E),
    Register("Min_Position_Limit", 9, 2, _E),
    Register("Max_Position_Limit", 11, 2, _E),
    Register("Max_Temperature_Limit", 13, 1, _E),
    Register("Max_Voltage_Limit", 14, 1, _E),
    Register("Min_Voltage_Limit", 15, 1, _E),
    Register("Max_Torque_Limit", 16, 2, _E),
    Register("Phase", 18, 1, _E),
    Register("Unloading_Condition", 19, 1, _E),
    Register("LED_Alarm_Condition", 20, 1, _E),
    Register("P_Coefficient", 21, 1, _E),
    Register("D_Coefficient", 22, 1, _E),
    Register("I_Coefficient", 23, 1, _E),
    Register("Minimum_Startup_Force", 24, 2, _E),
    Register("CW_Dead_Zone", 26, 1, _E),
    Register("CCW_Dead_Zone", 27, 1, _E),
    Register("Protection_Current", 28, 2, _E),
    Register("Angular_Resolution", 30, 1, _E),
    Register("Homing_Offset", 31, 2, _E, sign_bit=11),
    Register("Operating_Mode", 33, 1, _E),
    Register("Protective_Torque", 34, 1, _E),
    Register("Protection_Time", 35, 1, _E),
    Register("Overload_Torque", 36, 1, _E),
    Register("Velocity_closed_loop_P_proportional_coefficient", 37, 1, _E),
    Register("Over_Current_Protection_Time", 38, 1, _E),
    Register("Velocity_closed_loop_I_integral_coefficient", 39, 1, _E),
    Register("Torque_Enable", 40, 1, _R),
    Register("Acceleration", 41, 1, _R),
    Register("Goal_Position", 42, 2, _R, sign_bit=15),
    Register("Goal_Time", 44, 2, _R),
    Register("Goal_Velocity", 46, 2, _R, sign_bit=15),
    Register("Torque_Limit", 48, 2, _R),
    Register("Lock", 55, 1, _R),
    Register("Present_Position", 56, 2, _R, readonly=True, sign_bit=15),
    Register("Present_Velocity", 58, 2, _R, readonly=True, sign_bit=15),
    Register("Present_Load", 60, 2, _R, readonly=True, sign_bit=10),
    Register("Present_Voltage", 62, 1, _R, readonly=True),
    Register("Present_Temperature", 63, 1, _R, readonly=True),
    Register("Status", 65, 1, _R, readonly=True),
    Register("Moving", 66, 1, _R, readonly=True),
    Register("Present_Current", 69, 2, _R, readonly=True),
    Register("Goal_Position_2", 71, 2, _R, readonly=True),
    Register("Moving_Velocity", 80, 1, _F),
    Register("DTs", 81, 1, _F),
    Register("Velocity_Unit_factor", 82, 1, _F),
    Register("Hts", 83, 1, _F),
    Register("Maximum_Velocity_Limit", 84, 1, _F),
    Register("Maximum_Acceleration", 85, 1, _F),
    Register("Acceleration_Multiplier", 86, 1, _F),
)

REGISTERS: dict[str, Register] = {reg.name: reg for reg in _TABLE}
REGISTERS_BY_ADDRESS: dict[int, Register] = {reg.address: reg for reg in _TABLE}
CONTROL_TABLE_SIZE = max(reg.end for reg in _TABLE)


def register(name: str) -> Register:
    """Look a register up by its LeRobot name, with a helpful error for a typo."""
    try:
        return REGISTERS[name]
    except KeyError:
        raise KeyError(f"unknown STS3215 register {name!r}") from None
