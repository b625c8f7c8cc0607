"""One leader/follower pair's state machine, running in its own thread.

waiting → checking → prechecking → engaging → teleop (→ resting, the rest policy's move);
any trouble → fault, then back to waiting after a capped exponential backoff, or latched
until what can fix it happens (a calibration file changes, a board is replugged, the
follower cools, or `so101d resume`).
`pause`/`emergency stop` close the pair's motion gate and park it in ``paused`` until
resumed; an emergency stop also switches the follower's torque off at once, from the
caller's thread, in whatever state the pair is. Every transition is logged once with its
reason. Nothing here can stop another pair or the process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from so101d.arm import Arm
from so101d.calibration.model import Role
from so101d.checking import (
    ArmFiles,
    PairCalibration,
    calibration_fingerprint,
    load_pair_calibration,
)
from so101d.config import PairConfig
from so101d.faults import Latch, PairFault, SafetyFault
from so101d.feetech import BusError, PortBusy, PortGone
from so101d.frames import Frame, convert
from so101d.motion import (
    ArmGuard,
    MotionGate,
    MotionLimits,
    MotionRefused,
    Release,
    degrees_to_ticks,
)
from so101d.precheck import PrecheckReport, run_precheck
from so101d.readings import CoolingCheck, Health, clock_time, from_telemetry
from so101d.teleop import TeleopLoop
from so101d.wording import counted

# What `resume` did to a pair (CHECKING: a cooling fault, checked again at once).
RESUMED, NOT_RESUMED, CHECKING = "resumed", "not resumed", "checking"
NOTHING_TO_RESUME = "nothing to resume"
MAX_BACKOFF_S = 30.0
FIRST_BACKOFF_S = 0.5
STABLE_TELEOP_S = 10.0  # a session this long resets the backoff
COOLING_CHECK_S = 5.0
REST_MOVE_TIMEOUT_S = 6.0  # the longest stop move; the daemon's shutdown waits longer
RELEASE_RETRY_S = 1.0
LEND_TIMEOUT_S = REST_MOVE_TIMEOUT_S + 10.0  # a pause may first finish the rest move
LEND_POLL_S = 0.02
_EMERGENCY = "emergency stop: follower torque off; `so101d resume` to continue"


class State(enum.StrEnum):
    WAITING = "waiting"
    CHECKING = "checking"
    PRECHECKING = "prechecking"
    ENGAGING = "engaging"
    TELEOP = "teleop"
    RESTING = "resting"  # the rest stop policy's move
    PAUSED = "paused"
    FAULT = "fault"
    STOPPED = "stopped"


def arm_files(config: PairConfig) -> tuple[ArmFiles, ArmFiles]:
    """Where the pair's calibration files are found: by role, calibration id and motor map."""
    return (
        ArmFiles(Role.LEADER, config.leader.id, config.leader.motor_ids),
        ArmFiles(Role.FOLLOWER, config.follower.id, config.follower.motor_ids),
    )


_LOOP_STATES = (State.ENGAGING, State.TELEOP, State.RESTING)


class PairRunner(threading.Thread):
    """Runs one pair. Other threads call the control methods and read :meth:`snapshot`."""

    def __init__(
        self,
        config: PairConfig,
        calibration_dir: Path,
        *,
        stats_interval_s: float = 5.0,
        heartbeat_s: float = 1.0,
    ) -> None:
        super().__init__(name=f"pair-{config.name}", daemon=True)
        self.config = config
        self.calibration_dir = calibration_dir
        self.stats_interval_s = stats_interval_s
        self.heartbeat_s = heartbeat_s
        self.log = logging.getLogger(f"so101d.pair.{config.name}")
        self.arms = arm_files(config)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._stop_reason = "daemon stopping"
        self._arms: tuple[Arm, ...] = ()  # the open arms of the session, for abandon()
        self.gate = MotionGate()
        self._port_lock = threading.Lock()  # opening the follower vs an e-stop reaching it
        self._follower_guard: ArmGuard | None = None
        self._release_pending = False  # a torque off that could not be confirmed yet
        self._next_release_try = 0.0
        self._resumed = 0
        self._device_generation = 0
        self._backoff_level = 0
        self._loop: TeleopLoop | None = None
        self._last_stats = 0.0
        self._retry: tuple[int, float] | None = None  # attempt number, its wall-clock time
        self._cooling: CoolingCheck | None = None
        self._last_table: str | None = None
        self._last_precheck: dict[str, Any] | None = None
        self._precheck_runs = 0
        self.heartbeat = time.monotonic()
        self.state = State.WAITING
        self.reason = "starting"
        self.latch: Latch | None = None
        self.since = time.time()
        self.restarts = 0

    # -- control, from other threads -------------------------------------------------------

    def devices_changed(self) -> None:
        with self._lock:
            self._device_generation += 1
        self._wake.set()

    def pause(self, reason: str = "paused by request") -> None:
        self.gate.pause(reason)
        self._wake.set()

    def emergency_stop(self) -> Release:
        """Latch the gate, then torque off on every follower motor it can reach, read back."""
        self.gate.emergency_stop(_EMERGENCY)
        self._wake.set()
        with self._port_lock:
            guard = self._follower_guard
            released = guard.release() if guard else self._release_unheld_follower()
        self._release_pending = not released.ok
        return released

    def resume(self) -> dict[str, str]:
        """Resume a pause or retry a fault now; say what happened, or why it could not.

        A cooling fault is not overridden: the follower is checked again at once, and it
        resumes by itself when it is cool enough.
        """
        with self._lock:
            outcome = self._resume_outcome()
            if outcome["outcome"] != NOTHING_TO_RESUME:
                self.gate.resume()
                self._resumed += 1
                self._backoff_level = 0
        self._wake.set()
        return outcome

    def _resume_outcome(self) -> dict[str, str]:
        state, reason = self.state, self.reason
        if paused := self.gate.closed_reason:
            return {"outcome": RESUMED, "detail": f"was paused: {paused}"}
        if state is State.FAULT and self.latch is Latch.COOLING:
            return {"outcome": CHECKING, "detail": self._still_hot()}
        if state is State.FAULT:
            return {"outcome": RESUMED, "detail": f"retrying now; the fault was: {reason}"}
        absent = self._absent_ports()
        if absent:
            return {"outcome": NOT_RESUMED, "detail": f"still missing: {' and '.join(absent)}"}
        return {"outcome": NOTHING_TO_RESUME, "detail": f"it is {state}, not paused or faulted"}

    def _still_hot(self) -> str:
        resume_c = self.config.resume_temperature_c
        if cooling := self._current_cooling():
            joint, hottest = cooling.health.hottest()
            at = clock_time(time.time() - cooling.health.age_s())
            latest = f"follower {joint} was at {hottest} °C at the last check ({at})"
        else:
            latest = f"follower over its temperature limit since {clock_time(self.since)}"
        return f"cooling: {latest}; it resumes by itself below {resume_c:g} °C; checking now"

    def _current_cooling(self) -> CoolingCheck | None:
        """The cooling check of the present fault, if it has had one."""
        cooling = self._cooling
        if cooling is None or self.state is not State.FAULT or cooling.fault_since != self.since:
            return None
        return cooling

    def stop(self, reason: str = "daemon stopping") -> None:
        self._stop_reason = reason
        self._stopping = True
        self._wake.set()

    def abandon(self) -> None:
        """Stop, and close the session's buses under the thread, so that a call it is
        blocked in fails (it waits only for a transaction already on the wire). For a
        runner that stopped making progress; it never reopens them."""
        self.stop(self._stop_reason)
        for arm in self._arms:
            arm.close()

    def successor(self) -> PairRunner:
        """A fresh runner for this pair, not started, sharing its motion gate (a pause or an
        emergency stop stays in force); for replacing this one when it stopped making
        progress."""
        fresh = PairRunner(
            self.config,
            self.calibration_dir,
            stats_interval_s=self.stats_interval_s,
            heartbeat_s=self.heartbeat_s,
        )
        fresh.gate = self.gate
        fresh.restarts = self.restarts + 1
        return fresh

    # -- lending an arm to a calibration session ---------------------------------------------

    def lend_arm(self, role: Role, reason: str, cancelled: Callable[[], bool]) -> ArmGuard:
        """Pause the pair for ``reason``, wait until it has closed its ports, then open the arm
        ``role`` behind a guard of this pair's gate, torque confirmed off on it and on the
        follower. An e-stop still reaches the follower: through this guard when it is the arm
        lent, else on its own port, which the pair no longer holds."""
        self.pause(reason)
        deadline = time.monotonic() + LEND_TIMEOUT_S
        while self.state is not State.PAUSED:
            if cancelled() or self._stopping:
                raise PairFault(f"{reason}: cancelled while pair {self.config.name} paused")
            if time.monotonic() > deadline:
                raise PairFault(f"pair {self.config.name} did not pause in {LEND_TIMEOUT_S:g} s")
            time.sleep(LEND_POLL_S)
        arm = uncalibrated_arm(self.config, role)
        with self._port_lock:
            open_arm(arm)
            guard = self._guard(arm)
            if role is Role.FOLLOWER:
                self._follower_guard = guard
            releases = [guard.release()]
            if role is not Role.FOLLOWER:
                releases.append(self._release_unheld_follower())
        failed = [release.describe() for release in releases if not release.ok]
        if failed:
            self.return_arm(guard, resume=False)
            raise PairFault("; ".join(failed))
        return guard

    def return_arm(self, guard: ArmGuard | None, *, resume: bool) -> None:
        """Close a lent arm; ``resume``: teleop starts again (never over an emergency stop)."""
        with self._port_lock:
            if guard is not None:
                if self._follower_guard is guard:
                    self._follower_guard = None
                guard.arm.close()
        if resume and not self.gate.emergency:
            self.resume()

    # -- status ----------------------------------------------------------------------------

    def snapshot(self, frame: Frame = Frame.RAW) -> dict[str, Any]:
        """The pair's state for ``status``; joint positions in ``frame``."""
        with self._lock:
            status: dict[str, Any] = {
                "state": str(self.state),
                "reason": self.reason,
                "latched": str(self.latch) if self.latch else None,
                "since": dt.datetime.fromtimestamp(self.since, dt.UTC).isoformat(
                    timespec="seconds"
                ),
                "restarts": self.restarts,
                "precheck": self._last_precheck,  # the last one's checks, None before one
                "leader": {
                    "port": self.config.leader.port,
                    "id": self.config.leader.id,
                    "present": os.path.exists(self.config.leader.port),
                },
                "follower": {
                    "port": self.config.follower.port,
                    "id": self.config.follower.id,
                    "present": os.path.exists(self.config.follower.port),
                },
            }
            loop, running = self._loop, self.state in _LOOP_STATES
            cooling = self._current_cooling()
            if cooling is not None:
                status["cooling"] = {"checks": cooling.count, "cooled": cooling.cooled}
            if self._retry is not None and self.state is State.FAULT:
                attempt, at = self._retry
                status["retry"] = {"attempt": attempt, "at": clock_time(at)}
        status.update(_loop_status(loop, running, cooling.health if cooling else None))
        status["positions"] = _positions(loop, frame) if running and loop else {}
        status["frame"] = str(frame)
        return status

    def status_line(self) -> str:
        with self._lock:
            state, reason = self.state, self.reason
            retry = self._retry if state is State.FAULT else None
        if state is State.TELEOP and self._loop is not None:
            return f"{self.config.name}: teleop {self._loop.stats.snapshot()['rate_hz']:.0f} Hz"
        short = reason if len(reason) <= 60 else reason[:57] + "..."
        when = f", retry {retry[0]} at {clock_time(retry[1])}" if retry else ""
        return f"{self.config.name}: {state}{when} ({short})"

    def heartbeat_age(self) -> float:
        return time.monotonic() - self.heartbeat

    # -- the thread ------------------------------------------------------------------------

    def run(self) -> None:
        while not self._stopping:
            try:
                self._session()
            except MotionRefused:
                pass  # paused or e-stopped meanwhile: handled just below
            except PairFault as fault:
                self._on_fault(fault)
            except BusError as exc:  # bus trouble no check caught: transient, retried
                self._on_fault(PairFault(f"bus error: {exc}; retrying"))
            except Exception as exc:  # a bug must not kill the pair: report it and retry
                self.log.exception("unexpected error")
                self._on_fault(PairFault(f"internal error: {exc!r}"))
            if self.gate.closed_reason and not self._stopping:
                self._wait_while_paused()
        self._enter(State.STOPPED, self._stop_reason)

    def _session(self) -> None:
        if not self._wait_until(self._boards_present):
            return
        self._enter(State.CHECKING, "validating calibration files")
        calibration = load_pair_calibration(self.calibration_dir, *self.arms)
        for warning in calibration.warnings:
            self.log.warning("calibration: %s", warning)
        self._enter(State.PRECHECKING, "no-motion checks of both arms")
        with self._guarded_arms(calibration) as (leader, follower):
            try:
                self._prepare(leader, follower)
                self._teleoperate(leader.arm, follower)
            except BusError as exc:
                raise PairFault(f"{self._role_of(exc.port)}: {exc}") from exc

    def _absent_ports(self) -> list[str]:
        ports = (self.config.leader.port, self.config.follower.port)
        return [port for port in ports if not os.path.exists(port)]

    def _boards_present(self) -> bool:
        """True once both ports exist; until then the reason names the absent ones."""
        absent = self._absent_ports()
        reason = f"waiting for {' and '.join(absent)}" if absent else "both boards present"
        if self.state is not State.WAITING or self.reason != reason:
            self._enter(State.WAITING, reason)
        return not absent

    @contextlib.contextmanager
    def _guarded_arms(self, calibration: PairCalibration) -> Iterator[tuple[ArmGuard, ArmGuard]]:
        """Both arms opened, each behind its guard; the follower's guard reachable by e-stop."""
        with contextlib.ExitStack() as arms:
            with self._port_lock:
                leader, follower = arms.enter_context(open_arms(self.config, calibration))
                self._arms = (leader, follower)
                guards = (self._guard(leader), self._guard(follower))
                self._follower_guard = guards[1]
            try:
                yield guards
            finally:
                with self._port_lock:
                    self._follower_guard = None
                    arms.close()

    def _guard(self, arm: Arm) -> ArmGuard:
        return arm_guard(arm, self.config, self.gate)

    def _role_of(self, port: str) -> str:
        return "leader" if port == self.config.leader.port else "follower"

    def _prepare(self, leader: ArmGuard, follower: ArmGuard) -> None:
        """The precheck, then servo settings and EEPROM calibration where they differ."""
        report = run_precheck(leader, follower, self.config)
        self._log_precheck(report)
        if report.fault is not None:
            raise report.fault
        for guard in (leader, follower):
            role = guard.arm.role
            if changes := report.settings.get(role):
                listed = ", ".join(change.describe() for change in changes)
                self.log.info("%s: setting servo settings as LeRobot does: %s", role, listed)
                guard.apply_settings(changes)
            if report.eeprom.get(role):
                self.log.warning(
                    "%s: the servo EEPROM differs from the calibration file (recalibrated "
                    "elsewhere? `so101d import-calibration` takes that file); writing the "
                    "file's values to the servos",
                    role,
                )
                guard.write_calibration(guard.arm.calibration)

    def _log_precheck(self, report: PrecheckReport) -> None:
        """The table and its warnings; a retry that finds the same only says so in a line."""
        self._precheck_runs += 1
        self._last_precheck = report.as_dict()
        table = report.table()
        if table == self._last_table:
            self.log.info("precheck run %d: the same as the last table", self._precheck_runs)
            return
        self._last_table = table
        for line in table.splitlines():
            self.log.info("precheck: %s", line)
        for warning in report.warnings:
            self.log.warning("precheck: %s", warning)

    def _teleoperate(self, leader: Arm, follower: ArmGuard) -> None:
        loop = TeleopLoop(leader, follower, self.config, self._keep_going, self._on_cycle)
        with self._lock:
            self._loop = loop
        started = time.monotonic()
        try:
            self._enter(
                State.ENGAGING,
                f"ramping the follower to the leader's pose at {self.config.engage_speed_dps:g}°/s",
            )
            if loop.engage():
                self._enter(State.TELEOP, "mirroring the leader")
                loop.run()
        except BaseException as exc:
            self._apply_stop_policy(loop, exc)
            raise
        else:
            self._apply_stop_policy(loop, None)
        finally:
            if time.monotonic() - started >= STABLE_TELEOP_S:
                self._backoff_level = 0

    def _apply_stop_policy(self, loop: TeleopLoop, exc: BaseException | None) -> None:
        """Hold, rest or release; torque off for safety faults, e-stops and failed rest moves."""
        policy = self.config.stop_policy
        if isinstance(exc, SafetyFault) or self.gate.emergency:
            policy = "release"
        if policy == "hold":
            self.log.info("follower holds its position (stop_policy = hold)")
            return
        if policy == "rest" and (exc is None or isinstance(exc, MotionRefused)):
            self._rest(loop)  # a pause that closed the gate mid-cycle is still a plain stop
        released = loop.guard.release()
        self._release_pending = not released.ok
        log = self.log.info if released.ok else self.log.warning
        log("%s", released.describe())

    def _rest(self, loop: TeleopLoop) -> None:
        """The rest move: it obeys the gate, the telemetry limits and bus errors."""
        self._enter(
            State.RESTING, f"moving to the rest pose at {self.config.engage_speed_dps:g}°/s"
        )
        try:
            if not loop.move_to(self._rest_ticks(loop.guard.arm), REST_MOVE_TIMEOUT_S):
                self.log.warning("rest pose not reached within %.0f s", REST_MOVE_TIMEOUT_S)
        except (PairFault, BusError) as exc:
            self.log.warning("rest move stopped: %s", getattr(exc, "reason", exc))

    def _release_unheld_follower(self) -> Release:
        """Torque off on a follower whose port the pair does not hold (waiting, fault...)."""
        follower = self.config.follower
        arm = uncalibrated_arm(self.config, Role.FOLLOWER)
        try:
            arm.open()
        except BusError as exc:
            return Release("follower", follower.port, (), tuple(follower.motor_ids), why=exc.detail)
        try:
            return self._guard(arm).release()
        finally:
            arm.close()

    def _retry_release(self) -> None:
        """While waiting, keep trying a torque off that could not be confirmed, once a second."""
        if not self._release_pending or time.monotonic() < self._next_release_try:
            return
        self._next_release_try = time.monotonic() + RELEASE_RETRY_S
        with self._port_lock:
            released = self._release_unheld_follower()
        if released.ok:
            self._release_pending = False
            self.log.info("%s (after retrying)", released.describe())

    def _rest_ticks(self, follower: Arm) -> dict[str, float]:
        assert self.config.rest_pose is not None
        return {
            joint: follower.calibration[joint].midpoint + degrees_to_ticks(deg)
            for joint, deg in self.config.rest_pose.items()
        }

    def _keep_going(self) -> bool:
        return not self._stopping and self.gate.closed_reason is None

    def _on_cycle(self) -> None:
        now = time.monotonic()
        self.heartbeat = now
        if now - self._last_stats >= self.stats_interval_s and self.state is State.TELEOP:
            self._last_stats = now
            self.log.info("stats: %s", _stats_text(self._loop))

    # -- faults and waiting ----------------------------------------------------------------

    def _on_fault(self, fault: PairFault) -> None:
        if self._stopping:
            return
        self.restarts += 1
        self._enter(State.FAULT, fault.reason, fault.latch)
        if fault.latch is None:
            self._wait_backoff()
        else:
            self._wait_latch_cleared(fault.latch)

    def _wait_backoff(self) -> None:
        delay = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2**self._backoff_level)
        self._backoff_level += 1
        attempt = self._backoff_level
        with self._lock:
            self._retry = (attempt, time.time() + delay)
        self.log.info("retry %d in %.1f s", attempt, delay)
        generation, resumed = self._device_generation, self._resumed
        deadline = time.monotonic() + delay
        self._wait_until(
            lambda: (
                time.monotonic() >= deadline
                or self._device_generation != generation
                or self._resumed != resumed
            )
        )
        with self._lock:
            self._retry = None

    def _wait_latch_cleared(self, latch: Latch) -> None:
        resumed, generation = self._resumed, self._device_generation
        tripped = self.reason
        fingerprint = calibration_fingerprint(self.calibration_dir, self.arms)
        next_cooling_check = time.monotonic() + COOLING_CHECK_S

        def cleared() -> bool:
            nonlocal next_cooling_check, resumed
            if latch is Latch.COOLING and self._resumed != resumed:  # resume: check now
                resumed, next_cooling_check = self._resumed, time.monotonic()
            if self._resumed != resumed:
                return True
            if latch is Latch.CALIBRATION:
                return calibration_fingerprint(self.calibration_dir, self.arms) != fingerprint
            if latch is Latch.DEVICES:
                return self._device_generation != generation
            if latch is Latch.COOLING and time.monotonic() >= next_cooling_check:
                next_cooling_check = time.monotonic() + COOLING_CHECK_S
                return self._follower_cooled(tripped)
            return False

        if self._wait_until(cleared):
            self.log.info("fault cleared, starting again")

    def _follower_cooled(self, tripped: str) -> bool:
        """Read the follower's temperatures; the reason then gives them and the trip's."""
        follower = self.config.follower
        arm = Arm(
            Role.FOLLOWER, follower.port, follower.motor_ids, {}, baudrate=self.config.baudrate
        )
        try:
            with arm:
                health = Health("cooling check", arm.sync_read("Present_Temperature"))
        except BusError as exc:
            self.log.info("cooling check: cannot read the follower's temperatures: %s", exc)
            return False
        joint, hottest = health.hottest()
        resume_c = self.config.resume_temperature_c
        cooled = hottest < resume_c
        with self._lock:
            previous = self._current_cooling()
            count = previous.count + 1 if previous else 1
            self._cooling = CoolingCheck(self.since, health, cooled, count)
            self.reason = (
                f"follower {joint} now at {hottest} °C (read {clock_time(time.time())}), "
                f"resumes below {resume_c:g} °C; tripped at {clock_time(self.since)}: {tripped}"
            )
        if cooled:
            self.log.info("follower cooled to %d °C (below %g °C)", hottest, resume_c)
        else:
            self.log.info(
                "follower still at %d °C (%s); resumes below %g °C", hottest, joint, resume_c
            )
        return cooled

    def _wait_while_paused(self) -> None:
        """Paused until the gate opens; an e-stop on a paused pair becomes its reason."""
        while (reason := self.gate.closed_reason) is not None and not self._stopping:
            self._enter(State.PAUSED, reason, Latch.OPERATOR)
            self._wait_until(lambda: self.gate.closed_reason != reason)

    def _wait_until(self, condition: Callable[[], bool]) -> bool:
        """Wait for ``condition``, waking on events and every heartbeat; False if stopping."""
        while not self._stopping:
            if condition():
                return True
            self.heartbeat = time.monotonic()
            self._retry_release()
            self._wake.wait(self.heartbeat_s)
            self._wake.clear()
            if self.gate.closed_reason and self.state not in (State.PAUSED,):
                return False
        return False

    def _enter(self, state: State, reason: str, latch: Latch | None = None) -> None:
        with self._lock:
            self.state, self.reason, self.latch = state, reason, latch
            self.since = time.time()
        self.heartbeat = time.monotonic()
        level = logging.WARNING if state is State.FAULT else logging.INFO
        latched = f" [latched until {latch}]" if latch and state is State.FAULT else ""
        self.log.log(level, "%s: %s%s", state, reason, latched)


def arm_guard(arm: Arm, config: PairConfig, gate: MotionGate) -> ArmGuard:
    """The guard of one of the pair's arms, with the pair's limits."""
    limits = MotionLimits(
        margin_deg=config.clamp_margin_deg,
        max_speed_dps=config.max_speed_dps,
        max_dt_s=2 / config.rate_hz,
    )
    return ArmGuard(arm, gate, limits)


def uncalibrated_arm(config: PairConfig, role: Role) -> Arm:
    """One of the pair's arms, not opened, without a calibration (torque off, reads only)."""
    arm = config.leader if role is Role.LEADER else config.follower
    timeout_s = config.bus_timeout_ms / 1000
    return Arm(role, arm.port, arm.motor_ids, {}, baudrate=config.baudrate, timeout_s=timeout_s)


@contextlib.contextmanager
def open_arms(config: PairConfig, calibration: PairCalibration) -> Iterator[tuple[Arm, Arm]]:
    """Both arms of a pair, opened (exclusively) and closed again on exit."""
    timeout_s = config.bus_timeout_ms / 1000
    arms = [
        Arm(role, arm.port, arm.motor_ids, cal, baudrate=config.baudrate, timeout_s=timeout_s)
        for role, arm, cal in (
            (Role.LEADER, config.leader, calibration.leader),
            (Role.FOLLOWER, config.follower, calibration.follower),
        )
    ]
    try:
        for arm in arms:
            open_arm(arm)
        yield arms[0], arms[1]
    finally:
        for arm in arms:
            arm.close()


def open_arm(arm: Arm) -> None:
    """Open an arm's port exclusively; PairFault naming what holds it or that it went away."""
    try:
        arm.open()
    except PortBusy as exc:
        raise PairFault(f"{arm.role}: {exc}") from exc
    except PortGone as exc:
        raise PairFault(f"{arm.role} board went away while opening: {exc}") from exc


def _loop_status(loop: TeleopLoop | None, running: bool, cooling: Health | None) -> dict[str, Any]:
    """Loop figures while it runs; the follower's health, current only while it is read.

    ``temperatures`` and ``voltages`` hold current readings only; ``telemetry`` holds the
    latest known one with its age and whether it is current.
    """
    idle = {"rate_hz": 0.0, "cycle_p50_ms": 0.0, "cycle_p99_ms": 0.0, "errors": 0}
    stats = loop.stats.snapshot() if loop is not None and running else idle
    live = from_telemetry(dict(loop.telemetry)) if loop is not None else None
    latest = cooling or live
    current = latest is not None and (latest is cooling or running)
    return {
        **{k: v for k, v in stats.items() if k != "cycles"},
        "leader_glitches": loop.tracker.glitches if loop is not None else 0,
        "temperatures": dict(latest.temperatures) if latest and current else {},
        "voltages": dict(latest.voltages) if latest and current else {},
        "telemetry": latest.as_dict(current) if latest else None,
    }


def _positions(loop: TeleopLoop, frame: Frame) -> dict[str, dict[str, float]]:
    """The latest leader reading and follower telemetry positions, converted to ``frame``."""
    arms = (
        ("leader", loop.leader_positions, loop.leader.calibration),
        ("follower", loop.health.positions, loop.guard.arm.calibration),
    )
    return {role: convert(raw, Frame.RAW, frame, cal) for role, raw, cal in arms}


def _stats_text(loop: TeleopLoop | None) -> str:
    if loop is None:
        return "no loop"
    stats = loop.stats.snapshot()
    health = from_telemetry(dict(loop.telemetry))
    return (
        f"{stats['rate_hz']:.1f} Hz, cycle p50 {stats['cycle_p50_ms']:.2f} ms "
        f"p99 {stats['cycle_p99_ms']:.2f} ms, {counted(int(stats['errors']), 'bus error')}"
        + (f", follower {health.summary()}" if health else "")
    )
