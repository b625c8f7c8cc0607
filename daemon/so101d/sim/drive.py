"""How one servo moves its joint: the motor's control loop against gravity, stops and hands.

Torques are in Present_Load units (0.1 % of the servo's stall torque), signed like the joint
angle (ticks from the mechanical middle). Per substep:

* a jammed joint stays put; a hand puts the joint where it wants (stops and obstacles win);
* torque on: a set-point follows the motion profile (position mode: towards the goal, with the
  speed and acceleration limits; wheel mode: at Goal_Velocity), and the joint settles where
  the position loop's torque, ``P x error + integral``, balances gravity; a servo whose torque
  limit cannot hold gravity sinks, its torque saturated;
* torque off: gravity back-drives the gearbox once it beats the gearbox's static friction.

The load the servo reports is the torque it applies: against gravity, against a stop, an
obstacle, a jam or a hand, plus friction while moving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_MOVING = 10.0  # ticks/s above which a joint counts as moving
_ARRIVED = 0.05  # ticks: closer than this to the goal counts as there
_FRICTION_LOAD = 30.0  # load while moving freely, plus up to _SPEED_LOAD at full speed
_SPEED_LOAD = 80.0
_MIN_STIFFNESS = 1e-3  # load per tick below which the position loop holds nothing
_BACKDRIVE = 5.0  # ticks/s per unit of net torque back-driving the gearbox


@dataclass(frozen=True)
class Drive:
    """The servo's registers as the motor control uses them, decoded once per advance."""

    torque_on: bool
    goal: float | None  # goal angle (ticks from the middle); None unless in position mode
    wheel_speed: float | None  # ticks/s in wheel mode; None otherwise
    max_speed: float  # ticks/s
    acceleration: float  # ticks/s^2
    stiffness: float  # load per tick of position error (P)
    integral_gain: float  # load per tick second of position error (I)
    torque_limit: float  # load units


@dataclass(frozen=True)
class Surroundings:
    """What acts on the joint from outside during one substep."""

    lower: float  # the lowest angle the joint can reach now (stop or obstacle)
    upper: float
    gravity: float  # load units, positive pushes the angle up
    friction: float  # the gearbox's static friction, load units
    hand: float | None = None  # where a hand puts the joint
    jammed: bool = False


@dataclass
class JointMotion:
    """The joint's state and the position loop's memory."""

    angle: float
    velocity: float = 0.0
    setpoint: float | None = None  # None while the torque is off
    profile_speed: float = 0.0
    integral: float = 0.0
    load: float = 0.0

    def release(self) -> None:
        """The torque went off (or the servo reset): the position loop forgets everything."""
        self.setpoint = None
        self.profile_speed = self.integral = 0.0

    def step(self, dt: float, drive: Drive, around: Surroundings) -> None:
        if drive.torque_on and self.setpoint is None:
            self.setpoint = self.angle
        elif not drive.torque_on:
            self.release()
        if self.setpoint is not None:
            self._advance_setpoint(dt, drive, around)
        if around.jammed:
            target = self.angle
        elif around.hand is not None:
            target = around.hand
        elif self.setpoint is not None:
            target = self._balance(dt, drive, around)
        else:
            target = self._sink(dt, around.gravity, around.friction, drive.max_speed)
        actual = min(max(target, around.lower), around.upper)
        self.velocity = (actual - self.angle) / dt
        self.angle = actual
        self.load = self._servo_torque(drive, around)
        if self.setpoint is not None:
            error = self.setpoint - self.angle
            limit = drive.torque_limit
            self.integral = min(
                max(self.integral + drive.integral_gain * error * dt, -limit), limit
            )

    @property
    def moving(self) -> bool:
        return abs(self.velocity) > _MOVING

    def _advance_setpoint(self, dt: float, drive: Drive, around: Surroundings) -> None:
        assert self.setpoint is not None
        if drive.wheel_speed is not None:
            desired = drive.wheel_speed
        elif drive.goal is not None:
            error = drive.goal - self.setpoint
            if abs(error) < _ARRIVED:
                self.setpoint, self.profile_speed = drive.goal, 0.0
                return
            braking = math.sqrt(2 * drive.acceleration * abs(error))
            desired = math.copysign(min(drive.max_speed, braking), error)
        else:
            desired = 0.0
        change = drive.acceleration * dt
        speed = min(max(desired, self.profile_speed - change), self.profile_speed + change)
        step = speed * dt
        if drive.goal is not None and drive.wheel_speed is None:
            error = drive.goal - self.setpoint
            if step * error > 0 and abs(step) >= abs(error):
                step, speed = error, 0.0
        self.profile_speed = speed
        # A set-point far beyond a stop would only wind the loop up: keep it within reach.
        reach = drive.torque_limit / max(drive.stiffness, _MIN_STIFFNESS)
        self.setpoint = min(max(self.setpoint + step, around.lower - reach), around.upper + reach)

    def _balance(self, dt: float, drive: Drive, around: Surroundings) -> float:
        """Where the position loop holds the joint against gravity, approached at top speed."""
        assert self.setpoint is not None
        if drive.stiffness < _MIN_STIFFNESS:
            return self._sink(dt, around.gravity, around.friction, drive.max_speed)
        held = around.gravity + self.integral
        if abs(around.gravity) > drive.torque_limit:  # saturated: gravity wins
            net = abs(around.gravity) - drive.torque_limit
            return self._sink(dt, math.copysign(net, around.gravity), 0.0, drive.max_speed)
        target = self.setpoint + held / drive.stiffness
        most = drive.max_speed * dt + abs(self.profile_speed) * dt
        return self.angle + min(max(target - self.angle, -most), most)

    def _sink(self, dt: float, push: float, friction: float, top_speed: float) -> float:
        speed = (abs(push) - friction) * _BACKDRIVE
        if speed < _MOVING:  # the gearbox sticks rather than creep
            return self.angle
        return self.angle + math.copysign(min(speed, top_speed) * dt, push)

    def _servo_torque(self, drive: Drive, around: Surroundings) -> float:
        if self.setpoint is None:
            return 0.0
        torque = drive.stiffness * (self.setpoint - self.angle) + self.integral
        if self.moving:
            share = min(abs(self.velocity) / max(drive.max_speed, 1.0), 1.0)
            torque += math.copysign(_FRICTION_LOAD + _SPEED_LOAD * share, self.velocity)
        limit = drive.torque_limit
        return min(max(torque, -limit), limit)
