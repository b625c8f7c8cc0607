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

from so101d.calibration.model import JOINTS, WRIST_ROLL
from so101d.feetech.registers import ENCODER_RESOLUTION

ROLES = ("leader", "follower")

DEGREES_PER_TICK = 360 / ENCODER_RESOLUTION

# Travel between the end stops in ticks: the published follower means (NVIDIA's SO-101
# calibration data). The leader has the same links but a handle instead of a gripper.
_FOLLOWER_TRAVEL = (2725, 2350, 2222, 2329, 4026, 1475)
_LEADER_TRAVEL = (2725, 2350, 2222, 2329, 4026, 1100)

# Raw encoder readings of the middle pose stay inside this band on the default arms (a
# margin inside the +-2047 a homing offset can hold).
_MOUNT_BAND = (600, 3500)
# An arm from an arm seed: travel drawn from the published 2-sigma bands (the leader's handle
# around the measured 1119), wrist_roll below one turn; the encoder anywhere on its turn
# (the homing offset that puts the middle at 2047 always fits +-2047), and wrist_roll homed
# up to 15 % of its travel off its middle, as a person holding it by eye does.
_FOLLOWER_TRAVEL_BANDS = (
    (2661, 2789),
    (2196, 2504),
    (2204, 2240),
    (2295, 2363),
    (3798, 4090),
    (1409, 1541),
)
_LEADER_TRAVEL_BANDS = (*_FOLLOWER_TRAVEL_BANDS[:5], (1050, 1190))
_ANY_MOUNT = (0, ENCODER_RESOLUTION - 2)
_ROLL_HOMING_SPREAD = 0.15
MAX_TRAVEL = ENCODER_RESOLUTION - 6  # ticks: beyond one turn a reading would be ambiguous
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
    stall_torque: float  # N m at the rated voltage: what a load of 100 % means
    gearbox_friction: float  # load units of torque it takes to back-drive the gearbox
    no_load_speed: float = 3000.0  # ticks/s at the rated voltage
    stall_current: float = 2.7  # amperes at the rated voltage


# Follower: 12 V STS3215 (C018/C047, 30 kg cm stall, 1/345 gears: a limp follower sinks under
# its own weight). Leader: 7.4 V STS3215 (C044/C046/C001, 19.5 kg cm) on a 5 V USB supply,
# geared so that the arm stays where the hand leaves it.
VARIANTS = {
    "follower": ServoVariant(
        12.0,
        12.0,
        4.0,
        max_voltage_limit=140,
        min_voltage_limit=45,
        stall_torque=2.94,
        gearbox_friction=40.0,
    ),
    "leader": ServoVariant(
        7.4,
        5.0,
        3.8,
        max_voltage_limit=80,
        min_voltage_limit=40,
        stall_torque=1.91,
        gearbox_friction=2000.0,
    ),
}


@dataclass(frozen=True)
class JointGeometry:
    name: str
    motor_id: int
    travel: float  # ticks between the end stops
    mount: int  # raw encoder reading at the mechanical middle
    homing: float = 0.0  # the angle at which a calibration homes the joint (reads 2047)

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

    def encoder(self, angle: float) -> int:
        """The raw encoder reading (no homing offset) of an angle."""
        return reported(self.mount + angle)

    def angle_reading(self, position: int, homing_offset: int, near: float) -> float:
        """The angle within the travel whose single-turn reading is ``position`` (nearest to
        ``near`` where two are); ValueError naming the joint when none is."""
        base = position + homing_offset - self.mount
        candidates = [
            base + turn * ENCODER_RESOLUTION
            for turn in range(-2, 3)
            if self.lower_stop <= base + turn * ENCODER_RESOLUTION <= self.upper_stop
        ]
        if not candidates:
            low = reported(self.present_position(self.lower_stop, homing_offset))
            high = reported(self.present_position(self.upper_stop, homing_offset))
            raise ValueError(
                f"{self.name} cannot read {position}: its travel reads {low}..{high} "
                "(through the seam where the first is larger)"
            )
        return min(candidates, key=lambda angle: abs(angle - near))

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


def arm_geometry(role: str, seed: int, arm_seed: int | None = None) -> tuple[JointGeometry, ...]:
    """The six joints of one arm.

    Without ``arm_seed``: the published mean travel, encoders mounted inside a band around the
    middle of their turn, varied by ``seed``, every joint homed at its middle. With it: a
    different arm per seed, its travel, encoder mounts (anywhere on the turn) and wrist_roll
    homing pose drawn at random.
    """
    if arm_seed is not None:
        return _varied_geometry(check_role(role), arm_seed)
    rng = random.Random(f"so101d.sim/mount/{check_role(role)}/{seed}")
    travels = _LEADER_TRAVEL if role == "leader" else _FOLLOWER_TRAVEL
    return tuple(
        JointGeometry(name, motor_id, travel, rng.randint(*_MOUNT_BAND))
        for motor_id, (name, travel) in enumerate(zip(JOINTS, travels, strict=True), start=1)
    )


def _varied_geometry(role: str, arm_seed: int) -> tuple[JointGeometry, ...]:
    rng = random.Random(f"so101d.sim/arm/{role}/{arm_seed}")
    bands = _LEADER_TRAVEL_BANDS if role == "leader" else _FOLLOWER_TRAVEL_BANDS
    joints = []
    for motor_id, (name, band) in enumerate(zip(JOINTS, bands, strict=True), start=1):
        travel = rng.randint(*band)
        mount = rng.randint(*_ANY_MOUNT)
        spread = _ROLL_HOMING_SPREAD * travel if name == WRIST_ROLL else 0.0
        joints.append(JointGeometry(name, motor_id, travel, mount, rng.uniform(-spread, spread)))
    return tuple(joints)


def rest_fractions(role: str, seed: int) -> tuple[float, ...]:
    """Where each joint rests when the arm is switched on."""
    rng = random.Random(f"so101d.sim/rest/{check_role(role)}/{seed}")
    return tuple(round(rng.uniform(*_REST_BAND), 3) for _ in JOINTS)


def ambient_temperature(role: str, seed: int) -> float:
    return random.Random(f"so101d.sim/ambient/{check_role(role)}/{seed}").uniform(25.0, 30.0)
