"""A bus of fake servos for fast, exact unit tests of the motion guard and the loop.

It models registers, not replies scripted per test: writes change a servo's registers, reads
return them, a servo that stops answering raises what the real driver raises, and the
STS3215's reported habit (a Goal_Position write switches torque on) is modelled. Every write
is logged in order, so a test can assert what reached the wire and when.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from so101d.arm import Arm
from so101d.calibration.model import DEFAULT_MOTOR_MAP, ArmCalibration, MotorCalibration, Role
from so101d.feetech import BusTimeout, PortGone, ServoError, ServoFault, register

PORT = "/dev/fake_follower"


@dataclass
class FakeServo:
    registers: dict[str, int]
    answers: bool = True
    torque_sticks: bool = True  # False: Torque_Enable writes are acknowledged but ignored
    goal_sticks: bool = True
    faults: ServoFault = field(default_factory=lambda: ServoFault(0))


@dataclass
class FakeBus:
    """The subset of FeetechBus the arm, the guard and the loop use."""

    servos: dict[int, FakeServo]
    port: str = PORT
    writes: list[tuple[str, int, int]] = field(default_factory=list)
    on_write: Callable[[str, int, int], None] | None = None
    gone: bool = False

    def _servo(self, motor: int, name: str) -> FakeServo:
        if self.gone:
            raise PortGone(self.port, "device disconnected", register=name)
        servo = self.servos[motor]
        if not servo.answers:
            raise BusTimeout(self.port, f"no reply from motor(s) {motor}", motor, name)
        return servo

    def _store(self, servo: FakeServo, name: str, motor: int, value: int) -> None:
        self.writes.append((name, motor, value))
        if name == "Torque_Enable" and not servo.torque_sticks:
            return
        if name == "Goal_Position":
            if not servo.goal_sticks:
                return
            servo.registers["Torque_Enable"] = 1  # as STS3215 firmware is reported to do
        servo.registers[name] = value
        if self.on_write:
            self.on_write(name, motor, value)

    def write(self, name: str, motor: int, value: int) -> None:
        self._store(self._servo(motor, name), name, motor, value)

    def sync_write(self, name: str, values: Mapping[int, int]) -> None:
        if self.gone:
            raise PortGone(self.port, "device disconnected", register=name)
        for motor, value in values.items():
            if self.servos[motor].answers:  # no replies: a silent motor just misses it
                self._store(self.servos[motor], name, motor, value)

    def read(self, name: str, motor: int) -> int:
        return self._servo(motor, name).registers.get(name, 0)

    def sync_read(self, name: str, motors: Sequence[int]) -> dict[int, int]:
        values = {m: self._servo(m, name).registers.get(name, 0) for m in motors}
        faults = {m: self.servos[m].faults for m in motors if self.servos[m].faults}
        if faults:
            raise ServoError(self.port, faults, {}, values, register=name)
        return values

    def read_bytes(self, motor: int, address: int, length: int, label: str | None = None) -> bytes:
        servo = self._servo(motor, label or "telemetry")
        data = bytearray(length)
        for name, value in servo.registers.items():
            reg = register(name)
            if address <= reg.address and reg.address + reg.size <= address + length:
                start = reg.address - address
                data[start : start + reg.size] = reg.encode(value)
        if servo.faults:
            raise ServoError(self.port, {motor: servo.faults}, {motor: bytes(data)}, {}, label)
        return bytes(data)

    def ping(self, motor: int) -> ServoFault:
        return self._servo(motor, "ping").faults

    def goal_writes(self) -> list[tuple[int, int]]:
        return [(motor, value) for name, motor, value in self.writes if name == "Goal_Position"]


def calibration(span: int = 2000, low: int = 1000) -> ArmCalibration:
    return {
        joint: MotorCalibration(motor, 0, 0, low, low + span)
        for joint, motor in DEFAULT_MOTOR_MAP.items()
    }


def fake_arm(
    positions: Mapping[str, int] | None = None,
    cal: ArmCalibration | None = None,
    role: Role = Role.FOLLOWER,
) -> tuple[Arm, FakeBus]:
    cal = cal or calibration()
    positions = positions or {joint: c.range_min + c.span // 2 for joint, c in cal.items()}
    servos = {
        DEFAULT_MOTOR_MAP[joint]: FakeServo(
            {
                "Present_Position": value,
                "Goal_Position": 0,
                "Torque_Enable": 0,
                "Present_Voltage": 120,
                "Present_Temperature": 30,
                "Acceleration": 254,  # as the session start sets it
            }
        )
        for joint, value in positions.items()
    }
    bus = FakeBus(servos)
    return Arm(role, PORT, DEFAULT_MOTOR_MAP, cal, bus=bus), bus  # type: ignore[arg-type]


class FakeClock:
    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
