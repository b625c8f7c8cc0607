"""The arm guard: the one door to a servo that can move.

Every write of Goal_Position, Torque_Enable, operating settings or calibration registers to
an arm goes through an :class:`ArmGuard`, which applies, in one place: the pair's motion
gate (pause, emergency stop), the follower's calibrated clamp, a speed limit in degrees per
second with the measured time between writes, and read-back on every torque transition.
A goal is only ever written to a servo the guard has torqued (STS3215 firmware is reported
to switch torque on when it receives one), except goal = present immediately before
torque-on. All methods are thread-safe: an emergency stop from the control socket closes
the gate, then takes the guard's lock, so no motion write can slip in after its torque off.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from so101d.arm import Arm
from so101d.calibration.eeprom import write_servo_calibration
from so101d.calibration.model import ArmCalibration
from so101d.faults import PairFault
from so101d.feetech import BusError, PortGone, ServoError
from so101d.motion.gate import MotionGate
from so101d.motion.settings import ACCELERATION, SettingChange

TICKS_PER_DEGREE = 4096 / 360
RELEASE_TRIES = 3  # a read-back lost on a busy bus is asked again before it counts


def degrees_to_ticks(degrees: float) -> float:
    return degrees * TICKS_PER_DEGREE


@dataclass(frozen=True)
class MotionLimits:
    """What the guard allows: a margin inside the calibrated range, a top speed, and the
    longest time step a speed is integrated over (a stalled cycle earns no bigger step)."""

    margin_deg: float
    max_speed_dps: float
    max_dt_s: float


@dataclass(frozen=True)
class Release:
    """The outcome of a torque off: which joints read back off, which could not be confirmed."""

    role: str
    port: str
    confirmed: tuple[str, ...]
    unconfirmed: tuple[str, ...]
    why: str = ""  # set when the board could not be reached at all

    @property
    def ok(self) -> bool:
        return not self.unconfirmed and not self.why

    def describe(self) -> str:
        if self.why:
            return (
                f"{self.role} torque off not possible: cannot reach its servos on {self.port} "
                f"({self.why}); if the arm holds, switch off its power supply"
            )
        if self.unconfirmed:
            return f"{self.role} torque off not confirmed on {', '.join(self.unconfirmed)}"
        return f"{self.role} torque off (read back on {len(self.confirmed)} motors)"

    def as_dict(self) -> dict[str, object]:
        return {
            "torque_off": self.ok,
            "confirmed": list(self.confirmed),
            "unconfirmed": list(self.unconfirmed),
            "detail": self.describe(),
        }


class ArmGuard:
    """Owns every motion write to one arm."""

    def __init__(
        self,
        arm: Arm,
        gate: MotionGate,
        limits: MotionLimits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.arm, self.gate, self.limits, self.clock = arm, gate, limits, clock
        self._lock = threading.RLock()
        self._commanded: dict[str, float] = {}  # the joints with torque on, and their goals
        self._last_write = 0.0
        self._torque_limits: dict[str, int] = {}  # joint -> Torque_Limit before limit_torque
        self.bounds = self._bounds(arm.calibration)

    @property
    def commanded(self) -> dict[str, float]:
        """The goals of the torqued joints (empty when the arm is limp)."""
        return dict(self._commanded)

    def _bounds(self, calibration: ArmCalibration) -> dict[str, tuple[float, float]]:
        margin = round(degrees_to_ticks(self.limits.margin_deg))
        return {
            joint: _shrink(cal.range_min, cal.range_max, margin)
            for joint, cal in calibration.items()
        }

    def clamp(self, joint: str, ticks: float) -> float:
        low, high = self.bounds[joint]
        return min(high, max(low, ticks))

    # -- torque on ---------------------------------------------------------------------------

    def torque_on_holding(self, *, calibrating: bool = False) -> dict[str, int]:
        """Torque on every motor without motion: goal = present, read back, then torque.

        Refused (MotionRefused) while the gate is closed, checked again immediately before
        torque-on; ``calibrating``: the automatic calibration's own motion, which the pause
        its session holds allows and an emergency stop refuses. Any failure releases every
        motor and raises PairFault with the reason.
        """
        what = f"{self.arm.role} torque on"
        with self._lock:
            self.gate.check(what, stop_move=calibrating)
            try:
                present = self._goals_at_present()
                self.gate.check(what, stop_move=calibrating)
                self._torque_each_on()
            except BaseException:
                self._release_locked()
                raise
            self._commanded = {joint: float(value) for joint, value in present.items()}
            self._last_write = self.clock()
            return present

    def adopt_holding(self, joints: Iterable[str]) -> dict[str, int]:
        """Keep ``joints`` (found with torque on) holding where they are: goal = present.

        A holding arm must not be dropped by a check; it is released only by policy or an
        operator. With the gate closed it is released instead.
        """
        joints = list(joints)
        with self._lock:
            if self.gate.closed_reason is not None:
                self._release_locked()
                return {}
            present = self.arm.sync_read("Present_Position")
            held = {joint: present[joint] for joint in joints}
            self.arm.write_goals(held)
            self._commanded = {joint: float(value) for joint, value in held.items()}
            self._last_write = self.clock()
            return held

    def _goals_at_present(self) -> dict[str, int]:
        present = self.arm.sync_read("Present_Position")
        self.arm.write_goals(present)
        goals = self.arm.sync_read("Goal_Position")
        wrong = [j for j, value in present.items() if goals.get(j) != value]
        if wrong:
            raise PairFault(
                f"{self.arm.role} goal did not read back as the present position on "
                f"{', '.join(wrong)}; torque stays off"
            )
        return present

    def _torque_each_on(self) -> None:
        for joint, motor in self.arm.motor_ids.items():
            try:
                self.arm.bus.write("Torque_Enable", motor, 1)
            except ServoError:
                pass  # it answered, so it heard the write; the read-back decides
            except BusError as exc:
                raise PairFault(f"{self.arm.role} torque on failed at {joint}: {exc}") from exc
        limp = [joint for joint, on in self.torque_state().items() if not on]
        if limp:
            raise PairFault(f"{self.arm.role} torque did not come on at {', '.join(limp)}")

    def rearm_overload(self, joint: str) -> None:
        """Re-arm ``joint``'s tripped overload protection (a tripped servo gives only its
        Protective_Torque): Torque_Enable 1 re-arms it, with the goal first verified equal to
        the present position, so nothing moves; a joint that was limp is made limp again.

        Refused (MotionRefused) while the gate is closed. A failure releases every motor.
        """
        motor, bus = self.arm.motor_ids[joint], self.arm.bus
        with self._lock:
            self.gate.check(f"{self.arm.role} {joint} overload re-arm")
            try:
                was_on = self.torque_state()[joint]
                present = self.arm.sync_read("Present_Position")[joint]
                with contextlib.suppress(ServoError):  # the tripped bit rides on every reply
                    bus.write("Goal_Position", motor, present)
                if self.arm.sync_read("Goal_Position").get(joint) != present:
                    raise PairFault(f"{self.arm.role} {joint} goal did not read back; torque off")
                bus.write("Torque_Enable", motor, 1)
                if not was_on:
                    bus.write("Torque_Enable", motor, 0)
            except BaseException:
                self._release_locked()
                raise

    # -- goals ---------------------------------------------------------------------------------

    def command(
        self,
        targets: Mapping[str, float],
        speeds_dps: Mapping[str, float] | None = None,
        *,
        stop_move: bool = False,
    ) -> dict[str, int]:
        """Move the torqued joints toward ``targets`` (ticks): clamped, speed-limited, gated.

        ``speeds_dps`` may ask for slower joints; nothing goes faster than the limit. Joints
        without torque get no goal. ``stop_move`` marks the stop policy's rest move (or the
        automatic calibration's motion), which a pause allows and an emergency stop refuses.
        Returns the goals written.
        """
        with self._lock:
            self.gate.check(f"{self.arm.role} motion", stop_move=stop_move)
            if not self._commanded:
                raise PairFault(f"{self.arm.role} goal refused: torque is off")
            now = self.clock()
            dt = min(max(now - self._last_write, 0.0), self.limits.max_dt_s)
            self._last_write = now
            for joint, current in self._commanded.items():
                if joint not in targets:
                    continue
                speed = self.limits.max_speed_dps
                if speeds_dps is not None and joint in speeds_dps:
                    speed = min(speed, speeds_dps[joint])
                step = degrees_to_ticks(speed * dt)
                wanted = self.clamp(joint, targets[joint]) - current
                self._commanded[joint] = current + max(-step, min(step, wanted))
            goals = {joint: round(value) for joint, value in self._commanded.items()}
            self.arm.write_goals(goals)
            return goals

    # -- torque limit (RAM) ----------------------------------------------------------------------

    def limit_torque(self, joint: str, limit: int) -> None:
        """Set one joint's RAM Torque_Limit (0.1 % units); the first value is kept for
        :meth:`restore_torque_limits`. Raising a limit is motion-relevant: refused by an
        emergency stop; lowering one never is."""
        motor = self.arm.motor_ids[joint]
        with self._lock:
            present = self.arm.bus.read("Torque_Limit", motor)
            self._torque_limits.setdefault(joint, present)
            if limit > present:
                self.gate.check(f"{self.arm.role} {joint} torque limit", stop_move=True)
            self.arm.bus.write("Torque_Limit", motor, limit)

    def restore_torque_limits(self) -> None:
        """Every Torque_Limit changed by :meth:`limit_torque` back to what it was."""
        with self._lock:
            for joint, limit in list(self._torque_limits.items()):
                self.arm.bus.write("Torque_Limit", self.arm.motor_ids[joint], limit)
                del self._torque_limits[joint]

    # -- torque off ----------------------------------------------------------------------------

    def release(self) -> Release:
        """Torque off on every motor, each read back. Never raises for bus trouble."""
        with self._lock:
            return self._release_locked()

    def _release_locked(self) -> Release:
        self._commanded = {}
        arm = self.arm
        try:
            # A broadcast first: it needs no reply, so it reaches every motor that listens.
            with _unless_gone():
                arm.bus.sync_write("Torque_Enable", dict.fromkeys(arm.ids, 0))
            state: dict[str, bool | None] = dict.fromkeys(arm.joints)
            for _ in range(RELEASE_TRIES):
                pending = [joint for joint, on in state.items() if on is not False]
                for joint in pending:
                    with _unless_gone():
                        arm.bus.write("Torque_Enable", arm.motor_ids[joint], 0)
                read_back = self._torque_state_per_motor()
                state.update({joint: read_back[joint] for joint in pending})
                if all(on is False for on in state.values()):
                    break
        except PortGone as exc:
            return Release(str(arm.role), arm.port, (), tuple(arm.joints), why=exc.detail)
        confirmed = tuple(j for j, on in state.items() if on is False)
        unconfirmed = tuple(j for j in arm.joints if j not in confirmed)
        return Release(str(arm.role), arm.port, confirmed, unconfirmed)

    def torque_state(self) -> dict[str, bool]:
        """Torque_Enable of every motor (bus errors propagate)."""
        return {joint: bool(on) for joint, on in self.arm.sync_read("Torque_Enable").items()}

    def reset_joints(self) -> list[str]:
        """Joints the guard torqued whose servo has reset since (a brown-out): torque reads
        off, or the RAM acceleration the session set is back at its power-on 0 (a goal
        written after a reset switches torque on again, so torque alone does not tell)."""
        with self._lock:
            meant = list(self._commanded)
        if not meant:
            return []
        state = self.torque_state()
        acceleration = self.arm.sync_read("Acceleration")
        return [
            joint
            for joint in meant
            if not state.get(joint, False) or acceleration.get(joint) != ACCELERATION
        ]

    def _torque_state_per_motor(self) -> dict[str, bool | None]:
        """Torque_Enable per joint, None where the motor did not answer."""
        with _unless_gone():
            return dict(self.torque_state())
        state: dict[str, bool | None] = {}
        for joint, motor in self.arm.motor_ids.items():
            try:
                state[joint] = bool(self.arm.bus.read("Torque_Enable", motor))
            except ServoError as exc:
                state[joint] = bool(exc.values.get(motor, 1))
            except PortGone:
                raise
            except BusError:
                state[joint] = None  # not confirmed either way
        return state

    # -- settings and calibration (torque off only) ---------------------------------------------

    def apply_settings(self, changes: Iterable[SettingChange]) -> None:
        """Write operating settings (EEPROM, Lock opened and closed) to limp motors."""
        with self._lock:
            self._require_limp("writing servo settings")
            bus = self.arm.bus
            for change in changes:
                bus.write("Lock", change.motor, 0)
                bus.write(change.register, change.motor, change.wanted)
                bus.write("Lock", change.motor, 1)

    def write_calibration(self, calibration: ArmCalibration) -> None:
        """Write a validated calibration to the servos' EEPROM, torque confirmed off first.

        The clamp follows: the servos now limit their goals to these ranges."""
        with self._lock:
            self._require_limp("writing the calibration to the servos")
            released = self._release_locked()
            if not released.ok:
                raise PairFault(f"{released.describe()}; calibration not written")
            write_servo_calibration(self.arm.bus, calibration)
            self.bounds.update(self._bounds(calibration))

    def _require_limp(self, what: str) -> None:
        if self._commanded:
            raise PairFault(
                f"{self.arm.role} holds torque on {', '.join(self._commanded)}; {what} needs it "
                f"off: support the arm, then `so101d estop` and `so101d resume`"
            )


@contextlib.contextmanager
def _unless_gone() -> Iterator[None]:
    """Ignore a bus error of one best-effort step; a vanished board still raises PortGone."""
    try:
        yield
    except PortGone:
        raise
    except BusError:
        pass


def _shrink(low: int, high: int, margin: int) -> tuple[float, float]:
    if high - low <= 2 * margin:
        middle = (low + high) / 2
        return middle, middle
    return low + margin, high - margin
