"""One SO-101 arm on its bus: motor map, calibration, positions and telemetry.

Positions are raw encoder ticks in the servos' homed frame (the servo applies the homing
offset itself); the calibration gives each joint's range in that frame. Torque and every
other write that can move a joint belong to :mod:`so101d.motion`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from so101d.calibration.model import ArmCalibration, Role
from so101d.feetech import FeetechBus, ServoError, ServoFault, register

# Present_Position .. Status: position (2), speed (2), load (2), voltage (1), temperature (1),
# one reserved byte, status (1): one motor's whole state in one read.
_POSITION = register("Present_Position")
_LOAD = register("Present_Load")
_TELEMETRY_START = _POSITION.address
_TELEMETRY_SIZE = register("Status").end - _TELEMETRY_START
_AT = {
    name: register(name).address - _TELEMETRY_START
    for name in ("Present_Load", "Present_Voltage", "Present_Temperature", "Status")
}
_LOAD_FULL_SCALE = 1000  # Present_Load is in 0.1 % of the maximum torque
_NO_FAULTS = ServoFault(0)
_CURRENT = register("Present_Current")
_EFFORT_SIZE = _CURRENT.end - _TELEMETRY_START
CURRENT_UNIT_MA = 6.5  # Present_Current counts


@dataclass(frozen=True)
class Effort:
    """What one motor does against its joint, read in a single transaction."""

    position: int
    load: int  # Present_Load, signed, 0.1 % of the maximum torque
    temperature_c: int
    current_ma: float


@dataclass(frozen=True)
class Telemetry:
    """One motor's health, read in a single transaction."""

    joint: str
    position: int
    load_percent: float
    voltage_v: float
    temperature_c: int
    faults: ServoFault
    taken_at: float = field(default_factory=time.monotonic)


class Arm:
    """An arm's bus and what the daemon needs from it, by joint name."""

    def __init__(
        self,
        role: Role,
        port: str,
        motor_ids: Mapping[str, int],
        calibration: ArmCalibration,
        *,
        baudrate: int = 1_000_000,
        timeout_s: float = 0.025,
        bus: FeetechBus | None = None,
    ) -> None:
        self.role = role
        self.motor_ids = dict(motor_ids)
        self.calibration = calibration
        self.joints = tuple(self.motor_ids)
        self.ids = tuple(self.motor_ids.values())
        self._joint_of = {motor: joint for joint, motor in self.motor_ids.items()}
        self.bus = bus or FeetechBus(port, baudrate=baudrate, timeout=timeout_s)

    @property
    def port(self) -> str:
        return self.bus.port

    def joint_of(self, motor: int) -> str:
        return self._joint_of.get(motor, f"motor {motor}")

    def open(self) -> None:
        self.bus.open()

    def close(self) -> None:
        self.bus.close()

    def __enter__(self) -> Arm:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- positions -------------------------------------------------------------------------

    def read_positions(self) -> dict[str, int]:
        """Present positions by joint. Servo error bits raise ServoError (data attached)."""
        return self._by_joint(self.bus.sync_read("Present_Position", self.ids))

    def write_goals(self, goals: Mapping[str, int]) -> None:
        """Goal positions by joint. Only the motion guard calls this (it owns motion)."""
        self.bus.sync_write("Goal_Position", {self.motor_ids[j]: v for j, v in goals.items()})

    def sync_read(self, name: str) -> dict[str, int]:
        """Any register of every motor, by joint; error bits are tolerated (data kept)."""
        try:
            values = self.bus.sync_read(name, self.ids)
        except ServoError as exc:
            values = exc.values
        return self._by_joint(values)

    # -- health ----------------------------------------------------------------------------

    def read_telemetry(self, joint: str) -> Telemetry:
        motor = self.motor_ids[joint]
        try:
            data = self.bus.read_bytes(motor, _TELEMETRY_START, _TELEMETRY_SIZE, "telemetry")
            faults = _NO_FAULTS
        except ServoError as exc:
            data, faults = exc.payloads[motor], exc.faults[motor]
        if status := data[_AT["Status"]] & 0x7F:
            faults |= ServoFault(status)
        load = _LOAD.decode(data[_AT["Present_Load"] : _AT["Present_Load"] + 2])
        return Telemetry(
            joint=joint,
            position=_POSITION.decode(data[0:2]),
            load_percent=abs(load) * 100 / _LOAD_FULL_SCALE,
            voltage_v=data[_AT["Present_Voltage"]] / 10,
            temperature_c=data[_AT["Present_Temperature"]],
            faults=faults,
        )

    def read_effort(self, joint: str) -> Effort:
        """Position, load, temperature and current of one motor (error bits tolerated)."""
        motor = self.motor_ids[joint]
        try:
            data = self.bus.read_bytes(motor, _TELEMETRY_START, _EFFORT_SIZE, "effort")
        except ServoError as exc:
            data = exc.payloads[motor]
        at_current = _CURRENT.address - _TELEMETRY_START
        return Effort(
            position=_POSITION.decode(data[0:2]),
            load=_LOAD.decode(data[_AT["Present_Load"] : _AT["Present_Load"] + 2]),
            temperature_c=data[_AT["Present_Temperature"]],
            current_ma=_CURRENT.decode(data[at_current : at_current + 2]) * CURRENT_UNIT_MA,
        )

    def _by_joint(self, values: Mapping[int, int]) -> dict[str, int]:
        return {self._joint_of[m]: v for m, v in values.items() if m in self._joint_of}
