"""One STS3215 servo: its 256-byte control table and the physics of the joint it drives.

Power-on defaults (factory-like; sources: LeRobot's comments, Feetech's SMS/STS memory table as
republished by third parties, the SO-101 reference notes):

* Firmware 3.10 on every servo, Model_Number 777, Baud_Rate as configured (0 = 1 Mbps).
* Return_Delay_Time 250 (2 us units: 500 us until someone writes 0, as LeRobot does),
  Response_Status_Level 1, Min/Max_Position_Limit 0/4095, Homing_Offset 0.
* Max_Temperature_Limit 70 C; Max/Min_Voltage_Limit 140/45 on the follower's 12 V servos and
  80/40 on the leader's 7.4 V servos (run at 5 V).
* Max_Torque_Limit 1000, Phase 0, Unloading_Condition 44 (overheat and overcurrent unload the
  torque; overload protection is on; a voltage error only raises its bit), LED_Alarm_Condition 47,
  P/D/I 32/32/0, Minimum_Startup_Force 16, dead zones 1, Protection_Current 500 (6.5 mA units),
  Angular_Resolution 1, Operating_Mode 0, Protective_Torque 20, Protection_Time 200 (10 ms
  units: 2 s), Overload_Torque 80 %, velocity-loop P/I 10/10, Over_Current_Protection_Time 200.
  Factory-area bytes (80..86) are 0.
* RAM: Torque_Enable 0, Acceleration 0, Goal_Position = the present position, Goal_Velocity 0,
  Torque_Limit = Max_Torque_Limit, Lock 1.

EEPROM and Lock: a write always changes the live table; EEPROM and factory bytes are also saved
(and so survive a power cycle) only while Lock is 0. With ``drop_locked_eeprom_writes`` those
writes are dropped entirely while Lock is 1 instead.

Behaviour beyond the table (see ``so101d.sim.drive`` for the joint's motion):

* Operating_Mode 0 drives to Goal_Position, 1 (wheel) runs at Goal_Velocity; PWM and step
  modes hold still. Phase bit 4 makes Present_Position multi-turn (it counts on across the
  seam instead of wrapping), as LeRobot's Phase fix (#3373) describes.
* P_Coefficient sets the position loop's stiffness, I_Coefficient its integral (no droop under
  gravity once it has wound up); D is stored but not modelled.
* The torque the servo can apply is the least of Torque_Limit, Max_Torque_Limit and the torque
  that Protection_Current (6.5 mA units) allows.
* Overload protection (Unloading_Condition bit 5): a load above Overload_Torque for
  Protection_Time latches the overload bit and cuts the output to Protective_Torque (% of the
  maximum) with the torque left on, as Feetech's memory table describes ("after entering the
  overload protection, the output torque"); it stays so until Torque_Enable is written 1 again.
* Writing Torque_Enable 128 sets the present position to 2048 (the firmware's "set middle":
  it rewrites Homing_Offset) and leaves the torque off.
* A Goal_Position write with the torque off switches the torque on (reported for STS3215
  firmware; ``goal_enables_torque=False`` turns it off).
* An EEPROM write that is saved (Lock 0) makes the servo busy for ``EEPROM_BUSY``: it answers
  that write, and anything sent meanwhile, only once the write is done.
* The supply falling below Min_Voltage_Limit resets the servo (RAM defaults: torque off);
  below ``RESET_VOLTAGE`` it stops answering altogether.
* The load rises with the torque applied; the current follows the load and heats the motor,
  which cools towards ambient with a time constant of minutes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from so101d.feetech.errors import ServoFault
from so101d.feetech.registers import (
    BAUD_RATES,
    ENCODER_RESOLUTION,
    HALF_TURN,
    REGISTERS,
    STS3215_MODEL_NUMBER,
    Area,
    Register,
    register,
)
from so101d.sim.drive import Drive, JointMotion, Surroundings
from so101d.sim.joints import DEGREES_PER_TICK, JointGeometry, ServoVariant, reported

MEMORY_SIZE = 256
FIRMWARE_VERSION = (3, 10)
RESET_VOLTAGE = 3.5  # below this the servo's logic browns out and it stops answering
EEPROM_BUSY = 0.004  # seconds a saved EEPROM write keeps the servo from answering (estimate)
MIDDLE = 2048  # where Torque_Enable 128 puts the present position

_RETURN_DELAY_UNIT = 2e-6  # seconds per Return_Delay_Time count
_CURRENT_UNIT = 0.0065  # amperes per Present_Current / Protection_Current count
_PROTECTION_TIME_UNIT = 0.01  # seconds per Protection_Time count
_ACCELERATION_UNIT = 100.0  # ticks/s^2 per Acceleration count
_MAX_ACCELERATION = 100_000.0  # ticks/s^2 when Acceleration is 0
_FULL_LOAD = 1000.0  # Present_Load / torque limits are in 0.1 % units
_STALL_GAIN = 0.3125  # load (0.1 %) per tick of position error per unit of P gain
_INTEGRAL_GAIN = 3.125  # load per tick second of position error per unit of I gain
_IDLE_CURRENT = 0.03  # amperes drawn with torque on and no load
_HEATING = 0.042  # C per (A^2 s): 3.25 A held for ~2 min overheats a servo at 70 C
_COOLING_TIME = 180.0  # seconds: thermal time constant towards ambient
_MULTI_TURN = 0x10  # Phase bit 4: full-angle (multi-turn) position feedback
_SET_MIDDLE = 128  # Torque_Enable value that recalibrates the present position to MIDDLE
_POSITION_MODE, _WHEEL_MODE = 0, 1
_POSITION_LIMIT = 32767  # sign-magnitude bit 15
_SUPPLY_RESOLUTION = 0.01  # volts of supply change that change the motor's limits

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
class _Limits:
    """The protection registers, decoded once per advance."""

    current_limit: float  # A
    stall_current: float  # A at the present supply
    overload_load: float  # load units
    protection_time: float  # s
    unloading: int  # Unloading_Condition bits
    max_temperature: int  # C


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
        goal_enables_torque: bool = True,
    ) -> None:
        self.geometry = geometry
        self.variant = variant
        self.motion = JointMotion(geometry.clamp(angle))
        self.current = 0.0
        self.voltage = supply
        self.ambient = ambient
        self.temperature = ambient
        self.powered = True
        self.touched_lower = False
        self.touched_upper = False
        self._drop_locked = drop_locked_eeprom_writes
        self._goal_enables_torque = goal_enables_torque
        self._memory = bytearray(MEMORY_SIZE)
        self._saved = bytearray(MEMORY_SIZE)  # the EEPROM as it would be after a power cycle
        self._overloaded_for = 0.0
        self._latched = ServoFault(0)
        self._staged: tuple[int, bytes] | None = None
        self.clock = 0.0  # the arm's time, set before each request (EEPROM busy time)
        self._busy_until = 0.0
        self._turn_base = 0  # multi-turn: encoder ticks counted from this at power-on
        self._drive: Drive | None = None
        self._limits: _Limits | None = None
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
        """Seconds from the end of a request to this servo's reply (busy time included)."""
        busy = max(self._busy_until - self.clock, 0.0)
        return self._memory[_ADDRESS["Return_Delay_Time"]] * _RETURN_DELAY_UNIT + busy

    @property
    def acknowledges_writes(self) -> bool:
        return self._memory[_ADDRESS["Response_Status_Level"]] != 0

    @property
    def angle(self) -> float:
        return self.motion.angle

    @property
    def load(self) -> float:
        return self.motion.load

    def error_bits(self) -> ServoFault:
        """The status packet's error byte: live voltage and temperature faults, latched ones."""
        faults = self._latched
        if self._voltage_fault:
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
        self._turn_base = self._encoder_turns()
        self._store("Torque_Limit", self._get("Max_Torque_Limit"))
        self._store("Lock", 1)
        self._store("Goal_Position", self._reading())
        self._latched = ServoFault(0)
        self._overloaded_for = 0.0
        self._staged = None
        self._busy_until = 0.0
        self.motion.release()
        self.motion.velocity = self.motion.load = self.current = 0.0
        self.powered = True
        self._drive = self._limits = None
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
        saved = False
        for address_, byte in enumerate(data, start=address):
            if address_ not in _WRITABLE:
                continue
            persistent = address_ in _PERSISTENT
            if persistent and locked and self._drop_locked:
                continue
            self._memory[address_] = byte
            if persistent and not locked:
                self._saved[address_] = byte
                saved = True
        if saved:
            self._become_busy()
        self._after_write(address, len(data))
        self._obey_wire_write(address, len(data))

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
        self._drive = self._limits = None

    def _obey_wire_write(self, address: int, length: int) -> None:
        """What the firmware does on top of storing a write that came over the wire."""
        if _covers(address, length, REGISTERS["Torque_Enable"]):
            if self._get("Torque_Enable") == _SET_MIDDLE:
                self._set_middle()
        elif (
            _covers(address, length, REGISTERS["Goal_Position"])
            and self._goal_enables_torque
            and self.powered
            and not self._torque_enabled()
        ):
            self._store("Torque_Enable", 1)  # a latched overload is not re-armed by this
            self._drive = None

    def _set_middle(self) -> None:
        """Torque_Enable 128: rewrite Homing_Offset so the present position reads MIDDLE."""
        raw = (self.geometry.mount + self.angle) % ENCODER_RESOLUTION
        offset = round(raw) - MIDDLE
        offset = max(-HALF_TURN, min(offset, HALF_TURN))
        reg = REGISTERS["Homing_Offset"]
        self._memory[reg.address : reg.end] = self._saved[reg.address : reg.end] = reg.encode(
            offset
        )
        self._store("Torque_Enable", 0)
        self._become_busy()

    def _become_busy(self) -> None:
        self._busy_until = self.clock + EEPROM_BUSY

    def _get(self, name: str) -> int:
        reg = REGISTERS[name]
        return reg.decode(bytes(self._memory[reg.address : reg.end]))

    def _store(self, name: str, value: int) -> None:
        reg = REGISTERS[name]
        self._memory[reg.address : reg.end] = reg.encode(value)

    def _torque_enabled(self) -> bool:
        return self.powered and self._get("Torque_Enable") == 1

    # -- physics -------------------------------------------------------------------------

    def follow_supply(self, supply: float) -> None:
        """The supply now: a dip below Min_Voltage_Limit resets the servo, below
        RESET_VOLTAGE it is off."""
        was = self.voltage
        self.voltage = supply
        if abs(supply - was) > _SUPPLY_RESOLUTION:
            self._drive = self._limits = None
        if supply < RESET_VOLTAGE:
            self.powered = False
        elif not self.powered or (
            self._below_min_voltage(supply) and not self._below_min_voltage(was)
        ):
            self.power_on()

    @property
    def _voltage_fault(self) -> bool:
        volts = round(self.voltage * 10)
        return not self._get("Min_Voltage_Limit") <= volts <= self._get("Max_Voltage_Limit")

    def _below_min_voltage(self, volts: float) -> bool:
        return round(volts * 10) < self._get("Min_Voltage_Limit")

    def substep(
        self,
        dt: float,
        around: Surroundings,
        pinned_temperature: float | None = None,
    ) -> None:
        """Advance the joint, the servo's effort and its temperature by ``dt`` seconds."""
        if self._drive is None or self._limits is None:
            self._drive, self._limits = self._decode_drive(), self._decode_limits()
        drive, limits = self._drive, self._limits
        self.motion.step(dt, drive, around)
        self._track_stops()
        self._update_current(drive.torque_on, limits)
        self._update_temperature(dt, pinned_temperature)
        self._protect(dt, drive.torque_on, limits)

    def _decode_limits(self) -> _Limits:
        return _Limits(
            current_limit=self._get("Protection_Current") * _CURRENT_UNIT,
            stall_current=self._stall_current(),
            overload_load=self._get("Overload_Torque") * _FULL_LOAD / 100,
            protection_time=self._get("Protection_Time") * _PROTECTION_TIME_UNIT,
            unloading=self._get("Unloading_Condition"),
            max_temperature=self._get("Max_Temperature_Limit"),
        )

    def _decode_drive(self) -> Drive:
        supply_ratio = min(max(self.voltage / self.variant.rated_voltage, 0.0), 1.0)
        top_speed = self.variant.no_load_speed * supply_ratio
        goal_speed = self._get("Goal_Velocity")
        accel = self._get("Acceleration") * _ACCELERATION_UNIT
        mode = self._get("Operating_Mode")
        current_torque = (
            self._get("Protection_Current") * _CURRENT_UNIT / self._stall_current() * _FULL_LOAD
        )
        return Drive(
            torque_on=self._torque_enabled(),
            goal=self._goal_angle() if mode == _POSITION_MODE else None,
            wheel_speed=max(-top_speed, min(goal_speed, top_speed))
            if mode == _WHEEL_MODE
            else None,
            max_speed=min(abs(goal_speed), top_speed) if goal_speed else top_speed,
            acceleration=accel or _MAX_ACCELERATION,
            stiffness=self._get("P_Coefficient") * _STALL_GAIN,
            integral_gain=self._get("I_Coefficient") * _INTEGRAL_GAIN,
            torque_limit=min(
                self._get("Torque_Limit"),
                self._get("Max_Torque_Limit"),
                current_torque,
                self._protective_torque(),
            ),
        )

    def _protective_torque(self) -> float:
        """The output an overload trip leaves, in load units (no cap while not tripped)."""
        if not self._latched & ServoFault.OVERLOAD & self._get("Unloading_Condition"):
            return _FULL_LOAD
        return self._get("Protective_Torque") * _FULL_LOAD / 100

    def _stall_current(self) -> float:
        supply_ratio = min(max(self.voltage / self.variant.rated_voltage, 0.0), 1.0)
        return max(self.variant.stall_current * supply_ratio, 1e-6)

    def _goal_angle(self) -> float:
        """Goal_Position (clamped to the position limits) as a joint angle."""
        goal = self._get("Goal_Position")
        low, high = self._get("Min_Position_Limit"), self._get("Max_Position_Limit")
        if not low == high == 0:  # both 0: no limits
            goal = max(low, min(goal, high))
        return self.angle + goal - self._position()

    def _track_stops(self) -> None:
        if self.angle <= self.geometry.lower_stop + 0.5:
            self.touched_lower = True
        if self.angle >= self.geometry.upper_stop - 0.5:
            self.touched_upper = True

    def _update_current(self, torque_on: bool, limits: _Limits) -> None:
        if torque_on:
            current = _IDLE_CURRENT + abs(self.load) / _FULL_LOAD * limits.stall_current
            self.current = min(current, limits.current_limit)
        else:
            self.current = 0.0

    def _update_temperature(self, dt: float, pinned: float | None) -> None:
        if pinned is not None:
            self.temperature = pinned
            return
        steady = self.ambient + _HEATING * self.current**2 * _COOLING_TIME
        self.temperature = steady + (self.temperature - steady) * math.exp(-dt / _COOLING_TIME)

    def _protect(self, dt: float, torque_on: bool, limits: _Limits) -> None:
        """Latch overload (the drive then cuts to Protective_Torque), and unload the torque on
        the other faults Unloading_Condition names."""
        if not torque_on:
            self._overloaded_for = 0.0
            return
        if abs(self.load) > limits.overload_load and not self._latched & ServoFault.OVERLOAD:
            self._overloaded_for += dt
            if self._overloaded_for >= limits.protection_time:
                self._latched |= ServoFault.OVERLOAD
                self._drive = None
        else:
            self._overloaded_for = 0.0
        faults = self._latched & ~ServoFault.OVERLOAD
        if round(self.temperature) > limits.max_temperature:
            faults |= ServoFault.OVERHEAT
        if limits.unloading & ServoFault.VOLTAGE and self._voltage_fault:
            faults |= ServoFault.VOLTAGE
        if faults & limits.unloading:
            self._store("Torque_Enable", 0)
            self._drive = None

    # -- readings ------------------------------------------------------------------------

    def _encoder_turns(self) -> int:
        return math.floor((self.geometry.mount + self.angle) / ENCODER_RESOLUTION)

    def _position(self) -> float:
        """The unrounded Present_Position: single-turn, or counted on in multi-turn mode."""
        offset = self._get("Homing_Offset")
        if self._get("Phase") & _MULTI_TURN:
            counted = self.geometry.mount + self.angle - self._turn_base * ENCODER_RESOLUTION
            return counted - offset
        return self.geometry.present_position(self.angle, offset)

    def _reading(self) -> int:
        position = self._position()
        if self._get("Phase") & _MULTI_TURN:
            return max(-_POSITION_LIMIT, min(math.floor(position + 0.5), _POSITION_LIMIT))
        return reported(position)

    def _publish(self) -> None:
        """Copy the physical state into the read-only registers."""
        self._store("Present_Position", self._reading())
        self._store("Present_Velocity", _clamp_int(self.motion.velocity, 32767))
        self._store("Present_Load", _clamp_int(self.load, 1000))
        self._store("Present_Voltage", _clamp_int(self.voltage * 10, 255, low=0))
        self._store("Present_Temperature", _clamp_int(self.temperature, 255, low=0))
        self._store("Status", int(self.error_bits()))
        self._store("Moving", int(self.motion.moving))
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
        return not self.motion.moving

    def place(self, angle: float) -> None:
        """Put the joint at ``angle`` at once (a hand, or a re-assembly); the loop follows."""
        self.motion.angle = self.geometry.clamp(angle)
        self.motion.velocity = 0.0
        if self.motion.setpoint is not None:
            self.motion.setpoint = self.motion.angle


def _covers(address: int, length: int, reg: Register) -> bool:
    return address < reg.end and reg.address < address + length


def _clamp_int(value: float, high: int, low: int | None = None) -> int:
    return max(-high if low is None else low, min(round(value), high))
