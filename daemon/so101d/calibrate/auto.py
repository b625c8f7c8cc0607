"""The automatic calibration: each joint driven gently to its end stops, one at a time.

Before any motion every joint is homed for the sweep (``Homing_Offset`` so that it reads
2047 where it rests, limits 0..4095: the servo then takes goals anywhere on the turn and its
readings stay clear of the seam), torque confirmed off first. Then, joint by joint from the
base to the gripper (:data:`RUN_ORDER`; wrist_roll keeps LeRobot's full turn unless asked for
its stops): torque
on with the goal at the present position, the joint's Torque_Limit reduced, its baseline
load and current measured holding still, goal steps in one direction until a stall
(:mod:`so101d.calibrate.stall`), back off, the other direction, then to the middle of what
was found, where it holds while the next joint moves. The elbow goes before the shoulder:
the shoulder is then swept with the elbow folded (:meth:`AutoCalibration._fold_elbow`).

Positions are tracked as continuous encoder ticks (the homing offset added back), so a
joint's stops are its true span whatever the seam's place; the file's homing offset is chosen
afterwards so that the middle reads 2047. When a direction runs out of room on the turn
before a stop (the joint rested near one end of a long travel), the joint is homed again with
the stop found near the other end of the turn, and that direction driven again.

What is not saved as a stop: a joint that sinks back while its goal is ahead (it cannot move
against gravity at the reduced torque), a travel far short of any SO-101's for that joint
(an obstacle or a cable), no stall before the time runs out. Those joints are reported; the
others are kept. Temperatures and currents are watched on every sample: a warning, a pause
with torque off until the motor cools, an emergency stop with every torque off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from so101d.arm import Effort
from so101d.calibrate.stall import Baseline, StallDetector, StallRule
from so101d.calibrate.sweep import JointSweep, encodable_offset, encoder_ticks
from so101d.calibration.model import GRIPPER, WRIST_ROLL, MotorCalibration, Role
from so101d.calibration.validate import reference_band, shortest_travel
from so101d.faults import PairFault
from so101d.feetech import BusError, PortGone
from so101d.feetech.registers import ENCODER_RESOLUTION, HALF_TURN, MAX_POSITION
from so101d.motion import ArmGuard, SettingChange, seam_delta

log = logging.getLogger("so101d.calibrate.auto")
T = TypeVar("T")

SHOULDER_LIFT, ELBOW_FLEX = "shoulder_lift", "elbow_flex"
GRAVITY_JOINTS = (SHOULDER_LIFT, ELBOW_FLEX)
# Base to gripper, but the elbow before the shoulder: the shoulder carries the whole arm, and
# with the forearm folded back over the upper arm the weight hangs near the shoulder's axis.
# The simulator's 5 V leaders need about 75 % of their torque to lift the arm stretched out
# (more than the current limit allows) and a few per cent folded.
RUN_ORDER = ("shoulder_pan", ELBOW_FLEX, SHOULDER_LIFT, "wrist_flex", WRIST_ROLL, GRIPPER)
# elbow_flex folds towards higher readings: in LeRobot's frame -90° is the forearm stretched
# out in line with the upper arm (the old frame's zero, ``elbow_flex = old - 90``) and +90°
# is folded back over it, where an SO-101 rests.
_FOLDED = 1
_ROOM_CLEARANCE = 150  # ticks from the turn's end where a re-homed stop is placed
_ARRIVED_TICKS = 8
_SETTLED_SAMPLES = 5  # samples without motion, the goal reached: a move is over
_SAME_STALL = 15  # ticks: a stall again this close with more torque is the stop
_CURRENT_HEADROOM = 0.8  # of the current limit: a stronger push must stay below it
_SINK_TICKS = 40  # a joint this far back from its best while its goal is ahead: gravity won
_SHORT_FRACTION = 0.75  # of the shortest travel on any SO-101: "far short"
# A joint carrying the arm may stall where its weight balances the torque allowed: a stricter
# bar (the simulator's weakest leaders stalled so at up to 80 % of that travel).
_GRAVITY_SHORT_FRACTION = 0.9
_TEMPERATURE_EVERY = 10  # samples between temperature reads of the whole arm
_COOL_POLL_S = 1.0
_TRIES = 4
_STIFF_GAIN = 32  # the STS3215's factory P_Coefficient


@dataclass(frozen=True)
class AutoSettings:
    """The automatic calibration's limits (config keys ``autocal_*``)."""

    torque_limit_pct: float = 30.0
    gripper_torque_limit_pct: float = 20.0
    gravity_torque_limit_pct: float = 90.0  # shoulder_lift, elbow_flex lifting the arm
    gravity_torque_step_pct: float = 15.0
    speed_dps: float = 90.0
    sample_period_s: float = 0.02
    back_off_ticks: int = 80
    warn_temperature_c: float = 40.0
    pause_temperature_c: float = 45.0
    resume_temperature_c: float = 40.0
    stop_temperature_c: float = 50.0
    max_current_ma: float = 1200.0
    cooldown_s: float = 300.0
    full_turn_wrist_roll: bool = True
    stall: StallRule = field(default_factory=StallRule)

    def torque_limit(self, joint: str) -> int:
        """Torque_Limit in 0.1 % units."""
        pct = self.gripper_torque_limit_pct if joint == GRIPPER else self.torque_limit_pct
        return round(pct * 10)

    @property
    def speed_ticks(self) -> float:
        return self.speed_dps * ENCODER_RESOLUTION / 360


class AutoCancelled(Exception):
    """The session ended (abort, e-stop, unplug) while the arm moved."""


class AutoEmergency(PairFault):
    """Too hot or too much current: every torque is off, the session ends."""


class _LeftTheRoom(Exception):
    """A joint past the ends of the sweep's turn (a stall taken for a stop was not one)."""


@dataclass
class JointOutcome:
    """One joint's result: its stops in continuous encoder ticks, or why there are none."""

    joint: str
    low: int | None = None
    high: int | None = None
    full_turn: bool = False  # wrist_roll, not swept: ``neutral`` is where it rests
    neutral: int | None = None
    failure: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failure is None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class _Run:
    """One direction's drive: how it ended and where."""

    kind: str  # "stop", "room" (the turn ends first), "gravity", "timeout"
    position: float
    start: float

    @property
    def distance(self) -> int:
        return round(abs(self.position - self.start))


class AutoCalibration:
    """One arm's automatic calibration; :meth:`run` in the thread that owns the bus."""

    def __init__(
        self,
        guard: ArmGuard,
        settings: AutoSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        cancelled: Callable[[], bool] = lambda: False,
        on_progress: Callable[[dict[str, Any]], None] = lambda progress: None,
        telemetry: list[dict[str, Any]] | None = None,
    ) -> None:
        self.guard, self.settings = guard, settings
        self.arm = guard.arm
        self.role = Role(self.arm.role)
        self.clock, self.sleep, self.cancelled = clock, sleep, cancelled
        self.on_progress, self.telemetry = on_progress, telemetry
        self.joints = [joint for joint in RUN_ORDER if joint in self.arm.motor_ids]
        self.offsets: dict[str, int] = {}  # the homing offsets the servos hold now
        self.outcomes: dict[str, JointOutcome] = {}
        self.temperatures: dict[str, int] = {}
        self.started_temperatures: dict[str, int] = {}
        self.peak_temperatures: dict[str, int] = {}
        self.status = "calibrating"
        self._position: dict[str, float] = {}  # continuous encoder ticks
        self._encoder: dict[str, int] = {}  # the last encoder reading, 0..4095
        self._started = clock()
        self._joint_started = self._started
        self._current: str | None = None
        self._samples = 0
        self._warned: set[str] = set()
        self._torque_caps: dict[str, int] = {}  # EEPROM Max_Torque_Limit, 0.1 %

    # -- the plan ----------------------------------------------------------------------------

    def moving_joints(self) -> list[str]:
        return [
            j for j in self.joints if not (j == WRIST_ROLL and self.settings.full_turn_wrist_roll)
        ]

    def estimate_s(self, joint: str) -> float:
        """The expected time of one joint: to one stop, across, back to the middle."""
        if joint not in self.moving_joints():
            return 0.0
        band = reference_band(self.role, joint)
        travel = (band.mean or (band.low + band.high) / 2) if band else 2048
        seconds = 2.5 * travel / self.settings.speed_ticks + 1.0
        # Measured: a joint carrying the arm takes about twice as long (its room on the
        # turn, homed again, and stronger pushes).
        return 2 * seconds if joint in GRAVITY_JOINTS else seconds

    def plan(self) -> dict[str, Any]:
        """What will move, how hard and for how long: shown before asking to confirm."""
        moving = self.moving_joints()
        limits = {j: self.settings.torque_limit(j) / 10 for j in moving}
        seconds = sum(self.estimate_s(j) for j in moving)
        held = [j for j in self.joints if j not in moving]
        return {
            "joints": moving,
            "held": held,
            "torque_limit_pct": limits,
            "speed_dps": self.settings.speed_dps,
            "estimated_s": round(seconds, 1),
            "message": (
                f"the {self.role} will move on its own, one joint at a time "
                f"({', '.join(moving)}; the elbow folded while the shoulder moves), to "
                f"each end stop and back to its middle, at "
                f"{self.settings.speed_dps:g} °/s and at most "
                f"{max(limits.values(), default=0):g} % torque ({' and '.join(GRAVITY_JOINTS)} "
                f"up to {self.settings.gravity_torque_limit_pct:g} % where the arm's weight "
                f"needs it, under {self.settings.max_current_ma:g} mA), for about "
                f"{seconds:.0f} s. Clear the space around the arm first."
            ),
        }

    def progress(self) -> dict[str, Any]:
        done = len(self.outcomes)
        now = self.clock()
        remaining = sum(self.estimate_s(j) for j in self.joints[done:])
        if self._current is not None:
            remaining -= min(now - self._joint_started, self.estimate_s(self._current))
        return {
            "status": self.status,
            "current_motor": self._current,
            "progress": f"{done}/{len(self.joints)} motors",
            "temperatures": dict(self.temperatures),
            "time_elapsed": round(now - self._started, 1),
            "estimated_remaining": round(max(remaining, 0.0), 1),
        }

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> dict[str, JointOutcome]:
        """Every joint in :data:`RUN_ORDER`; the outcomes in the arm's order. The arm ends
        holding each joint at its middle (the caller releases it). Raises AutoCancelled or
        AutoEmergency; bus errors propagate."""
        self._started = self.clock()
        self._read_temperatures()
        self.started_temperatures = dict(self.temperatures)
        self._torque_caps = self._retrying(lambda: self.arm.sync_read("Max_Torque_Limit"))
        encoders = {
            joint: encoder_ticks(raw, offset)
            for (joint, raw), offset in zip(
                self.arm.sync_read("Present_Position").items(),
                self.arm.sync_read("Homing_Offset").values(),
                strict=True,
            )
        }
        self._encoder = dict(encoders)
        self._position = {joint: float(value) for joint, value in encoders.items()}
        self._stiffen()
        self._home({joint: value - HALF_TURN for joint, value in encoders.items()})
        try:
            for joint in self.joints:
                self._current, self._joint_started = joint, self.clock()
                self._report()
                outcome = self._calibrate_joint(joint)
                outcome.seconds = round(self.clock() - self._joint_started, 2)
                self.outcomes[joint] = outcome
                log.info("%s %s: %s", self.role, joint, _describe(outcome))
        finally:
            self._retrying(self.guard.restore_torque_limits)
        self._current, self.status = None, "done"
        self._report()
        return {joint: self.outcomes[joint] for joint in self.arm.joints}  # the file's order

    def _calibrate_joint(self, joint: str) -> JointOutcome:
        if joint not in self.moving_joints():
            return JointOutcome(joint, full_turn=True, neutral=self._encoder[joint])
        elbow = self._fold_elbow() if joint == SHOULDER_LIFT else None
        outcome = self._swept(joint)
        if elbow is not None:
            self._move_to(ELBOW_FLEX, elbow)
        return outcome

    def _fold_elbow(self) -> float | None:
        """The elbow (found already) to its folded end, backed off as after its stop: the
        middle to return it to, or None when the elbow was not found."""
        elbow = self.outcomes.get(ELBOW_FLEX)
        if elbow is None or elbow.low is None or elbow.high is None:
            return None
        stop = elbow.high if _FOLDED > 0 else elbow.low
        self._move_to(ELBOW_FLEX, stop - _FOLDED * self.settings.back_off_ticks)
        return (elbow.low + elbow.high) / 2

    def _swept(self, joint: str) -> JointOutcome:
        try:
            with self._reduced_torque(joint):
                outcome = self._find_stops(joint)
                if outcome.ok:
                    assert outcome.low is not None and outcome.high is not None
                    self._move_to(joint, (outcome.low + outcome.high) / 2)
        except _LeftTheRoom as exc:
            # Its goals would now wrap and drive it the long way round: torque off at once.
            self.guard.release()
            log.warning("%s %s: %s: torque off", self.role, joint, exc)
            self._resync()
            self.guard.torque_on_holding(calibrating=True)
            return JointOutcome(joint, failure=f"{exc}: a stop found was not its end stop")
        return outcome

    @contextmanager
    def _reduced_torque(self, joint: str) -> Iterator[None]:
        self._limit_torque(joint, self.settings.torque_limit(joint))
        try:
            yield
        finally:
            self._retrying(self.guard.restore_torque_limits)

    def _find_stops(self, joint: str) -> JointOutcome:
        baseline = self._baseline(joint)
        stops: dict[int, float] = {}
        runs: dict[int, _Run] = {}
        for direction in (-1, 1):
            run = self._drive(joint, direction, baseline)
            runs[direction] = run
            if run.kind == "stop":
                stops[direction] = run.position
                self._move_to(joint, run.position - direction * self.settings.back_off_ticks)
            elif run.kind != "room":
                return self._failed(joint, run)
        missing = [d for d in (-1, 1) if d not in stops]
        if len(missing) == 2:
            return JointOutcome(joint, failure="no end stop within one turn either way")
        if missing:
            direction = missing[0]
            self._rehome_beside(joint, stops[-direction], direction)
            baseline = self._baseline(joint)
            run = self._drive(joint, direction, baseline)
            runs[direction] = run
            if run.kind != "stop":
                return self._failed(joint, run)
            stops[direction] = run.position
            self._move_to(joint, run.position - direction * self.settings.back_off_ticks)
        return self._judged(joint, round(stops[-1]), round(stops[1]), runs)

    def _judged(self, joint: str, low: int, high: int, runs: Mapping[int, _Run]) -> JointOutcome:
        travel = high - low
        shortest = shortest_travel(joint) or 0
        if travel <= 0:  # the second "stop" behind the first: the joint sank meanwhile
            pct = self.settings.torque_limit(joint) / 10
            return JointOutcome(
                joint, failure=f"cannot hold against gravity at {pct:g} % torque: calibrate by hand"
            )
        fraction = _GRAVITY_SHORT_FRACTION if joint in GRAVITY_JOINTS else _SHORT_FRACTION
        if travel < fraction * shortest:
            went = ", ".join(
                f"{'down' if d < 0 else 'up'} {run.distance} ticks" for d, run in runs.items()
            )
            suspects = "obstacle or cable?"
            if joint in GRAVITY_JOINTS:
                suspects = "the arm too heavy for the torque allowed, an obstacle or a cable?"
            return JointOutcome(
                joint,
                failure=(
                    f"stopped after {travel} ticks ({went}), far short of any SO-101's "
                    f"{joint} (at least {shortest}): {suspects}"
                ),
            )
        return JointOutcome(joint, low=low, high=high)

    def _failed(self, joint: str, run: _Run) -> JointOutcome:
        direction = "down" if run.position < run.start else "up"
        if run.kind == "gravity":
            pct = self.settings.torque_limit(joint) / 10
            why = (
                f"cannot move against gravity at {pct:g} % torque (sank back after "
                f"{run.distance} ticks {direction}): support the arm or calibrate it by hand"
            )
        else:
            why = f"no stall found {direction} after {run.distance} ticks: obstacle or cable?"
        return JointOutcome(joint, failure=why)

    # -- driving -----------------------------------------------------------------------------

    def _baseline(self, joint: str) -> Baseline:
        loads: list[int] = []
        currents: list[float] = []
        for _ in range(self.settings.stall.confirm_samples + 2):
            effort = self._step(joint, None)
            loads.append(effort.load)
            currents.append(effort.current_ma)
        return Baseline.of(loads, currents)

    def _drive(self, joint: str, direction: int, baseline: Baseline) -> _Run:
        """Goal steps towards the end of the turn until a stall, or until it ends.

        A gravity joint's stall may be its weight, not its stop: it is pushed again with
        more torque (up to the gravity limit); a stop is where it stalls again."""
        low, high = self.guard.bounds[joint]
        far = high if direction > 0 else low
        start = self._position[joint]
        best = start
        limit = self.settings.torque_limit(joint)
        self._limit_torque(joint, limit)
        detector = self._detector(joint, direction, baseline, limit)
        stalled_at: float | None = None
        deadline = self.clock() + 2 * ENCODER_RESOLUTION / self.settings.speed_ticks + 2.0
        while True:
            effort = self._step(joint, far)
            position = self._position[joint]
            goal = self._as_position(joint, self.guard.commanded.get(joint, position))
            if detector.update(position, goal, effort.load, effort.current_ma):
                again = stalled_at is not None and abs(position - stalled_at) < _SAME_STALL
                stronger = self._stronger(joint, limit, effort.current_ma)
                if again or stronger is None:
                    return _Run("stop", position, start)
                stalled_at, limit = position, stronger
                self._limit_torque(joint, limit)
                detector = self._detector(joint, direction, baseline, limit)
            best = max(best, position) if direction > 0 else min(best, position)
            if direction * (best - position) > _SINK_TICKS:
                stronger = self._stronger(joint, limit, effort.current_ma)
                if stronger is None:
                    return _Run("gravity", best, start)
                best, limit = position, stronger
                self._limit_torque(joint, limit)
                detector = self._detector(joint, direction, baseline, limit)
            at_end = abs(self.guard.commanded.get(joint, 0.0) - far) < 0.5
            if at_end and abs(goal - position) < self.settings.stall.lead_ticks:
                return _Run("room", position, start)
            if self.clock() > deadline:
                return _Run("timeout", position, start)

    def _detector(
        self, joint: str, direction: int, baseline: Baseline, limit: int
    ) -> StallDetector:
        return StallDetector(direction, baseline, self._capped(joint, limit), self.settings.stall)

    def _capped(self, joint: str, limit: int) -> int:
        """The torque a servo gives at Torque_Limit ``limit``: its Max_Torque_Limit caps it."""
        return min(limit, self._torque_caps.get(joint, limit))

    def _limit_torque(self, joint: str, limit: int) -> None:
        self._retrying(lambda: self.guard.limit_torque(joint, limit))

    def _stronger(self, joint: str, limit: int, current_ma: float) -> int | None:
        """The next torque limit to try a gravity joint's stall with, or None: none beyond
        the gravity limit or the servo's Max_Torque_Limit, nor one whose current (in
        proportion) nears the current limit."""
        most = round(self.settings.gravity_torque_limit_pct * 10)
        if joint not in GRAVITY_JOINTS or limit >= most or self._capped(joint, limit) < limit:
            return None
        stronger = min(limit + round(self.settings.gravity_torque_step_pct * 10), most)
        if current_ma * stronger / limit > _CURRENT_HEADROOM * self.settings.max_current_ma:
            return None
        return stronger

    def _move_to(self, joint: str, position: float) -> None:
        """To a continuous position (back off, the middle), thermal checks on the way."""
        target = self._as_reading(joint, position)
        deadline = self.clock() + ENCODER_RESOLUTION / self.settings.speed_ticks + 2.0
        still = 0
        while abs(self._position[joint] - position) > _ARRIVED_TICKS:
            before = self._position[joint]
            self._step(joint, target)
            goal_there = abs(self.guard.commanded.get(joint, target) - target) < 0.5
            moved = abs(self._position[joint] - before) >= 1
            still = still + 1 if goal_there and not moved else 0
            # A joint its weight holds short of the goal stays there: it has arrived.
            if still >= _SETTLED_SAMPLES or self.clock() > deadline:
                return

    def _step(self, joint: str, target: float | None) -> Effort:
        """One sample: a goal step towards ``target`` (reading ticks; None: hold), wait,
        read the joint, check the limits."""
        if self.cancelled():
            raise AutoCancelled("the session ended")
        if target is not None:
            speed = {joint: self.settings.speed_dps}
            self.guard.command({joint: target}, speed, stop_move=True)
        self.sleep(self.settings.sample_period_s)
        effort = self._retrying(lambda: self.arm.read_effort(joint))
        self._track(joint, effort.position)
        goal = self.guard.commanded.get(joint)
        if goal is not None and abs(effort.position - goal) > HALF_TURN:
            raise _LeftTheRoom(
                f"{joint} went past the end of the sweep's turn (reads {effort.position}, "
                f"its goal {goal:.0f})"
            )
        self._temperature(joint, effort.temperature_c)
        self._samples += 1
        if self._samples % _TEMPERATURE_EVERY == 0:
            self._read_temperatures()
            self._report()
        self._record(joint, effort)
        self._check_limits(joint, effort)
        return effort

    def _retrying(self, action: Callable[[], T]) -> T:
        """A transient bus error (a late reply on a busy Pi) is tried again; a vanished
        board or a motor that keeps failing raises."""
        for _ in range(_TRIES - 1):
            try:
                return action()
            except PortGone:
                raise
            except BusError as exc:
                log.debug("%s: tried again after %s", self.role, exc)
        return action()

    # -- frames ------------------------------------------------------------------------------

    def _track(self, joint: str, raw: int) -> None:
        encoder = encoder_ticks(raw, self.offsets[joint])
        self._position[joint] += seam_delta(encoder, self._encoder[joint])
        self._encoder[joint] = encoder

    def _reading_base(self, joint: str) -> float:
        """continuous = reading + base, for readings of the present homing (no seam inside
        the sweep's room)."""
        position = self._position[joint]
        reading = (self._encoder[joint] - self.offsets[joint]) % ENCODER_RESOLUTION
        return position - reading

    def _as_reading(self, joint: str, position: float) -> float:
        return position - self._reading_base(joint)

    def _as_position(self, joint: str, reading: float) -> float:
        return reading + self._reading_base(joint)

    def _home(self, offsets: Mapping[str, int]) -> None:
        """Write sweep homing offsets (limits 0..4095), torque off first, then torque on
        holding where every joint is."""
        self.guard.release()
        calibration = {}
        for joint, offset in offsets.items():
            encodable, _ = encodable_offset(offset)
            calibration[joint] = MotorCalibration(
                self.arm.motor_ids[joint], 0, encodable, 0, MAX_POSITION
            )
            self.offsets[joint] = encodable
        self.guard.write_calibration(calibration)
        self._resync()
        self.guard.torque_on_holding(calibrating=True)

    def _stiffen(self) -> None:
        """The factory position gain for the run (LeRobot's 16 lags at speed under load, and
        a lag must not pass for a stall); the pair's precheck and LeRobot's configure() set
        16 again."""
        gains = self.arm.sync_read("P_Coefficient")
        self.guard.apply_settings(
            SettingChange(joint, self.arm.motor_ids[joint], "P_Coefficient", gain, _STIFF_GAIN)
            for joint, gain in gains.items()
            if gain != _STIFF_GAIN
        )

    def _rehome_beside(self, joint: str, stop: float, direction: int) -> None:
        """Home ``joint`` again so that its stop found opposite ``direction`` reads near the
        end of the turn, leaving the whole turn in ``direction``."""
        wanted = _ROOM_CLEARANCE if direction > 0 else MAX_POSITION - _ROOM_CLEARANCE
        encoder = round(stop) % ENCODER_RESOLUTION
        log.info("%s %s: homed again to reach its other stop", self.role, joint)
        self._home({**self.offsets, joint: encoder - wanted})

    def _resync(self) -> None:
        """After a limp moment (the arm may have sunk): positions read afresh, continuous."""
        for joint, raw in self.arm.sync_read("Present_Position").items():
            self._track(joint, raw)

    # -- limits and reports ------------------------------------------------------------------

    def _read_temperatures(self) -> None:
        read = self._retrying(lambda: self.arm.sync_read("Present_Temperature"))
        for joint, value in read.items():
            self._temperature(joint, value)

    def _temperature(self, joint: str, value: int) -> None:
        self.temperatures[joint] = value
        self.peak_temperatures[joint] = max(value, self.peak_temperatures.get(joint, value))

    @property
    def peak_rise_c(self) -> int:
        """The largest temperature rise of any motor since the run started."""
        return max(
            (p - self.started_temperatures.get(j, p) for j, p in self.peak_temperatures.items()),
            default=0,
        )

    def _check_limits(self, joint: str, effort: Effort) -> None:
        s = self.settings
        hottest = max(self.temperatures, key=lambda j: self.temperatures[j])
        temperature = self.temperatures[hottest]
        if temperature >= s.stop_temperature_c or effort.current_ma > s.max_current_ma:
            self._emergency(
                f"{hottest} at {temperature} °C, {joint} drawing {effort.current_ma:.0f} mA "
                f"(limits {s.stop_temperature_c:g} °C, {s.max_current_ma:g} mA)"
            )
        if temperature >= s.pause_temperature_c:
            self._cool_down(hottest)
        elif temperature >= s.warn_temperature_c and hottest not in self._warned:
            self._warned.add(hottest)
            log.warning("%s %s is warm: %d °C", self.role, hottest, temperature)

    def _emergency(self, why: str) -> None:
        reason = f"automatic calibration emergency stop: {why}"
        self.guard.gate.emergency_stop(reason)
        released = self.guard.release()
        log.error(
            "%s: %s; %s; temperatures %s; last samples %s",
            self.role,
            reason,
            released.describe(),
            self.temperatures,
            (self.telemetry or [])[-5:],
        )
        raise AutoEmergency(f"{reason}; {released.describe()}")

    def _cool_down(self, joint: str) -> None:
        s = self.settings
        self.status = "cooling"
        log.warning(
            "%s %s at %d °C: torque off, cooling to %g °C (at most %g s)",
            self.role,
            joint,
            self.temperatures[joint],
            s.resume_temperature_c,
            s.cooldown_s,
        )
        self.guard.release()
        deadline = self.clock() + s.cooldown_s
        while True:
            self._report()
            if self.cancelled():
                raise AutoCancelled("the session ended")
            self._read_temperatures()
            if self.temperatures[joint] >= s.stop_temperature_c:
                self._emergency(f"{joint} at {self.temperatures[joint]} °C while cooling")
            if self.temperatures[joint] <= s.resume_temperature_c:
                break
            if self.clock() > deadline:
                raise AutoEmergency(
                    f"{joint} did not cool to {s.resume_temperature_c:g} °C in "
                    f"{s.cooldown_s:g} s (at {self.temperatures[joint]} °C): torque stays off"
                )
            self.sleep(_COOL_POLL_S)
        self.status = "calibrating"
        self._resync()
        self.guard.torque_on_holding(calibrating=True)

    def _record(self, joint: str, effort: Effort) -> None:
        if self.telemetry is None:
            return
        goal = self.guard.commanded.get(joint)
        self.telemetry.append(
            {
                "time": round(self.clock() - self._started, 4),
                "joint": joint,
                "position": effort.position,
                "goal": None if goal is None else round(goal),
                "current_ma": effort.current_ma,
                "load": effort.load,
                "temperature_c": effort.temperature_c,
            }
        )

    def _report(self) -> None:
        self.on_progress(self.progress())


def as_sweep(outcome: JointOutcome) -> JointSweep:
    """A joint's found stops as the manual session's sweep, homed at their middle (so the
    saved offset puts the middle at 2047); wrist_roll's full turn homed where it rests."""
    if outcome.full_turn:
        assert outcome.neutral is not None
        return JointSweep.at_neutral(outcome.neutral)
    assert outcome.low is not None and outcome.high is not None, outcome.failure
    middle = (outcome.low + outcome.high) // 2
    turns = middle - middle % ENCODER_RESOLUTION
    sweep = JointSweep.at_neutral(middle - turns)
    sweep.low, sweep.high = outcome.low - turns, outcome.high - turns
    return sweep


def _describe(outcome: JointOutcome) -> str:
    if outcome.full_turn:
        return "full turn (not swept)"
    if outcome.failure:
        return f"failed: {outcome.failure}"
    return f"stops {outcome.low}..{outcome.high} in {outcome.seconds:g} s"
