"""The arithmetic of a manual calibration: neutral pose, sweep, and the values chosen after it.

Everything is tracked in encoder ticks (``Actual = Present + Homing_Offset``, modulo 4096),
which do not depend on whatever homing offset the servo held before the session, as
continuous angles: a joint that crosses the encoder seam (4095 -> 0) keeps counting past it,
so its extremes are its true span whatever the seam's place.

At "done", each joint gets LeRobot's half-turn homing (``Homing_Offset = Actual - 2047`` at
the neutral pose, so the neutral pose reads 2047) when the swept range then lies inside
0..4095 clear of its ends; otherwise (a neutral pose far from the middle, LeRobot's wrapped
"min 0 max 4054" case) the offset is re-centred so that the middle of the sweep reads 2047.
The saved range therefore never crosses the seam. wrist_roll keeps LeRobot's full turn
0..4095 (homed at the neutral pose) unless its sweep is recorded on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from so101d.calibration.model import WRIST_ROLL, MotorCalibration, Role
from so101d.calibration.validate import (
    ENCODER_END_MARGIN,
    WRAP_SPAN,
    barely_swept,
    reference_band,
)
from so101d.feetech.registers import ENCODER_RESOLUTION, HALF_TURN, MAX_POSITION
from so101d.motion import seam_delta


def encoder_ticks(present: int, homing_offset: int) -> int:
    """The encoder's own reading of a Present_Position taken with ``homing_offset``."""
    return (present + homing_offset) % ENCODER_RESOLUTION


@dataclass
class JointSweep:
    """One joint from the neutral pose on: continuous encoder ticks and the extremes seen."""

    neutral: int  # encoder ticks at the captured neutral pose (0..4095)
    position: int  # continuous encoder ticks now
    low: int
    high: int
    last: int  # the last reading, 0..4095

    @classmethod
    def at_neutral(cls, ticks: int) -> JointSweep:
        return cls(ticks, ticks, ticks, ticks, ticks)

    def update(self, ticks: int) -> None:
        self.position += seam_delta(ticks, self.last)
        self.last = ticks
        self.low, self.high = min(self.low, self.position), max(self.high, self.position)

    @property
    def span(self) -> int:
        return self.high - self.low

    @property
    def neutral_offset(self) -> int:
        """LeRobot's half-turn homing offset at the neutral pose (unwrapped)."""
        return self.neutral - HALF_TURN

    def as_read(self, value: int) -> int:
        """A continuous position as the servo would read it with neutral-pose homing; values
        outside 0..4095 are where LeRobot's recording would have wrapped."""
        return value - self.neutral_offset

    @property
    def crosses_seam(self) -> bool:
        """With neutral-pose homing this range would leave 0..4095 (or touch its ends)."""
        low, high = self.as_read(self.low), self.as_read(self.high)
        return low < ENCODER_END_MARGIN or high > MAX_POSITION - ENCODER_END_MARGIN


@dataclass(frozen=True)
class JointVerdict:
    """What the live table shows about a joint's sweep so far."""

    span: int
    sigma: float | None  # against the reference band's mean, where it has one
    crosses_seam: bool  # so101d re-centres it at "done"; LeRobot would save a wrapped range
    too_wide: bool  # wider than any SO-101 joint turns: something slipped
    barely_swept: bool


def judge(joint: str, sweep: JointSweep, role: Role, *, full_turn: bool) -> JointVerdict:
    band = reference_band(role, joint)
    span = sweep.span
    recorded = not (full_turn and joint == WRIST_ROLL)
    return JointVerdict(
        span=span,
        sigma=band.deviation(span) if band is not None else None,
        crosses_seam=recorded and sweep.crosses_seam,
        too_wide=recorded and joint != WRIST_ROLL and span >= WRAP_SPAN,
        barely_swept=recorded and barely_swept(joint, span),
    )


def unswept_joints(sweeps: Mapping[str, JointSweep], role: Role, *, full_turn: bool) -> list[str]:
    """Joints that did not move, or moved far less than the joint travels on any SO-101."""
    return [
        joint
        for joint, sweep in sweeps.items()
        if judge(joint, sweep, role, full_turn=full_turn).barely_swept
    ]


def joint_calibration(
    joint: str, motor_id: int, sweep: JointSweep, *, full_turn: bool
) -> MotorCalibration:
    """The homing offset and range to save for one swept joint (see the module docstring)."""
    if full_turn and joint == WRIST_ROLL:
        offset, _ = encodable_offset(sweep.neutral_offset)
        return MotorCalibration(motor_id, 0, offset, 0, MAX_POSITION)
    offset = sweep.neutral_offset
    if sweep.crosses_seam:
        offset = (sweep.low + sweep.high) // 2 - HALF_TURN
    offset, shift = encodable_offset(offset)
    low = sweep.low - offset - shift
    high = sweep.high - offset - shift
    return MotorCalibration(motor_id, 0, offset, max(0, low), min(MAX_POSITION, max(high, low + 1)))


def encodable_offset(offset: int) -> tuple[int, int]:
    """``offset`` as the servo's sign-magnitude register holds it (-2047..2047), and the
    whole turns taken out of it (readings are the same modulo one turn); an offset of -2048,
    which the register cannot hold, becomes -2047 (every reading one tick less)."""
    wrapped = (offset + ENCODER_RESOLUTION // 2) % ENCODER_RESOLUTION - ENCODER_RESOLUTION // 2
    turns = offset - wrapped
    return max(wrapped, -HALF_TURN), turns
