"""The leader to follower loop: mapping, engage ramp, clamping, step limits, timing, stats.

Leader positions go through LeRobot's normalization (degrees for joints 1-5, 0..100 for
the gripper) into the follower's frame, are clamped to the follower's calibrated range minus
a margin, and move at most one step per cycle. A failed leader read writes nothing, so the
follower holds its last goal: a glitch never becomes a jump.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from so101d.arm import Arm, Telemetry
from so101d.calibration.model import ArmCalibration
from so101d.calibration.normalize import joint_norm_modes, normalize, unnormalize
from so101d.config import PairConfig
from so101d.faults import Latch, PairFault, SafetyFault
from so101d.feetech import BusError, BusTimeout, CorruptReply, PortGone, ServoError, ServoFault

log = logging.getLogger(__name__)

TICKS_PER_DEGREE = 4096 / 360
_MISSED_READS_BEFORE_FAULT_S = 0.2  # how long the leader may stay silent before we give up


def degrees_to_ticks(degrees: float) -> float:
    return degrees * TICKS_PER_DEGREE


class Mirror:
    """Maps leader positions to follower goals inside the follower's safe range."""

    def __init__(self, leader: ArmCalibration, follower: ArmCalibration, margin_deg: float):
        self.leader, self.follower = leader, follower
        self.modes = joint_norm_modes(use_degrees=True)
        margin = round(degrees_to_ticks(margin_deg))
        self.bounds = {
            joint: _shrink(cal.range_min, cal.range_max, margin) for joint, cal in follower.items()
        }

    def target(self, leader_positions: Mapping[str, int]) -> dict[str, float]:
        goals = {}
        for joint, raw in leader_positions.items():
            mode = self.modes[joint]
            value = normalize(raw, self.leader[joint], mode)
            goals[joint] = self.clamp(joint, unnormalize(value, self.follower[joint], mode))
        return goals

    def clamp(self, joint: str, ticks: float) -> float:
        low, high = self.bounds[joint]
        return min(high, max(low, ticks))


def _shrink(low: int, high: int, margin: int) -> tuple[float, float]:
    if high - low <= 2 * margin:
        middle = (low + high) / 2
        return middle, middle
    return low + margin, high - margin


def step_toward(
    current: Mapping[str, float], target: Mapping[str, float], max_step: float
) -> dict[str, float]:
    """Each joint moves toward its target by at most ``max_step`` ticks."""
    return {j: c + max(-max_step, min(max_step, target.get(j, c) - c)) for j, c in current.items()}


def _shifted(
    commanded: Mapping[str, float], previous: Mapping[str, float], target: Mapping[str, float]
) -> dict[str, float]:
    """``commanded`` moved by how far the target moved since ``previous`` (none at first)."""
    return {
        j: c + target.get(j, c) - previous.get(j, target.get(j, c)) for j, c in commanded.items()
    }


Advance = Callable[[Mapping[str, float]], dict[str, float]]


def rounded(goals: Mapping[str, float]) -> dict[str, int]:
    return {joint: round(value) for joint, value in goals.items()}


class Ticker:
    """Drift-free periodic timing: deadlines at start + k·period, missed ticks skipped."""

    def __init__(self, rate_hz: float) -> None:
        self.period = 1 / rate_hz
        self._next = time.monotonic()
        self.overruns = 0

    def wait(self) -> None:
        self._next += self.period
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -self.period:
            self.overruns += 1
            self._next = time.monotonic()

    def remaining(self) -> float:
        """Seconds left before the next deadline."""
        return self._next + self.period - time.monotonic()


@dataclass
class CycleStats:
    """Cycle durations and errors over a sliding window, for status and the stats line."""

    window: int = 1000
    durations: deque[float] = field(default_factory=deque)
    starts: deque[float] = field(default_factory=deque)
    errors: int = 0
    cycles: int = 0

    def record(self, started: float, duration: float) -> None:
        self.cycles += 1
        self.durations.append(duration)
        self.starts.append(started)
        if len(self.durations) > self.window:
            self.durations.popleft()
            self.starts.popleft()

    def snapshot(self) -> dict[str, float | int]:
        ordered = sorted(self.durations)
        span = self.starts[-1] - self.starts[0] if len(self.starts) > 1 else 0.0
        return {
            "rate_hz": round((len(self.starts) - 1) / span, 1) if span > 0 else 0.0,
            "cycle_p50_ms": round(_percentile(ordered, 0.50) * 1000, 3),
            "cycle_p99_ms": round(_percentile(ordered, 0.99) * 1000, 3),
            "errors": self.errors,
            "cycles": self.cycles,
        }


class SilenceCounter:
    """Consecutive failed reads of one arm; too many in a row end the session."""

    def __init__(self, arm: str, rate_hz: float) -> None:
        self.arm = arm
        self.allowed = max(3, round(_MISSED_READS_BEFORE_FAULT_S * rate_hz))
        self.missed = 0

    def answered(self) -> None:
        self.missed = 0

    def missed_one(self, why: str) -> None:
        self.missed += 1
        if self.missed >= self.allowed:
            raise PairFault(f"{self.arm} stopped answering for {self.missed} cycles: {why}")


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, math.floor(fraction * len(ordered)))]


class Safety:
    """Turns follower telemetry into faults: heat, supply voltage, overload, error bits."""

    def __init__(self, follower: Arm, config: PairConfig) -> None:
        self.follower = follower
        self.config = config
        self._loaded_since: dict[str, float] = {}

    def check(self, reading: Telemetry) -> None:
        self._check_error_bits(reading)
        self._check_temperature(reading)
        self._check_voltage(reading)
        self._check_load(reading)

    def _name(self, joint: str) -> str:
        return f"follower {joint} (motor {self.follower.motor_ids[joint]})"

    def _check_error_bits(self, reading: Telemetry) -> None:
        faults = reading.faults
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
        now = time.monotonic()
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


class TeleopLoop:
    """Engages the follower and mirrors the leader until told to stop or a fault occurs.

    ``keep_going()`` is asked once per cycle; ``on_cycle()`` is called after each cycle (the
    supervisor's progress heartbeat). Telemetry of one follower motor is read per cycle,
    round-robin, so the loop's bus time stays small.
    """

    def __init__(
        self,
        leader: Arm,
        follower: Arm,
        config: PairConfig,
        keep_going: Callable[[], bool],
        on_cycle: Callable[[], None],
    ) -> None:
        self.leader, self.follower, self.config = leader, follower, config
        self.mirror = Mirror(leader.calibration, follower.calibration, config.clamp_margin_deg)
        self.safety = Safety(follower, config)
        self.keep_going, self.on_cycle = keep_going, on_cycle
        self.stats = CycleStats()
        self.telemetry: dict[str, Telemetry] = {}
        self.commanded: dict[str, float] = {}
        self._leader_silence = SilenceCounter("leader", config.rate_hz)
        self._follower_silence = SilenceCounter("follower", config.rate_hz)
        self._telemetry_index = 0

    # -- engaging --------------------------------------------------------------------------

    def engage(self) -> bool:
        """Torque on where the follower is, then close the gap to the leader's pose.

        The follower moves with the leader's own motion (step-limited, as in teleop) and,
        on top of that, closes the initial offset at engage speed, so the gap shrinks at
        that speed however the hand moves. Returns False if told to stop first.
        """
        present = self.follower.enable_torque_holding_position()
        self.commanded = {joint: float(value) for joint, value in present.items()}
        max_step = degrees_to_ticks(self.config.max_step_deg)
        engage_step = degrees_to_ticks(self.config.engage_speed_dps) / self.config.rate_hz
        previous: dict[str, float] = {}

        def advance(target: Mapping[str, float]) -> dict[str, float]:
            carried = step_toward(
                self.commanded, _shifted(self.commanded, previous, target), max_step
            )
            previous.clear()
            previous.update(target)
            return step_toward(carried, target, engage_step)

        ticker = Ticker(self.config.rate_hz)
        while self.keep_going():
            target = self._cycle(ticker, advance)
            if target and all(abs(self.commanded[j] - target[j]) <= max_step for j in target):
                return True
        return False

    def move_to(self, pose: Mapping[str, float], timeout_s: float = 10.0) -> bool:
        """Ramp the follower to ``pose`` (ticks) at engage speed; True once it is there."""
        step = degrees_to_ticks(self.config.engage_speed_dps) / self.config.rate_hz
        target = {joint: self.mirror.clamp(joint, ticks) for joint, ticks in pose.items()}
        ticker = Ticker(self.config.rate_hz)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ticker.wait()
            self.commanded = step_toward(self.commanded, target, step)
            self.follower.write_goals(rounded(self.commanded))
            self.on_cycle()
            if all(abs(self.commanded[j] - target[j]) < 1 for j in target):
                return True
        return False

    # -- mirroring -------------------------------------------------------------------------

    def run(self) -> None:
        """Mirror the leader until ``keep_going()`` turns False; faults raise PairFault."""
        max_step = degrees_to_ticks(self.config.max_step_deg)
        ticker = Ticker(self.config.rate_hz)
        while self.keep_going():
            self._cycle(ticker, lambda target: step_toward(self.commanded, target, max_step))

    def _cycle(self, ticker: Ticker, advance: Advance) -> dict[str, float] | None:
        """One period: read the leader, move the commanded goals (``advance``), sample health."""
        ticker.wait()
        started = time.monotonic()
        target = None
        positions = self._read_leader(ticker)
        if positions is not None:
            target = self.mirror.target(positions)
            self.commanded = advance(target)
            self._write_follower()
        self._sample_follower()
        self.stats.record(started, time.monotonic() - started)
        self.on_cycle()
        return target

    def _read_leader(self, ticker: Ticker) -> dict[str, int] | None:
        """Leader positions, retried within the cycle; None when this cycle has none."""
        while True:
            try:
                positions = self.leader.read_positions()
            except ServoError as exc:  # the data arrived; the leader's own faults don't stop us
                positions = {self.leader.joint_of(m): v for m, v in exc.values.items()}
            except (BusTimeout, CorruptReply) as exc:
                self.stats.errors += 1
                if ticker.remaining() > ticker.period / 2:
                    continue
                self._leader_silence.missed_one(exc.detail)
                return None
            except PortGone as exc:
                raise PairFault(f"leader board disconnected ({exc.port})") from exc
            if len(positions) == len(self.leader.ids):
                self._leader_silence.answered()
                return positions
            self._leader_silence.missed_one("incomplete reads")
            return None

    def _write_follower(self) -> None:
        try:
            self.follower.write_goals(rounded(self.commanded))
        except PortGone as exc:
            raise PairFault(f"follower board disconnected ({exc.port})") from exc
        except BusError as exc:
            self.stats.errors += 1
            log.debug("follower goal write failed: %s", exc)

    def _sample_follower(self) -> None:
        joint = self.follower.joints[self._telemetry_index % len(self.follower.joints)]
        self._telemetry_index += 1
        try:
            reading = self.follower.read_telemetry(joint)
        except PortGone as exc:
            raise PairFault(f"follower board disconnected ({exc.port})") from exc
        except BusError as exc:
            self.stats.errors += 1
            self._follower_silence.missed_one(exc.detail)
            return
        self._follower_silence.answered()
        self.telemetry[joint] = reading
        self.safety.check(reading)
