"""One STS3215 servo: its 256-byte control table and the physics of the joint it drives.

Power-on defaults (factory-like; sources: LeRobot's comments, Feetech's SMS/STS memory table as
republished by third parties, the SO-101 reference notes):

* Firmware 3.10 on every servo, Model_Number 777, Baud_Rate as configured (0 = 1 Mbps).
* Return_Delay_Time 250 (2 us units: 500 us until someone writes 0, as LeRobot does),
  Response_Status_Level 1, Min/Max_Position_Limit 0/4095, Homing_Offset 0.
* Max_Temperature_Limit 70 C; Max/Min_Voltage_Limit 140/45 on the follower's 12 V servos and
  80/40 on the leader's 7.4 V servos (run at 5 V).
* Max_Torque_Limit 1000, Phase 0, Unloading_Condition 44 (overheat, overcurrent and overload
  unload the torque; a voltage error only raises its bit), LED_Alarm_Condition 47,
  P/D/I 32/32/0, Minimum_Startup_Force 16, dead zones 1, Protection_Current 500 (6.5 mA units),
  Angular_Resolution 1, Operating_Mode 0, Protective_Torque 20, Protection_Time 200 (10 ms
  units: 2 s), Overload_Torque 80 %, velocity-loop P/I 10/10, Over_Current_Protection_Time 200.
  Factory-area bytes (80..86) are 0.
* RAM: Torque_Enable 0, Acceleration 0, Goal_Position = the present position, Goal_Velocity 0,
  Torque_Limit = Max_Torque_Limit, Lock 1.

EEPROM and Lock: a write always changes the live table; EEPROM and factory bytes are also saved
(and so survive a power cycle) only while Lock is 0. With ``drop_locked_eeprom_writes`` those
writes are dropped entirely while Lock is 1 instead.

Physics, per substep: a jammed joint stays put; a hand on the joint moves it; otherwise, with
torque on in position mode, the servo drives towards Goal_Position (clamped to the position
limits, read in the homed single-turn frame) with a speed limit (Goal_Velocity, else the
supply-dependent maximum) and an acceleration limit (Acceleration x 100 ticks/s^2, else the
maximum); with torque off the joint stays where it is. The end stops clamp everything. When the
servo is kept from where it wants to be (end stop, jam, hand) its load rises with the position
error up to the torque limit; the current follows the load and heats the motor, which cools
towards ambient with a time constant of minutes. Multi-turn mode (Phase bit 4) and the
velocity/PWM/step modes are not modelled: in those modes the servo holds still.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from so101d.feetech.errors import ServoFault
from so101d.feetech.registers import (
    BAUD_RATES,
    REGISTERS,
    STS3215_MODEL_NUMBER,
    Area,
    Register,
    register,
)
from so101d.sim.joints import DEGREES_PER_TICK, JointGeometry, ServoVariant, reported

MEMORY_SIZE = 256
FIRMWARE_VERSION = (3, 10)
RESET_VOLTAGE = 3.5  # below this the servo's logic browns out and it stops answering

_RETURN_DELAY_UNIT = 2e-6  # seconds per Return_Delay_Time count
_CURRENT_UNIT = 0.0065  # amperes per Present_Current / Protection_Current count
_PROTECTION_TIME_UNIT = 0.01  # seconds per Protection_Time count
_ACCELERATION_UNIT = 100.0  # ticks/s^2 per Acceleration count
_MAX_ACCELERATION = 100_000.0  # ticks/s^2 when Acceleration is 0
_FULL_LOAD = 1000.0  # Present_Load / torque limits are in 0.1 % units
_STALL_GAIN = 0.3125  # load (0.1 %) per tick of blocked position error per unit of P gain
_FRICTION_LOAD = 30.0  # load while moving freely, plus up to _SPEED_LOAD at full speed
_SPEED_LOAD = 80.0
_IDLE_CURRENT = 0.03  # amperes drawn with torque on and no load
_HEATING = 0.042  # C per (A^2 s): 3.25 A held for ~2 min overheats a servo at 70 C
_COOLING_TIME = 180.0  # seconds: thermal time constant towards ambient
_MOVING_SPEED = 10.0  # ticks/s above which Moving reads 1
_ARRIVED = 0.05  # ticks: closer than this to the goal counts as there

_ADDRESS = {name: reg.address for name, reg in REGISTERS.items()}
_WRITABLE = frozenset(
    a for reg in REGISTERS.values() if not reg.readonly for a in range(reg.address, reg.end)
)
_PERSISTENT = frozenset(
    a for reg in REGISTERS.values() if reg.area is not Area.RAM for a in range(reg.address, reg.end)
)
_MEASURED = frozenset(
    (
        "Present_Position",
        "Present_Velocity",
        "Present_Load",
        "Present_Voltage",
        "Present_Temperature",
        "Status",
        "Moving",
        "Present_Current",
    )
)
_FACTORY_SETTINGS = {
    "Return_Delay_Time": 250,
    "Response_Status_Level": 1,
    "Min_Position_Limit": 0,
    "Max_Position_Limit": 4095,
    "Max_Temperature_Limit": 70,
    "Max_Torque_Limit": 1000,
    "Phase": 0,
    "Unloading_Condition": 0x2C,
    "LED_Alarm_Condition": 0x2F,
    "P_Coefficient": 32,
    "D_Coefficient": 32,
    "I_Coefficient": 0,
    "Minimum_Startup_Force": 16,
    "CW_Dead_Zone": 1,
    "CCW_Dead_Zone": 1,
    "Protection_Current": 500,
    "Angular_Resolution": 1,
    "Homing_Offset": 0,
    "Operating_Mode": 0,
    "Protective_Torque": 20,
    "Protection_Time": 200,
    "Overload_Torque": 80,
    "Velocity_closed_loop_P_proportional_coefficient": 10,
    "Over_Current_Protection_Time": 200,
    "Velocity_closed_loop_I_integral_coefficient": 10,
}
_BAUD_CODES = {baud: code for code, baud in BAUD_RATES.items()}


def baud_code(baudrate: int) -> int:
    """The Baud_Rate register value of a baud rate."""
    try:
        return _BAUD_CODES[baudrate]
    except KeyError:
        raise ValueError(
            f"unsupported baud rate {baudrate}; use one of {sorted(_BAUD_CODES)}"
        ) from None


@dataclass(frozen=True)
class Telemetry:
    """A snapshot of one servo, in human units."""

    joint: str
    motor: int
    powered: bool
    position: int  # Present_Position
    angle: float  # degrees from the mechanical middle
    fraction: float  # 0 = lower end stop, 1 = upper end stop
    temperature: float  # C
    voltage: float  # V
    load: float  # percent of full torque, signed
    current: float  # A
    torque: bool
    errors: ServoFault


@dataclass(frozen=True)
class _Drive:
    """The registers the physics needs, decoded once per advance."""

    torque_on: bool
    goal: float | None  # clamped goal in the homed frame; None when not in position mode
    offset: int
    max_speed: float
    acceleration: float
    stall_gain: float
    torque_limit: float
    overload_load: float
    protection_time: float
    current_limit: float
    stall_current: float


class ServoModel:
    """The control table and joint physics of one servo. Not thread-safe: the arm locks."""

    def __init__(
        self,
        geometry: JointGeometry,
        variant: ServoVariant,
        *,
        baud_code: int,
        angle: float,
        supply: float,
        ambient: float,
        drop_locked_eeprom_writes: bool = False,
    ) -> None:
        self.geometry = geometry
        self.variant = variant
        self.angle = geometry.clamp(angle)
        self.velocity = 0.0
        self.load = 0.0
        self.current = 0.0
        self.voltage = supply
        self.ambient = ambient
        self.temperature = ambient
        self.powered = True
        self.touched_lower = False
        self.touched_upper = False
        self._drop_locked = drop_locked_eeprom_writes
        self._memory = bytearray(MEMORY_SIZE)
        self._saved = bytearray(MEMORY_SIZE)  # the EEPROM as it would be after a power cycle
        self._overloaded_for = 0.0
        self._latched = ServoFault(0)
        self._staged: tuple[int, bytes] | None = None
        self._factory_reset(baud_code)
        self.power_on()

    # -- identity and wire-facing properties ---------------------------------------------

    @property
    def slot(self) -> int:
        """The motor's place on the arm (1..6), whatever its ID register says."""
        return self.geometry.motor_id

    @property
    def ident(self) -> int:
        return self._memory[_ADDRESS["ID"]]

    @property
    def baudrate(self) -> int | None:
        return BAUD_RATES.get(self._memory[_ADDRESS["Baud_Rate"]])

    @property
    def return_delay(self) -> float:
        return self._memory[_ADDRESS["Return_Delay_Time"]] * _RETURN_DELAY_UNIT

    @property
    def acknowledges_writes(self) -> bool:
        return self._memory[_ADDRESS["Response_Status_Level"]] != 0

    def error_bits(self) -> ServoFault:
        """The status packet's error byte: live voltage and temperature faults, latched ones."""
        faults = self._latched
        volts = round(self.voltage * 10)
        if not self._get("Min_Voltage_Limit") <= volts <= self._get("Max_Voltage_Limit"):
            faults |= ServoFault.VOLTAGE
        if round(self.temperature) > self._get("Max_Temperature_Limit"):
            faults |= ServoFault.OVERHEAT
        return faults & 0x7F

    # -- power ---------------------------------------------------------------------------

    def power_on(self) -> None:
        """RAM back to power-on defaults, EEPROM from its saved copy."""
        self._memory[:] = bytes(MEMORY_SIZE)
        for address in _PERSISTENT:
            self._memory[address] = self._saved[address]
        self._store("Torque_Limit", self._get("Max_Torque_Limit"))
        self._store("Lock", 1)
        self._store("Goal_Position", self._reading())
        self._latched = ServoFault(0)
        self._overloaded_for = 0.0
        self._staged = None
        self.velocity = self.load = self.current = 0.0
        self.powered = True
        self._publish()

    def _factory_reset(self, baud: int) -> None:
        settings = {
            **_FACTORY_SETTINGS,
            "Firmware_Major_Version": FIRMWARE_VERSION[0],
            "Firmware_Minor_Version": FIRMWARE_VERSION[1],
            "Model_Number": STS3215_MODEL_NUMBER,
            "ID": self.slot,
            "Baud_Rate": baud,
            "Max_Voltage_Limit": self.variant.max_voltage_limit,
            "Min_Voltage_Limit": self.variant.min_voltage_limit,
        }
        for name, value in settings.items():
            reg = REGISTERS[name]
            self._saved[reg.address : reg.end] = reg.encode(value)

    # -- register access -----------------------------------------------------------------

    def read(self, address: int, length: int) -> bytes:
        self._publish()
        return bytes(self._memory[address : address + length])

    def write(self, address: int, data: bytes) -> None:
        """A WRITE from the wire: read-only bytes are skipped, EEPROM bytes obey Lock."""
        locked = self._get("Lock") != 0
        for address_, byte in enumerate(data, start=address):
            if address_ not in _WRITABLE:
                continue
            persistent = address_ in _PERSISTENT
            if persistent and locked and self._drop_locked:
                continue
            self._memory[address_] = byte
            if persistent and not locked:
                self._saved[address_] = byte
        self._after_write(address, len(data))

    def stage(self, address: int, data: bytes) -> None:
        """REG_WRITE: keep the write until ACTION."""
        self._staged = (address, data)

    def commit(self) -> None:
        """ACTION: apply the staged write, if any."""
        if self._staged is not None:
            address, data = self._staged
            self._staged = None
            self.write(address, data)

    def get(self, name: str) -> int:
        self._publish()
        return self._get(name)

    def set(self, name: str, value: int) -> None:
        """Set a register as the factory would: read-only ones too, saved regardless of Lock."""
        reg = register(name)
        if reg.name in _MEASURED:
            raise ValueError(f"{reg.name} is measured by the simulated servo and cannot be set")
        data = reg.encode(value)
        self._memory[reg.address : reg.end] = data
        if reg.address in _PERSISTENT:
            self._saved[reg.address : reg.end] = data
        self._after_write(reg.address, reg.size)

    def _after_write(self, address: int, length: int) -> None:
        if _covers(address, length, REGISTERS["Torque_Enable"]) and self._torque_enabled():
            self._latched &= ~ServoFault.OVERLOAD  # re-enabling torque re-arms the protection
            self._overloaded_for = 0.0

    def _get(self, name: str) -> int:
        reg = REGISTERS[name]
        return reg.decode(bytes(self._memory[reg.address : reg.end]))

    def _store(self, name: str, value: int) -> None:
        reg = REGISTERS[name]
        self._memory[reg.address : reg.end] = reg.encode(value)

    def _torque_enabled(self) -> bool:
        return self.powered and self._get("Torque_Enable") == 1

    # -- physics -------------------------------------------------------------------------

    def advance(
        self,
        dt: float,
        hand: Iterable[float | None],
        supply: float,
        *,
        jammed: bool = False,
        pinned_temperature: float | None = None,
    ) -> None:
        """Run one substep of ``dt`` seconds per entry of ``hand`` (the hand's angle, or None)."""
        self._follow_supply(supply)
        drive = self._drive()
        for hand_angle in hand:
            wanted = self._tracked_angle(dt, drive) if drive.torque_on else self.angle
            self._move(dt, wanted, hand_angle, jammed)
            self._update_effort(drive, wanted)
            self._update_temperature(dt, pinned_temperature)
            if self._protect(dt, drive):
                drive = self._drive()
        self._publish()

    def _follow_supply(self, supply: float) -> None:
        self.voltage = supply
        if supply < RESET_VOLTAGE:
            self.powered = False
        elif not self.powered:
            self.power_on()

    def _drive(self) -> _Drive:
        supply_ratio = min(max(self.voltage / self.variant.rated_voltage, 0.0), 1.0)
        top_speed = self.variant.no_load_speed * supply_ratio
        goal_speed = abs(self._get("Goal_Velocity"))
        accel = self._get("Acceleration") * _ACCELERATION_UNIT
        return _Drive(
            torque_on=self._torque_enabled(),
            goal=self._clamped_goal() if self._get("Operating_Mode") == 0 else None,
            offset=self._get("Homing_Offset"),
            max_speed=min(goal_speed, top_speed) if goal_speed else top_speed,
            acceleration=accel or _MAX_ACCELERATION,
            stall_gain=self._get("P_Coefficient") * _STALL_GAIN,
            torque_limit=min(self._get("Torque_Limit"), self._get("Max_Torque_Limit")),
            overload_load=self._get("Overload_Torque") * _FULL_LOAD / 100,
            protection_time=self._get("Protection_Time") * _PROTECTION_TIME_UNIT,
            current_limit=self._get("Protection_Current") * _CURRENT_UNIT,
            stall_current=self.variant.stall_current * supply_ratio,
        )

    def _clamped_goal(self) -> float:
        goal = self._get("Goal_Position")
        low, high = self._get("Min_Position_Limit"), self._get("Max_Position_Limit")
        if low == high == 0:  # no limits
            return goal
        return max(low, min(goal, high))

    def _position(self, offset: int) -> float:
        return self.geometry.present_position(self.angle, offset)

    def _tracked_angle(self, dt: float, drive: _Drive) -> float:
        """Where the servo's motion profile puts the joint after ``dt`` if nothing stops it."""
        if drive.goal is None:
            return self.angle
        error = drive.goal - self._position(drive.offset)  # no wrap crossing: single-turn
        if abs(error) < _ARRIVED:
            return self.angle
        braking_speed = math.sqrt(2 * drive.acceleration * abs(error))
        desired = math.copysign(min(drive.max_speed, braking_speed), error)
        change = drive.acceleration * dt
        speed = min(max(desired, self.velocity - change), self.velocity + change)
        step = speed * dt
        if step * error > 0 and abs(step) >= abs(error):
            return self.angle + error
        return self.angle + step

    def _move(self, dt: float, wanted: float, hand_angle: float | None, jammed: bool) -> None:
        if jammed:
            actual = self.angle
        elif hand_angle is not None:
            actual = hand_angle
        else:
            actual = wanted
        actual = self.geometry.clamp(actual)
        self.velocity = (actual - self.angle) / dt
        self.angle = actual
        if actual <= self.geometry.lower_stop + 0.5:
            self.touched_lower = True
        if actual >= self.geometry.upper_stop - 0.5:
            self.touched_upper = True

    def _update_effort(self, drive: _Drive, wanted: float) -> None:
        self.load = self._effort(drive, wanted)
        if drive.torque_on:
            current = _IDLE_CURRENT + abs(self.load) / _FULL_LOAD * drive.stall_current
            self.current = min(current, drive.current_limit)
        else:
            self.current = 0.0

    def _effort(self, drive: _Drive, wanted: float) -> float:
        """The load the servo would report now, in 0.1 % units, signed by its push."""
        if not drive.torque_on:
            return 0.0
        error = 0.0 if drive.goal is None else drive.goal - self._position(drive.offset)
        held_back = abs(wanted - self.angle) > 1e-9
        if held_back or self.velocity == 0.0:  # pushing against something, or holding still
            magnitude = drive.stall_gain * abs(error)
            direction = error
        else:
            speed_share = min(abs(self.velocity) / max(drive.max_speed, 1.0), 1.0)
            magnitude = _FRICTION_LOAD + _SPEED_LOAD * speed_share
            direction = self.velocity
        return math.copysign(min(magnitude, drive.torque_limit), direction)

    def _update_temperature(self, dt: float, pinned: float | None) -> None:
        if pinned is not None:
            self.temperature = pinned
            return
        steady = self.ambient + _HEATING * self.current**2 * _COOLING_TIME
        self.temperature = steady + (self.temperature - steady) * math.exp(-dt / _COOLING_TIME)

    def _protect(self, dt: float, drive: _Drive) -> bool:
        """Latch overload, unload the torque on faults; True when the torque was switched off."""
        if drive.torque_on and abs(self.load) > drive.overload_load:
            self._overloaded_for += dt
            if self._overloaded_for >= drive.protection_time:
                self._latched |= ServoFault.OVERLOAD
        else:
            self._overloaded_for = 0.0
        if drive.torque_on and self.error_bits() & self._get("Unloading_Condition"):
            self._store("Torque_Enable", 0)
            return True
        return False

    # -- readings ------------------------------------------------------------------------

    def _reading(self) -> int:
        return reported(self._position(self._get("Homing_Offset")))

    def _publish(self) -> None:
        """Copy the physical state into the read-only registers."""
        self._store("Present_Position", self._reading())
        self._store("Present_Velocity", _clamp_int(self.velocity, 32767))
        self._store("Present_Load", _clamp_int(self.load, 1000))
        self._store("Present_Voltage", _clamp_int(self.voltage * 10, 255, low=0))
        self._store("Present_Temperature", _clamp_int(self.temperature, 255, low=0))
        self._store("Status", int(self.error_bits()))
        self._store("Moving", int(abs(self.velocity) > _MOVING_SPEED))
        self._store("Present_Current", _clamp_int(self.current / _CURRENT_UNIT, 0xFFFF, low=0))

    def telemetry(self) -> Telemetry:
        self._publish()
        return Telemetry(
            joint=self.geometry.name,
            motor=self.slot,
            powered=self.powered,
            position=self._get("Present_Position"),
            angle=self.angle * DEGREES_PER_TICK,
            fraction=self.geometry.fraction_of(self.angle),
            temperature=self.temperature,
            voltage=self.voltage,
            load=self.load / 10,
            current=self.current,
            torque=self._torque_enabled(),
            errors=self.error_bits(),
        )

    def settled(self) -> bool:
        return abs(self.velocity) < _MOVING_SPEED


def _covers(address: int, length: int, reg: Register) -> bool:
    return address < reg.end and reg.address < address + length


def _clamp_int(value: float, high: int, low: int | None = None) -> int:
    return max(-high if low is None else low, min(round(value), high))
