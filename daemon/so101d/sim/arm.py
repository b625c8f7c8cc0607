"""Virtual SO-101 arms: six simulated STS3215 servos behind a pty, and a leader/follower pair.

Physics advances lazily, from a monotonic clock, whenever the wire serves a request that reads
or changes what moves, or a test takes a snapshot, in substeps of at most 2 ms (coarser after a
long idle gap, so a request never pays for more than a bounded number of substeps: the reply
must not wait for the physics). Every substep puts the arm's weight on its joints (``gravity``).
One lock per arm guards everything the wire thread and callers share.

The arm is switched on where a limp arm comes to rest: it starts at its rest pose and is left
to settle under gravity before anything can talk to it.

Unplug and replug: the follower's servos run on the arm's own supply, so a USB replug leaves
them as they were; the leader's servos are powered through USB, so a replug power-cycles them
(RAM back to defaults, torque off, EEPROM from what was saved).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from so101d.calibration.model import JOINTS
from so101d.feetech.protocol import Packet
from so101d.feetech.registers import HALF_TURN, MAX_POSITION
from so101d.sim import motion as hands
from so101d.sim.drive import Surroundings
from so101d.sim.faults import (
    DEFAULT_LATE_REPLY,
    ActiveFault,
    Fault,
    FaultBook,
    FaultRequest,
    validate,
)
from so101d.sim.fidelity import Fidelity
from so101d.sim.gravity import Gravity
from so101d.sim.joints import (
    DEGREES_PER_TICK,
    MAX_TRAVEL,
    VARIANTS,
    JointGeometry,
    ambient_temperature,
    arm_geometry,
    check_role,
    reported,
    rest_fractions,
)
from so101d.sim.port import VirtualPort
from so101d.sim.servo import ServoModel, Telemetry, baud_code
from so101d.sim.wire import Reply, WireServer, dispatch, is_static_request, spoil_replies

WireTap = Callable[[Packet, list[Reply]], list[Reply]]

_MAX_SUBSTEP = 0.005  # seconds: the joints move smoothly at this step, and it keeps replies prompt
_MAX_SUBSTEPS = 25  # per advance: bounds the cost of the first request after an idle gap
_SETTLE_STEP = 0.01  # seconds per substep while a new arm settles under gravity
_SETTLE_TIME = 10.0  # seconds of settling at most
_FAST_FORWARD_SUBSTEPS = 10_000  # bounds the cost of fast_forward
_SUPPLY_RESISTANCE = 0.1  # ohms: the supply sags by this times the arm's current
_OVERHEAT_MARGIN = 5.0  # C above Max_Temperature_Limit for Fault.OVERHEAT without a value
_IDLE_POLL = 0.02  # seconds


class VirtualServo:
    """Direct register access to one simulated servo, bypassing the wire (for tests)."""

    def __init__(self, arm: VirtualArm, model: ServoModel) -> None:
        self._arm = arm
        self._model = model

    @property
    def motor_id(self) -> int:
        return self._model.slot

    def get(self, name: str) -> int:
        """A register's value by LeRobot name (signed where the register is sign-magnitude)."""
        with self._arm._lock:
            self._arm._advance()
            return self._model.get(name)

    def set(self, name: str, value: int) -> None:
        """Set a register as the factory would: read-only ones too, saved regardless of Lock."""
        with self._arm._lock:
            self._arm._advance()
            self._model.set(name, value)


class VirtualArm:
    """One simulated SO-101 arm on a pty; ``link`` is the symlink clients open."""

    def __init__(
        self,
        role: str,
        link: str | os.PathLike[str],
        *,
        supply_voltage: float | None = None,
        baudrate: int = 1_000_000,
        seed: int = 0,
        arm_seed: int | None = None,
        motion: str | None = None,
        drop_locked_eeprom_writes: bool = False,
        fidelity: Fidelity | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock``: the simulated time's source (a virtual clock runs the physics faster
        than real time: it advances only when its owner says so)."""
        self._role = check_role(role)
        self._clock = clock
        self._seed = seed
        self._fidelity = fidelity or Fidelity()
        self._variant = VARIANTS[role]
        self._supply = self._variant.supply_voltage if supply_voltage is None else supply_voltage
        self._baudrate = baudrate
        self._lock = threading.RLock()
        self._plug_lock = threading.Lock()
        self._port = VirtualPort(link)
        self._server: WireServer | None = None
        self._faults = FaultBook()
        self._taps: list[WireTap] = []
        ambient = ambient_temperature(role, seed)
        baud = baud_code(baudrate)
        self._servos = tuple(
            ServoModel(
                geometry,
                self._variant,
                baud_code=baud,
                angle=geometry.angle_at(fraction),
                supply=self._supply,
                ambient=ambient,
                drop_locked_eeprom_writes=drop_locked_eeprom_writes,
                goal_enables_torque=self._fidelity.goal_enables_torque,
            )
            for geometry, fraction in zip(
                arm_geometry(role, seed, arm_seed),
                rest_fractions(role, seed if arm_seed is None else arm_seed),
                strict=True,
            )
        )
        self._gravity = Gravity(self._variant.stall_torque, enabled=self._fidelity.gravity)
        self._obstacles: dict[int, tuple[float, bool]] = {}  # index -> (angle, joint above it)
        self._handles = {s.slot: VirtualServo(self, s) for s in self._servos}
        self._skew = 0.0  # seconds added to the clock by fast_forward
        self._time = self._now()
        self._plans: list[hands.HandPlan | None] = [None] * len(self._servos)
        self._sweep_ends_at = math.inf  # no sweep yet
        self._motion: str | None = None
        self._settle()
        self.set_motion(motion)

    # -- identity ------------------------------------------------------------------------

    @property
    def role(self) -> str:
        return self._role

    @property
    def link(self) -> str:
        return str(self._port.link)

    @property
    def device(self) -> str | None:
        """The pty behind the link while plugged."""
        return self._port.device

    @property
    def motor_ids(self) -> tuple[int, ...]:
        """The servos' bus IDs in joint order (1..6 unless someone rewrote an ID)."""
        with self._lock:
            return tuple(s.ident for s in self._servos)

    @property
    def plugged(self) -> bool:
        return self._port.master is not None

    @property
    def supply_voltage(self) -> float:
        """The supply without faults."""
        return self._supply

    @property
    def motion(self) -> str | None:
        return self._motion

    @property
    def fidelity(self) -> Fidelity:
        return self._fidelity

    def __repr__(self) -> str:
        state = "plugged" if self.plugged else "unplugged"
        return f"VirtualArm({self._role!r}, {self.link!r}, {state})"

    # -- plugging ------------------------------------------------------------------------

    def start(self) -> None:
        """Create the pty and the link and start serving. Does nothing when already plugged."""
        with self._plug_lock:
            self._plug()

    def stop(self) -> None:
        """Unplug and end the serving thread. Does nothing when already stopped."""
        self.unplug()

    def unplug(self) -> None:
        """Pull the USB cable: the link disappears and open clients get I/O errors."""
        with self._plug_lock:
            if self._server is not None:
                self._server.stop()
                self._server = None
            self._port.unplug()

    def replug(self) -> None:
        """Plug the cable back: a new pty behind the same link (the leader's servos restart)."""
        with self._plug_lock:
            if self.plugged:
                return
            if self._role == "leader":
                self.power_cycle()
            self._plug()

    def _plug(self) -> None:
        if self.plugged:
            return
        master = self._port.plug()
        self._server = WireServer(
            master,
            self._serve,
            self._port.client_baudrate,
            self._baudrate,
            name=f"so101d-sim {self._role} {self.link}",
            latency=self._fidelity.usb.sampler(f"{self._role}/{self._seed}/{self.link}"),
        )
        self._server.start()

    def __enter__(self) -> VirtualArm:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self, request: Packet, client_baudrate: int | None) -> list[Reply]:
        """Called by the wire thread for every request."""
        with self._lock:
            if not is_static_request(request):
                self._advance()
            now = self._now()
            for servo in self._servos:
                servo.clock = now
            listening = [
                s
                for s in self._servos
                if s.powered
                and s.baudrate == client_baudrate
                and self._faults.find(Fault.MISSING_MOTOR, s.slot) is None
            ]
            replies = spoil_replies(dispatch(request, listening), self._faults)
            for tap in self._taps:
                replies = tap(request, replies)
            return replies

    def tap(self, tap: WireTap) -> Callable[[], None]:
        """Call ``tap`` with every request and the replies it gets (which it may replace),
        in the wire thread; returns the function that removes it. For tests and tools
        that watch or spoil the traffic."""
        with self._lock:
            self._taps.append(tap)

        def remove() -> None:
            with self._lock:
                self._taps.remove(tap)

        return remove

    # -- physical state ------------------------------------------------------------------

    def joint_angles(self) -> dict[str, float]:
        """Degrees from each joint's mechanical middle."""
        with self._lock:
            self._advance()
            return {s.geometry.name: s.angle * DEGREES_PER_TICK for s in self._servos}

    def joint_fractions(self) -> dict[str, float]:
        """0.0 at each joint's lower end stop, 1.0 at its upper end stop."""
        with self._lock:
            self._advance()
            return {s.geometry.name: s.geometry.fraction_of(s.angle) for s in self._servos}

    def telemetry(self) -> tuple[Telemetry, ...]:
        with self._lock:
            self._advance()
            return tuple(s.telemetry() for s in self._servos)

    def expected_calibration(self) -> dict[str, dict[str, int]]:
        """What a proper LeRobot (>= 0.4.3) calibration records on this arm: homed where the
        joint's ``homing`` pose is (the middle, except wrist_roll on arms from an arm seed)."""
        calibration: dict[str, dict[str, int]] = {}
        for servo in self._servos:
            geometry = servo.geometry
            offset = min(geometry.encoder(geometry.homing) - HALF_TURN, HALF_TURN)
            if geometry.name == "wrist_roll":
                low, high = 0, MAX_POSITION
            else:
                low = reported(geometry.present_position(geometry.lower_stop, offset))
                high = reported(geometry.present_position(geometry.upper_stop, offset))
            calibration[geometry.name] = {
                "id": geometry.motor_id,
                "drive_mode": 0,
                "homing_offset": offset,
                "range_min": low,
                "range_max": high,
            }
        return calibration

    def servo(self, motor_id: int) -> VirtualServo:
        try:
            return self._handles[motor_id]
        except KeyError:
            raise ValueError(f"no motor {motor_id} on this arm (motors 1..6)") from None

    def power_cycle(self) -> None:
        """Switch the servos off and on: RAM defaults, EEPROM from its saved copy."""
        with self._lock:
            self._advance()
            for servo in self._servos:
                servo.power_on()

    # -- the hand ------------------------------------------------------------------------

    def set_motion(self, name: str | None) -> None:
        """What the hand does: ``"wave"``, ``"sweep"``, or None (let go: joints stay put)."""
        if name is not None and name not in hands.MOTIONS:
            raise ValueError(f"motion must be one of {', '.join(hands.MOTIONS)} or None")
        with self._lock:
            self._advance()
            geometries = [s.geometry for s in self._servos]
            angles = [s.angle for s in self._servos]
            plans: Sequence[hands.HandPlan | None]
            if name == "wave":
                plans = hands.wave(geometries, angles, self._time, f"{self._role}/{self._seed}")
            elif name == "sweep":
                sweep = hands.sweep(geometries, angles, self._time)
                self._sweep_ends_at = max(path.end_time for path in sweep)
                for servo in self._servos:
                    servo.touched_lower = servo.touched_upper = False
                plans = sweep
            else:
                plans = [None] * len(self._servos)
            self._plans = list(plans)
            self._motion = name

    def hold(self, fractions: Mapping[str, float]) -> None:
        """The hand moves these joints to these fractions of their travel and holds them."""
        indexes = {name: JOINTS.index(name) for name in fractions if name in JOINTS}
        unknown = set(fractions) - set(indexes)
        if unknown:
            raise ValueError(f"unknown joint(s) {sorted(unknown)}; joints are {', '.join(JOINTS)}")
        for name, fraction in fractions.items():
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"{name}: fraction {fraction} is outside 0..1")
        with self._lock:
            self._advance()
            for name, index in indexes.items():
                servo = self._servos[index]
                self._plans[index] = hands.hold(
                    servo.geometry, servo.angle, fractions[name], self._time
                )

    def move_joint(self, joint: str, position: int, speed: float | None = None) -> None:
        """The hand moves a joint until it reads ``position`` (Present_Position, as the servo's
        homing offset makes it) at ``speed`` ticks/s on average, and holds it there."""
        if speed is not None and speed <= 0:
            raise ValueError(f"{joint}: speed must be above 0 ticks/s, not {speed:g}")
        index = _joint_index(joint)
        with self._lock:
            self._advance()
            servo = self._servos[index]
            target = self._angle_reading(index, position)
            self._plans[index] = hands.move_to(servo.angle, target, self._time, speed)

    def set_joint(self, joint: str, position: int) -> None:
        """Put a joint where it reads ``position`` at once, and hold it there."""
        index = _joint_index(joint)
        with self._lock:
            self._advance()
            target = self._angle_reading(index, position)
            self._servos[index].place(target)
            self._plans[index] = hands.move_to(target, target, self._time)

    def release(self, joint: str) -> None:
        """The hand lets go of one joint."""
        index = _joint_index(joint)
        with self._lock:
            self._advance()
            self._plans[index] = None

    def place_obstacle(self, joint: str, position: int | None) -> None:
        """Something in the joint's way where it reads ``position`` (None: take it away).

        The joint cannot pass it from whichever side it is on; between the gripper's jaws it
        is the object they grasp."""
        index = _joint_index(joint)
        with self._lock:
            self._advance()
            if position is None:
                self._obstacles.pop(index, None)
            else:
                angle = self._angle_reading(index, position)
                self._obstacles[index] = (angle, self._servos[index].angle > angle)

    def set_travel(self, joint: str, ticks: float) -> None:
        """Move a joint's end stops: ``ticks`` between them, centred on its middle."""
        if not 100 <= ticks <= MAX_TRAVEL:
            raise ValueError(
                f"{joint}: travel must be within 100..{MAX_TRAVEL} ticks, not {ticks:g}"
            )
        self._rebuild(joint, lambda g: replace(g, travel=ticks))

    def set_mount(self, joint: str, raw: int) -> None:
        """Re-seat a joint's encoder: it reads ``raw`` (no homing offset) at the middle."""
        if not 0 <= raw <= MAX_POSITION:
            raise ValueError(f"{joint}: mount must be a raw reading 0..{MAX_POSITION}, not {raw}")
        self._rebuild(joint, lambda g: replace(g, mount=raw))

    def _rebuild(self, joint: str, change: Callable[[JointGeometry], JointGeometry]) -> None:
        index = _joint_index(joint)
        with self._lock:
            self._advance()
            servo = self._servos[index]
            servo.geometry = change(servo.geometry)
            servo.place(servo.angle)
            self._obstacles.pop(index, None)

    def _angle_reading(self, index: int, position: int) -> float:
        servo = self._servos[index]
        offset = servo.get("Homing_Offset")
        return servo.geometry.angle_reading(position, offset, near=servo.angle)

    def ground_truth(self) -> list[dict[str, object]]:
        """Per joint what is physically so, beside what the servo reports: for ``status
        --json`` and tests."""
        with self._lock:
            self._advance()
            gravity = self._gravity.loads([servo.angle for servo in self._servos])
            return [
                self._joint_truth(index, servo, gravity[index])
                for index, servo in enumerate(self._servos)
            ]

    def _joint_truth(self, index: int, servo: ServoModel, gravity: float) -> dict[str, object]:
        geometry = servo.geometry
        stops = (geometry.lower_stop, geometry.upper_stop)
        offset = servo.get("Homing_Offset")
        obstacle = self._obstacles.get(index)
        t = servo.telemetry()
        return {
            "joint": geometry.name,
            "motor": servo.slot,
            "angle_deg": round(t.angle, 3),
            "fraction": round(t.fraction, 4),
            "encoder": geometry.encoder(servo.angle),
            "position": t.position,
            "stops": [reported(geometry.present_position(stop, offset)) for stop in stops],
            "encoder_stops": [geometry.encoder(stop) for stop in stops],
            "travel": geometry.travel,
            "mount": geometry.mount,
            "homing_offset": offset,
            "obstacle": None
            if obstacle is None
            else reported(geometry.present_position(obstacle[0], offset)),
            "held_by_hand": self._plans[index] is not None,
            "torque": t.torque,
            "load_pct": round(t.load, 1),
            "gravity_pct": round(gravity / 10, 1),
            "current_a": round(t.current, 3),
            "temperature_c": round(t.temperature, 1),
            "voltage_v": round(t.voltage, 2),
            "powered": t.powered,
            "errors": t.errors.describe() if t.errors else "",
        }

    def sweep_done(self) -> bool:
        """True once a "sweep" pass is over and brought every joint to both of its end stops.

        Over means the last joint has left its last end stop too, so a range recording that
        stops when this turns True has seen every stop.
        """
        with self._lock:
            self._advance()
            return self._time >= self._sweep_ends_at and all(
                s.touched_lower and s.touched_upper for s in self._servos
            )

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until the hand's plans are done and no joint moves; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                self._advance()
                if self._idle():
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_IDLE_POLL)

    def _idle(self) -> bool:
        plans_done = all(p is None or p.finished_at(self._time) for p in self._plans)
        return plans_done and all(s.settled() for s in self._servos)

    # -- faults --------------------------------------------------------------------------

    def inject(
        self,
        fault: Fault,
        *,
        motor: int | None = None,
        count: int | None = None,
        value: float | None = None,
    ) -> None:
        request = FaultRequest(fault, motor, count, value)
        validate(request, [s.slot for s in self._servos])
        with self._lock:
            self._advance()
            if value is None:
                request = replace(request, value=self._default_value(request))
            self._faults.add(request)
            self._follow_supply()

    def clear(self, fault: Fault | None = None) -> None:
        """Clear one kind of fault (on every motor), or all of them."""
        with self._lock:
            self._advance()
            self._faults.clear(fault)
            self._follow_supply()

    def active_faults(self) -> tuple[ActiveFault, ...]:
        with self._lock:
            return self._faults.active()

    def _default_value(self, request: FaultRequest) -> float | None:
        if request.fault is Fault.LATE_REPLY:
            return DEFAULT_LATE_REPLY
        if request.fault is Fault.BROWNOUT:
            return self._variant.brownout_voltage
        if request.fault is Fault.OVERHEAT:
            limits = [
                s.get("Max_Temperature_Limit")
                for s in self._servos
                if request.motor in (None, s.slot)
            ]
            return max(limits) + _OVERHEAT_MARGIN
        return None

    # -- time ----------------------------------------------------------------------------

    def fast_forward(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass at once (hand motions, cooling, ...)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._advance()
            self._skew += seconds
            target = self._time + seconds
            chunk = max(
                _MAX_SUBSTEP * _MAX_SUBSTEPS, seconds * _MAX_SUBSTEPS / _FAST_FORWARD_SUBSTEPS
            )
            while self._time < target:
                self._advance_to(min(target, self._time + chunk))

    def _now(self) -> float:
        return self._clock() + self._skew

    def _advance(self) -> None:
        self._advance_to(self._now())

    def _advance_to(self, t: float) -> None:
        gap = t - self._time
        if gap <= 0:
            return
        steps = min(_MAX_SUBSTEPS, math.ceil(gap / _MAX_SUBSTEP))
        dt = gap / steps
        supply = self._supply_now()
        scale = min(max(supply / self._variant.rated_voltage, 0.0), 1.0) or 1.0
        pinned = [self._pinned_temperature(servo.slot) for servo in self._servos]
        jammed = [self._faults.find(Fault.JAM, servo.slot) is not None for servo in self._servos]
        self._follow_supply(supply)
        for step in range(1, steps + 1):
            moment = self._time + dt * step
            gravity = self._gravity.loads([servo.angle for servo in self._servos])
            for index, (plan, servo) in enumerate(zip(self._plans, self._servos, strict=True)):
                lower, upper = self._reach(index)
                around = Surroundings(
                    lower,
                    upper,
                    gravity[index] / scale,
                    self._variant.gearbox_friction,
                    plan.angle_at(moment) if plan else None,
                    jammed[index],
                )
                servo.substep(dt, around, pinned[index])
        self._time = t

    def _settle(self) -> None:
        """Let the limp arm come to rest under its own weight, taking no time."""
        for _ in range(round(_SETTLE_TIME / _SETTLE_STEP)):
            gravity = self._gravity.loads([servo.angle for servo in self._servos])
            for index, servo in enumerate(self._servos):
                lower, upper = self._reach(index)
                around = Surroundings(lower, upper, gravity[index], self._variant.gearbox_friction)
                servo.substep(_SETTLE_STEP, around)
            if all(servo.settled() for servo in self._servos):
                break
        for servo in self._servos:
            servo.power_on()  # switched on where it came to rest

    def _reach(self, index: int) -> tuple[float, float]:
        """How far the joint can go now: its end stops, or an obstacle on its way."""
        geometry = self._servos[index].geometry
        lower, upper = geometry.lower_stop, geometry.upper_stop
        if index in self._obstacles:
            angle, above = self._obstacles[index]
            if above:
                lower = max(lower, angle)
            else:
                upper = min(upper, angle)
        return lower, upper

    def _pinned_temperature(self, motor: int) -> float | None:
        overheat = self._faults.find(Fault.OVERHEAT, motor)
        return overheat.value if overheat is not None else None

    def _follow_supply(self, supply: float | None = None) -> None:
        """The servos see the supply now (a brown-out resets them at once, not at the next
        request that moves something)."""
        volts = self._supply_now() if supply is None else supply
        for servo in self._servos:
            servo.follow_supply(volts)

    def _supply_now(self) -> float:
        brownout = self._faults.find(Fault.BROWNOUT)
        supply = (
            brownout.value if brownout is not None and brownout.value is not None else self._supply
        )
        drawn = sum(s.current for s in self._servos)
        return max(supply - _SUPPLY_RESISTANCE * drawn, 0.0)


def _joint_index(joint: str) -> int:
    try:
        return JOINTS.index(joint)
    except ValueError:
        raise ValueError(f"unknown joint {joint!r}; joints are {', '.join(JOINTS)}") from None


class VirtualPair:
    """A leader (moved by a hand, ``motion``) and a follower, for ``so101d sim`` and the demo."""

    def __init__(
        self,
        leader_link: str | os.PathLike[str],
        follower_link: str | os.PathLike[str],
        *,
        leader_voltage: float = 5.0,
        follower_voltage: float = 12.0,
        seed: int = 0,
        arm_seed: int | None = None,
        motion: str | None = "wave",
        baudrate: int = 1_000_000,
        fidelity: Fidelity | None = None,
    ) -> None:
        self.leader, self.follower = (
            VirtualArm(
                role,
                link,
                supply_voltage=voltage,
                baudrate=baudrate,
                seed=seed,
                arm_seed=arm_seed,
                motion=hand,
                fidelity=fidelity,
            )
            for role, link, voltage, hand in (
                ("leader", leader_link, leader_voltage, motion),
                ("follower", follower_link, follower_voltage, None),
            )
        )

    @property
    def arms(self) -> tuple[VirtualArm, VirtualArm]:
        return (self.leader, self.follower)

    def arm(self, role: str) -> VirtualArm:
        return self.leader if check_role(role) == "leader" else self.follower

    def start(self) -> None:
        self.leader.start()
        try:
            self.follower.start()
        except BaseException:
            self.leader.stop()
            raise

    def stop(self) -> None:
        for arm in self.arms:
            arm.stop()

    def __enter__(self) -> VirtualPair:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
