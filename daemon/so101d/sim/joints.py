"""SO-101 hardware data: the six joints, their travel, how the encoders sit, the servo variants.

Joint angles are kept in encoder ticks measured from the joint's mechanical middle (0 = middle),
so the end stops are at ``-travel / 2`` and ``+travel / 2``. The raw encoder reading of an angle
is ``mount + angle`` (modulo one turn), where ``mount`` is where the encoder happens to sit at
the middle pose: it differs per joint and per arm, as on real arms assembled by hand.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from so101d.calibration.model import JOINTS
from so101d.feetech.registers import ENCODER_RESOLUTION

ROLES = ("leader", "follower")

DEGREES_PER_TICK = 360 / ENCODER_RESOLUTION

# Travel between the end stops in ticks: the published follower means (NVIDIA's SO-101
# calibration data). The leader has the same links but a handle instead of a gripper.
_FOLLOWER_TRAVEL = (2725, 2350, 2222, 2329, 4026, 1475)
_LEADER_TRAVEL = (2725, 2350, 2222, 2329, 4026, 1100)

# Raw encoder readings of the middle pose stay inside this band, so the homing offset that
# puts the middle at 2047 always fits LeRobot's +-2047 sign-magnitude range.
_MOUNT_BAND = (600, 3500)
# Where the joints rest at power-on, as fractions of their travel.
_REST_BAND = (0.3, 0.7)


@dataclass(frozen=True)
class ServoVariant:
    """The STS3215 build an arm uses and the supply it normally runs on."""

    rated_voltage: float  # volts at which no_load_speed and stall_current hold
    supply_voltage: float  # the arm's usual supply
    brownout_voltage: float  # default sag for Fault.BROWNOUT: below Min_Voltage_Limit
    max_voltage_limit: int  # factory Max_Voltage_Limit, 0.1 V
    min_voltage_limit: int  # factory Min_Voltage_Limit, 0.1 V
    no_load_speed: float = 3000.0  # ticks/s at the rated voltage
    stall_current: float = 2.7  # amperes at the rated voltage


# Follower: 12 V STS3215 (C018/C047). Leader: 7.4 V STS3215 (C044/C046/C001) on a 5 V USB supply.
VARIANTS = {
    "follower": ServoVariant(12.0, 12.0, 4.0, max_voltage_limit=140, min_voltage_limit=45),
    "leader": ServoVariant(7.4, 5.0, 3.8, max_voltage_limit=80, min_voltage_limit=40),
}


@dataclass(frozen=True)
class JointGeometry:
    name: str
    motor_id: int
    travel: float  # ticks between the end stops
    mount: int  # raw encoder reading at the mechanical middle

    @property
    def lower_stop(self) -> float:
        return -self.travel / 2

    @property
    def upper_stop(self) -> float:
        return self.travel / 2

    def clamp(self, angle: float) -> float:
        return min(max(angle, self.lower_stop), self.upper_stop)

    def angle_at(self, fraction: float) -> float:
        """Angle of a fraction of the travel (0 = lower stop, 1 = upper stop)."""
        return (fraction - 0.5) * self.travel

    def fraction_of(self, angle: float) -> float:
        return angle / self.travel + 0.5

    def present_position(self, angle: float, homing_offset: int) -> float:
        """The servo's unrounded single-turn reading: ``(raw - offset) mod 4096``."""
        return (self.mount + angle - homing_offset) % ENCODER_RESOLUTION


def reported(position: float) -> int:
    """A position as the servo reports it: rounded half up, within one turn."""
    return math.floor(position + 0.5) % ENCODER_RESOLUTION


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def arm_geometry(role: str, seed: int) -> tuple[JointGeometry, ...]:
    """The six joints of one arm; the mounting offsets follow deterministically from the seed."""
    rng = random.Random(f"so101d.sim/mount/{check_role(role)}/{seed}")
    travels = _LEADER_TRAVEL if role == "leader" else _FOLLOWER_TRAVEL
    return tuple(
        JointGeometry(name, motor_id, travel, rng.randint(*_MOUNT_BAND))
        for motor_id, (name, travel) in enumerate(zip(JOINTS, travels, strict=True), start=1)
    )


def rest_fractions(role: str, seed: int) -> tuple[float, ...]:
    """Where each joint rests when the arm is switched on."""
    rng = random.Random(f"so101d.sim/rest/{check_role(role)}/{seed}")
    return tuple(round(rng.uniform(*_REST_BAND), 3) for _ in JOINTS)


def ambient_temperature(role: str, seed: int) -> float:
    return random.Random(f"so101d.sim/ambient/{check_role(role)}/{seed}").uniform(25.0, 30.0)
