"""The follower's health during a session: every motor accounted for, torque still on,
following error bounded, and telemetry limits (heat, supply, overload, error bits).

Telemetry (position, load, supply, temperature, error bits) is read one motor per cycle,
round-robin. A motor that misses its read is asked again on the following cycles, and
``MISSES_BEFORE_FAULT`` misses in a row end the session naming it: a motor that stops
answering is noticed within ten cycles (0.1 s at 100 Hz), while one late reply on a busy
bus is not taken for a missing motor. A joint that stays far from its goal is blocked.
About once a second every motor is checked for a reset (a brown-out): torque reads off,
or the RAM setting the session wrote is back at its power-on value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from so101d.arm import Arm, Telemetry
from so101d.calibration.model import GRIPPER
from so101d.config import PairConfig
from so101d.faults import Latch, PairFault, SafetyFault
from so101d.feetech import BusError, PortGone, ServoFault
from so101d.motion import ArmGuard, degrees_to_ticks

log = logging.getLogger(__name__)

MISSES_BEFORE_FAULT = 4
TORQUE_CHECK_S = 1.0
MAX_FOLLOWING_ERROR_DEG = 30.0
FOLLOWING_ERROR_TIME_S = 0.5


class FollowerHealth:
    """Samples the follower each cycle and raises PairFault/SafetyFault on trouble."""

    def __init__(self, guard: ArmGuard, config: PairConfig, clock: Callable[[], float]) -> None:
        self.guard, self.clock = guard, clock
        self.arm: Arm = guard.arm
        self.safety = Safety(self.arm, config, clock)
        self.telemetry: dict[str, Telemetry] = {}
        self._index = 0
        self._missed: str | None = None
        self._misses = 0
        self._next_check = clock() + TORQUE_CHECK_S
        self._far_since: dict[str, float] = {}

    @property
    def positions(self) -> dict[str, int]:
        """The follower's present positions, each from its joint's latest telemetry."""
        return {joint: reading.position for joint, reading in self.telemetry.items()}

    def sample(self) -> None:
        """One motor's telemetry, and the whole arm's torque and positions when due."""
        joint = self._missed or self.arm.joints[self._index % len(self.arm.joints)]
        try:
            reading = self.arm.read_telemetry(joint)
        except PortGone as exc:
            raise PairFault(f"follower board disconnected ({exc.port})") from exc
        except BusError as exc:
            self._miss(joint, exc)
            return
        self._missed, self._misses = None, 0
        self._index += 1
        self.telemetry[joint] = reading
        self.safety.check(reading)
        self._check_following(reading)
        if self.clock() >= self._next_check:
            self._next_check = self.clock() + TORQUE_CHECK_S
            self._check_torque()

    def _miss(self, joint: str, exc: BusError) -> None:
        self._missed = joint
        self._misses += 1
        if self._misses >= MISSES_BEFORE_FAULT:
            raise PairFault(
                f"follower {joint} (motor {self.arm.motor_ids[joint]}) stopped answering "
                f"{self._misses} times in a row ({exc.detail}); its torque goes off with the "
                f"others"
            )

    def _check_torque(self) -> None:
        try:
            reset = self.guard.reset_joints()
        except PortGone as exc:
            raise PairFault(f"follower board disconnected ({exc.port})") from exc
        except BusError:
            return  # a missing motor is caught by the per-motor telemetry accounting
        if reset:
            raise SafetyFault(
                f"follower {', '.join(reset)} reset while mirroring (lost torque or its "
                f"settings: a brown-out?); check the follower's power supply"
            )

    def _check_following(self, reading: Telemetry) -> None:
        joint = reading.joint
        goal = self.guard.commanded.get(joint)
        if goal is None or joint == GRIPPER:
            return  # a gripper closed on an object stops short of its goal: a grasp
        error_deg = abs(reading.position - goal) / degrees_to_ticks(1)
        if error_deg <= MAX_FOLLOWING_ERROR_DEG:
            self._far_since.pop(joint, None)
            return
        since = self._far_since.setdefault(joint, self.clock())
        if self.clock() - since >= FOLLOWING_ERROR_TIME_S:
            raise SafetyFault(
                f"follower {joint} stays {error_deg:.0f}° from its goal for "
                f"{self.clock() - since:.1f} s (limit {MAX_FOLLOWING_ERROR_DEG:g}°): is it "
                f"blocked? Free it, then run `so101d resume`",
                Latch.OPERATOR,
            )


class Safety:
    """Turns follower telemetry into faults: heat, supply voltage, overload, error bits.

    The gripper is exempt from the overload rules: a grasp holds it at load, and its own
    limits are the servo's (Max_Torque_Limit, Protection_Current, Overload_Torque, written
    by the guard at session start); its temperature is still watched.
    """

    def __init__(self, follower: Arm, config: PairConfig, clock: Callable[[], float]) -> None:
        self.follower = follower
        self.config = config
        self.clock = clock
        self._loaded_since: dict[str, float] = {}
        self._warned: set[str] = set()

    def check(self, reading: Telemetry) -> None:
        self._check_error_bits(reading)
        self._check_temperature(reading)
        self._check_voltage(reading)
        if reading.joint != GRIPPER:
            self._check_load(reading)

    def _name(self, joint: str) -> str:
        return f"follower {joint} (motor {self.follower.motor_ids[joint]})"

    def _check_error_bits(self, reading: Telemetry) -> None:
        faults = reading.faults
        if reading.joint == GRIPPER and faults & ServoFault.OVERLOAD:
            self._warn_once(reading.joint, "reports overload (a firm grasp?); its own limit holds")
            faults &= ~ServoFault.OVERLOAD
        if not faults:
            return
        what = f"{self._name(reading.joint)} reports {faults.describe()}"
        if ServoFault.OVERHEAT in faults:
            raise SafetyFault(f"{what}; torque is off until it cools down", Latch.COOLING)
        if faults & (ServoFault.OVERLOAD | ServoFault.OVERCURRENT | ServoFault.ANGLE_SENSOR):
            raise SafetyFault(
                f"{what}; check the joint is free, then run `so101d resume`", Latch.OPERATOR
            )
        raise SafetyFault(f"{what}; check the follower's power supply")

    def _warn_once(self, joint: str, text: str) -> None:
        if joint not in self._warned:
            self._warned.add(joint)
            log.warning("%s %s", self._name(joint), text)

    def _check_temperature(self, reading: Telemetry) -> None:
        if reading.temperature_c >= self.config.max_temperature_c:
            raise SafetyFault(
                f"{self._name(reading.joint)} is at {reading.temperature_c} °C "
                f"(limit {self.config.max_temperature_c:g} °C); torque is off until it cools "
                f"below {self.config.resume_temperature_c:g} °C",
                Latch.COOLING,
            )

    def _check_voltage(self, reading: Telemetry) -> None:
        low, high = self.config.min_voltage_v, self.config.max_voltage_v
        if not low <= reading.voltage_v <= high:
            raise SafetyFault(
                f"follower supply reads {reading.voltage_v:.1f} V at {reading.joint}, outside "
                f"{low:g}-{high:g} V: check the power supply and its cable (brown-out?)"
            )

    def _check_load(self, reading: Telemetry) -> None:
        now = self.clock()
        if reading.load_percent < self.config.max_load_percent:
            self._loaded_since.pop(reading.joint, None)
            return
        since = self._loaded_since.setdefault(reading.joint, now)
        if now - since >= self.config.overload_time_s:
            raise SafetyFault(
                f"{self._name(reading.joint)} overloaded: load {reading.load_percent:.0f} % "
                f"for {now - since:.1f} s (limit {self.config.max_load_percent:g} %). Is the "
                f"joint blocked? Free it, then run `so101d resume`",
                Latch.OPERATOR,
            )
