"""One manual calibration session: one arm of one pair, neutral pose -> sweep -> review -> save.

Steps: ``starting`` (the host pauses the pair and lends the arm, torque off) -> ``homing``
(live raw ticks; "capture" records the neutral pose) -> ``sweeping`` (live min | POS | max
per joint; "done" is refused while a joint is barely swept) -> ``review`` (old -> new values
and the validator's verdict; errors block saving) -> ``saving`` -> ``saved``, or ``aborted``
from any step with the reason (a request, an emergency stop, a bus error or unplug, an idle
timeout, the daemon stopping). Abort is idempotent; a session that has ended keeps its last
state for the clients that look.

An automatic session (:mod:`so101d.calibrate.auto`) goes ``starting`` -> ``confirming``
(what will move and for how long; nothing moves until "confirm") -> ``calibrating`` (the
arm drives each joint to its stops; ``auto.progress`` live) -> ``review``, the same review
and save. A joint it could not calibrate is kept out: the session goes to ``sweeping`` with
the found joints fixed, and the person sweeps only the failed ones by hand. The servos hold
sweep homing offsets meanwhile: an automatic session that ends without saving writes the
calibration they held before back (best effort; the pair's precheck fixes the rest).

The session's own thread is the only one touching the bus: it samples positions, saves and
writes the EEPROM (through the arm guard, torque confirmed off). Requests from clients only
change the step under a lock, so they return at once. Every client request touches the
session; one that nobody touches for ``idle_timeout_s`` ends (a client that went away may
come back and find it where it was until then).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from so101d.calibrate.auto import (
    AutoCalibration,
    AutoCancelled,
    AutoEmergency,
    AutoSettings,
    JointOutcome,
    as_sweep,
)
from so101d.calibrate.sweep import (
    JointSweep,
    encoder_ticks,
    joint_calibration,
    judge,
    unswept_joints,
)
from so101d.calibration.eeprom import compare_servo_calibration, read_servo_calibration
from so101d.calibration.files import CalibrationFileError, read_calibration
from so101d.calibration.locate import calibration_path, locate_calibration
from so101d.calibration.model import ArmCalibration, Role
from so101d.calibration.store import save_calibration
from so101d.calibration.validate import Finding, Level, check_calibration
from so101d.faults import PairFault
from so101d.feetech import BusError, PortGone
from so101d.motion import ArmGuard

log = logging.getLogger("so101d.calibrate")

DEFAULT_IDLE_TIMEOUT_S = 600.0
SAMPLE_PERIOD_S = 0.02  # 50 Hz, as LeRobot's range recording
# Reads failing this long without a break: a vanished motor, not a slow answer on a busy Pi.
BUS_ERROR_GRACE_S = 1.0
ABORT_WAIT_S = 5.0


class Step(enum.StrEnum):
    STARTING = "starting"
    CONFIRMING = "confirming"
    CALIBRATING = "calibrating"
    HOMING = "homing"
    SWEEPING = "sweeping"
    REVIEW = "review"
    SAVING = "saving"
    SAVED = "saved"
    ABORTED = "aborted"


ACTIVE_STEPS = (
    Step.STARTING,
    Step.CONFIRMING,
    Step.CALIBRATING,
    Step.HOMING,
    Step.SWEEPING,
    Step.REVIEW,
    Step.SAVING,
)


class StepRefused(Exception):
    """A request that does not fit the session's step (or a file the validator refuses)."""


class NotUsable(StepRefused):
    """The validator finds errors in the new calibration: it cannot be saved."""


class NotSwept(StepRefused):
    def __init__(self, joints: list[str]) -> None:
        self.joints = joints
        super().__init__(
            f"not swept yet: {', '.join(joints)}; move each through its whole range, from "
            "end stop to end stop, then try again"
        )


class ArmHost(Protocol):
    """Where a session gets its arm: the daemon's pair, or a port nobody else holds."""

    def lend_arm(self, role: Role, reason: str, cancelled: Callable[[], bool]) -> ArmGuard:
        """The arm opened behind a guard, torque confirmed off on it and on the follower."""
        ...

    def return_arm(self, guard: ArmGuard | None, *, resume: bool) -> None:
        """Close the arm (if it was lent); ``resume``: the pair goes back to teleop."""
        ...


@dataclass(frozen=True)
class Target:
    pair: str
    role: Role
    arm_id: str


@dataclass(frozen=True)
class SessionSettings:
    calibration_dir: Path
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    full_turn_wrist_roll: bool = True  # LeRobot's 0..4095; False records its sweep
    sample_period_s: float = SAMPLE_PERIOD_S


@dataclass(frozen=True)
class _End:
    step: Step
    reason: str
    resume: bool  # the pair goes back to teleop afterwards


class _Ended(Exception):
    """The session ended before its sampling loop (while confirming or calibrating)."""

    def __init__(self, end: _End) -> None:
        super().__init__(end.reason)
        self.end = end


class CalibrationSession:
    """A session's state machine and its sampling thread."""

    def __init__(
        self,
        ident: str,
        target: Target,
        host: ArmHost,
        settings: SessionSettings,
        clock: Callable[[], float] = time.monotonic,
        auto: AutoSettings | None = None,
    ) -> None:
        self.ident, self.target, self.host, self.settings = ident, target, host, settings
        self.auto = auto
        self.clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"calibrate-{ident}", daemon=True)
        self.step = Step.STARTING
        self.reason = f"pausing pair {target.pair} and opening the {target.role}"
        self.started = time.time()
        self.seq = 0
        self._touched = clock()
        self._end: _End | None = None  # requested by a client or the daemon
        self._present: dict[str, int] = {}
        self._offsets: dict[str, int] = {}  # the servos' homing offsets at the start
        self._motor_ids: dict[str, int] = {}
        self._sweeps: dict[str, JointSweep] = {}
        self._old: ArmCalibration | None = None
        self._new: ArmCalibration | None = None
        self._findings: list[Finding] = []
        self._saved: list[dict[str, str | None]] = []
        self._fixed: set[str] = set()  # joints the automatic calibration found: not swept
        self._plan: dict[str, Any] | None = None
        self._progress: dict[str, Any] | None = None
        self._outcomes: dict[str, JointOutcome] = {}
        self._telemetry: list[dict[str, Any]] = []
        self._held_before: ArmCalibration | None = None  # the EEPROM before sweep homing

    @property
    def label(self) -> str:
        t = self.target
        return f"calibration session {self.ident} ({t.pair} {t.role} '{t.arm_id}')"

    @property
    def active(self) -> bool:
        return self.step in ACTIVE_STEPS

    def start(self) -> None:
        log.info("%s: started", self.label)
        self._thread.start()

    # -- client requests (quick; any thread) ---------------------------------------------------

    def touch(self) -> None:
        self._touched = self.clock()

    def confirm(self) -> None:
        """Let the automatic calibration move the arm (after showing its plan)."""
        with self._lock:
            self._require(Step.CONFIRMING, "confirm the automatic calibration")
            self._set_step(Step.CALIBRATING, "the arm calibrates itself: keep clear")
        self._wake.set()

    def telemetry(self) -> list[dict[str, Any]]:
        """Every sample of the automatic calibration so far."""
        with self._lock:
            return list(self._telemetry)

    def capture(self) -> None:
        """Record the neutral pose: the sweep starts from here."""
        with self._lock:
            self._require(Step.HOMING, "capture the neutral pose")
            self._sweeps = {
                joint: JointSweep.at_neutral(encoder_ticks(raw, self._offsets[joint]))
                for joint, raw in self._present.items()
            }
            self._set_step(Step.SWEEPING, "sweep every joint from end stop to end stop")

    def done(self) -> None:
        """End the sweep: refused (NotSwept) while a joint is barely swept."""
        with self._lock:
            self._require(Step.SWEEPING, "finish the sweep")
            unswept = unswept_joints(self._sweeps, self.target.role, full_turn=self._full_turn)
            if unswept:
                raise NotSwept(unswept)
            self._to_review()

    def _to_review(self) -> None:
        self._new = {
            joint: joint_calibration(
                joint, self._motor_ids[joint], sweep, full_turn=self._full_turn
            )
            for joint, sweep in self._sweeps.items()
        }
        self._findings = check_calibration(self._new, self.target.role, self._motor_ids)
        self._set_step(Step.REVIEW, "review the new calibration, then save or abort")

    def save(self) -> None:
        """Save the reviewed calibration (files, then the EEPROM), in the session's thread."""
        with self._lock:
            self._require(Step.REVIEW, "save")
            errors = [f.message for f in self._findings if f.level is Level.ERROR]
            if errors:
                raise NotUsable("the new calibration is not usable: " + "; ".join(errors))
            self._set_step(Step.SAVING, "saving the files and the servos' EEPROM")
        self._wake.set()

    def abort(self, reason: str = "aborted by request", *, resume: bool = True) -> None:
        """End the session (idempotent); returns at once, see :meth:`wait`."""
        with self._lock:
            if self.active and self._end is None:
                self._end = _End(Step.ABORTED, reason, resume)
        self._wake.set()

    def wait(self, timeout: float = ABORT_WAIT_S) -> bool:
        """Wait for the session's thread to have returned the arm; False on timeout."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def state(self) -> dict[str, Any]:
        """Everything a front end shows; ``seq`` grows with every reading and step."""
        with self._lock:
            return {
                "session": self.ident,
                "pair": self.target.pair,
                "arm": str(self.target.role),
                "arm_id": self.target.arm_id,
                "step": str(self.step),
                "active": self.active,
                "reason": self.reason,
                "seq": self.seq,
                "started": dt.datetime.fromtimestamp(self.started, dt.UTC).isoformat(
                    timespec="seconds"
                ),
                "full_turn_wrist_roll": self._full_turn,
                "idle_timeout_s": self.settings.idle_timeout_s,
                "joints": self._joint_states(),
                "unswept": (
                    unswept_joints(self._sweeps, self.target.role, full_turn=self._full_turn)
                    if self.step is Step.SWEEPING
                    else []
                ),
                "review": self._review() if self._new is not None else None,
                "saved": list(self._saved),
                "auto": self._auto_state(),
            }

    def _auto_state(self) -> dict[str, Any] | None:
        if self.auto is None:
            return None
        return {
            "plan": self._plan,
            "progress": self._progress,
            "joints": {joint: o.as_dict() for joint, o in self._outcomes.items()},
            "failed": sorted(j for j, o in self._outcomes.items() if not o.ok),
            "samples": len(self._telemetry),
        }

    # -- the session's thread ------------------------------------------------------------------

    def _run(self) -> None:
        guard: ArmGuard | None = None
        end = _End(Step.ABORTED, "internal error", resume=True)
        try:
            guard = self.host.lend_arm(self.target.role, self.label, lambda: self._end is not None)
            self._begin(guard)
            if self.auto is not None:
                self._calibrate_automatically(guard, self.auto)
            end = self._sample_until_end(guard)
        except _Ended as ended:
            end = ended.end
        except PortGone as exc:
            end = _End(Step.ABORTED, f"the {self.target.role}'s board went away: {exc}", True)
        except (BusError, PairFault, OSError) as exc:
            end = _End(Step.ABORTED, f"{self.target.role}: {getattr(exc, 'reason', exc)}", True)
        except Exception as exc:
            log.exception("%s: unexpected error", self.label)
            end = _End(Step.ABORTED, f"internal error: {exc!r}", True)
        finally:
            requested = self._end
            if requested is not None and end.step is not Step.SAVED:
                end = requested  # an abort that raced the error says why it was asked for
            elif requested is not None and not requested.resume:
                end = replace(end, resume=False)  # saved just before an e-stop: no resume
            if guard is not None and end.step is Step.ABORTED:
                guard.release()  # limp already; an e-stop wants it read back once more
                self._put_back(guard)
            self.host.return_arm(guard, resume=end.resume)
            self._finish(end)

    def _begin(self, guard: ArmGuard) -> None:
        arm = guard.arm
        offsets = arm.sync_read("Homing_Offset")
        present = arm.sync_read("Present_Position")
        old = self._old_calibration()
        with self._lock:
            self._motor_ids, self._offsets, self._present = dict(arm.motor_ids), offsets, present
            self._old = old
            self._set_step(
                Step.HOMING,
                "move the arm to the middle of its range (every joint), then capture",
            )

    # -- the automatic calibration (in the session's thread) -----------------------------------

    def _calibrate_automatically(self, guard: ArmGuard, settings: AutoSettings) -> None:
        engine = AutoCalibration(
            guard,
            replace(settings, full_turn_wrist_roll=self._full_turn),
            clock=self.clock,
            cancelled=lambda: self._end is not None,
            on_progress=self._on_progress,
            telemetry=self._telemetry,
        )
        with self._lock:
            self._plan = engine.plan()
            self._set_step(Step.CONFIRMING, "confirm: " + self._plan["message"])
        self._wait_for_confirmation()
        self._held_before = read_servo_calibration(guard.arm.bus, guard.arm.motor_ids)
        try:
            outcomes = engine.run()
        except AutoCancelled:
            raise _Ended(self._end or _End(Step.ABORTED, "cancelled", True)) from None
        except AutoEmergency as exc:
            raise _Ended(_End(Step.ABORTED, exc.reason, resume=False)) from None
        finally:
            guard.release()  # the review and the save need the arm limp
        present = guard.arm.sync_read("Present_Position")
        with self._lock:
            self._outcomes, self._offsets, self._present = outcomes, engine.offsets, present
            self._sweeps = {
                joint: as_sweep(o)
                if o.ok
                else JointSweep.at_neutral(encoder_ticks(present[joint], engine.offsets[joint]))
                for joint, o in outcomes.items()
            }
            self._fixed = {joint for joint, o in outcomes.items() if o.ok}
            failed = [joint for joint, o in outcomes.items() if not o.ok]
            if not failed:
                self._to_review()
                return
            listed = "; ".join(f"{j}: {outcomes[j].failure}" for j in failed)
            self._set_step(
                Step.SWEEPING,
                f"not calibrated automatically: {listed}. Sweep only {', '.join(failed)} by "
                "hand from end stop to end stop (the others are kept), then done",
            )

    def _wait_for_confirmation(self) -> None:
        while self.step is Step.CONFIRMING:
            if self._end is not None:
                raise _Ended(self._end)
            idle = self.clock() - self._touched
            if idle > self.settings.idle_timeout_s:
                raise _Ended(
                    _End(Step.ABORTED, f"idle timeout: not confirmed in {idle:.0f} s", True)
                )
            self._wake.wait(self.settings.sample_period_s)
            self._wake.clear()

    def _on_progress(self, progress: dict[str, Any]) -> None:
        with self._lock:
            self._progress = progress
            self.seq += 1

    def _put_back(self, guard: ArmGuard) -> None:
        """The calibration the servos held before the sweep homing, written back."""
        if self._held_before is None:
            return
        try:
            guard.write_calibration(self._held_before)
        except (BusError, PairFault) as exc:
            log.warning("%s: the servos' previous calibration not restored: %s", self.label, exc)

    def _sample_until_end(self, guard: ArmGuard) -> _End:
        failing_since: float | None = None
        while True:
            if self._end is not None:
                return self._end
            if self.step is Step.SAVING:
                return self._save(guard)
            idle = self.clock() - self._touched
            if idle > self.settings.idle_timeout_s:  # logged by _finish, like every end
                return _End(Step.ABORTED, f"idle timeout: no client for {idle:.0f} s", True)
            try:
                present = guard.arm.read_positions()
            except PortGone:
                raise
            except BusError:
                failing_since = self.clock() if failing_since is None else failing_since
                if self.clock() - failing_since >= BUS_ERROR_GRACE_S:
                    raise
            else:
                failing_since = None
                self._record(present)
            self._wake.wait(self.settings.sample_period_s)
            self._wake.clear()

    def _record(self, present: dict[str, int]) -> None:
        with self._lock:
            self._present = present
            if self.step is Step.SWEEPING:
                for joint, raw in present.items():
                    if joint not in self._fixed:
                        self._sweeps[joint].update(encoder_ticks(raw, self._offsets[joint]))
            self.seq += 1

    def _save(self, guard: ArmGuard) -> _End:
        new = self._new
        assert new is not None
        saved = save_calibration(self._file_path(), new)
        guard.write_calibration(new)
        differences = compare_servo_calibration(guard.arm.bus, new)
        if differences:
            listed = "; ".join(d.describe() for d in differences)
            raise PairFault(f"the servos did not keep the new calibration: {listed}")
        with self._lock:
            self._saved = [
                {"path": str(s.path), "backup": str(s.backup) if s.backup else None} for s in saved
            ]
        paths = ", ".join(str(s.path) for s in saved)
        return _End(Step.SAVED, f"saved {paths} and the servos' EEPROM", resume=True)

    def _finish(self, end: _End) -> None:
        with self._lock:
            self._set_step(end.step, end.reason)
        level = logging.INFO if end.step is Step.SAVED else logging.WARNING
        log.log(level, "%s: %s: %s", self.label, end.step, end.reason)

    # -- helpers -------------------------------------------------------------------------------

    @property
    def _full_turn(self) -> bool:
        return self.settings.full_turn_wrist_roll

    def _require(self, step: Step, what: str) -> None:
        if self.step is not step:
            raise StepRefused(f"cannot {what} in step {self.step}: {self.reason}")

    def _set_step(self, step: Step, reason: str) -> None:
        self.step, self.reason = step, reason
        self.seq += 1

    def _located(self) -> Path | None:
        t = self.target
        return locate_calibration(self.settings.calibration_dir, t.role, t.arm_id).path

    def _file_path(self) -> Path:
        t = self.target
        return self._located() or calibration_path(self.settings.calibration_dir, t.role, t.arm_id)

    def _old_calibration(self) -> ArmCalibration | None:
        path = self._located()
        try:
            return read_calibration(path) if path is not None else None
        except CalibrationFileError:
            return None  # a broken file is what a calibration replaces

    def _joint_states(self) -> dict[str, dict[str, Any]]:
        joints: dict[str, dict[str, Any]] = {}
        for joint, raw in self._present.items():
            entry: dict[str, Any] = {"raw": raw}
            sweep = self._sweeps.get(joint)
            if sweep is not None:
                verdict = judge(joint, sweep, self.target.role, full_turn=self._full_turn)
                entry.update(
                    min=sweep.as_read(sweep.low),
                    position=sweep.as_read(sweep.position),
                    max=sweep.as_read(sweep.high),
                    range=verdict.span,
                    sigma=None if verdict.sigma is None else round(verdict.sigma, 1),
                    crosses_seam=verdict.crosses_seam,
                    too_wide=verdict.too_wide,
                    barely_swept=verdict.barely_swept,
                )
            joints[joint] = entry
        return joints

    def _review(self) -> dict[str, Any]:
        assert self._new is not None
        old = self._old or {}
        return {
            "path": str(self._file_path()),
            "joints": {
                joint: {
                    "old": old[joint].as_dict() if joint in old else None,
                    "new": motor.as_dict(),
                }
                for joint, motor in self._new.items()
            },
            "errors": [f.message for f in self._findings if f.level is Level.ERROR],
            "warnings": [f.message for f in self._findings if f.level is Level.WARNING],
        }
