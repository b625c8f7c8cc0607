"""The arithmetic of a manual calibration, exactly: LeRobot's half-turn homing where the
sweep allows it, continuous tracking across the encoder seam, re-centring where needed."""

from __future__ import annotations

import pytest

from so101d.calibrate.sweep import (
    JointSweep,
    encoder_ticks,
    joint_calibration,
    judge,
    unswept_joints,
)
from so101d.calibration.model import JOINTS, MotorCalibration, Role


def swept(neutral: int, *readings: int) -> JointSweep:
    sweep = JointSweep.at_neutral(neutral)
    for ticks in readings:
        sweep.update(ticks)
    return sweep


def path(start: int, end: int, step: int = 40) -> list[int]:
    """Readings of a hand moving from ``start`` to ``end`` (continuous), as the encoder
    reports them (modulo one turn)."""
    sign = 1 if end >= start else -1
    return [value % 4096 for value in range(start, end + sign, sign * step)] + [end % 4096]


def test_a_neutral_pose_in_the_middle_is_lerobots_half_turn_homing() -> None:
    sweep = swept(3000, *path(3000, 1825), *path(1825, 4175), *path(4175, 3000))
    assert not sweep.crosses_seam
    # LeRobot: Homing_Offset = 3000 - 2047 = 953, range read with it: 872..3222
    assert joint_calibration("shoulder_lift", 2, sweep, full_turn=True) == MotorCalibration(
        2, 0, 953, 872, 3222
    )


def test_crossing_the_encoder_seam_keeps_the_true_span() -> None:
    # The encoder's own seam lies inside the travel: readings go 3900 .. 4095, 0 .. 154.
    sweep = swept(3900, *path(3900, 2900), *path(2900, 4250), *path(4250, 3900))
    assert (sweep.low, sweep.high, sweep.span) == (2900, 4250, 1350)
    calibration = joint_calibration("gripper", 6, sweep, full_turn=True)
    assert calibration.range_max - calibration.range_min == 1350


def test_a_neutral_pose_far_from_the_middle_is_re_centred_so_the_range_never_wraps() -> None:
    # Neutral near the lower stop: LeRobot's homing would read the upper stop as 4279 and
    # record "0 .. 4095"-like nonsense; so101d puts the sweep's middle at 2047 instead.
    sweep = swept(1000, *path(1000, 883), *path(883, 3233))
    assert sweep.crosses_seam
    assert sweep.as_read(sweep.high) == 4280
    calibration = joint_calibration("shoulder_lift", 2, sweep, full_turn=True)
    assert calibration == MotorCalibration(2, 0, 2058 - 2047, 872, 3222)
    assert judge("shoulder_lift", sweep, Role.FOLLOWER, full_turn=True).crosses_seam


@pytest.mark.parametrize("neutral", [0, 1, 2047, 2048, 4094, 4095])
def test_every_homing_offset_fits_the_servos_register(neutral: int) -> None:
    sweep = swept(neutral, *path(neutral, neutral - 1100), *path(neutral - 1100, neutral + 1100))
    calibration = joint_calibration("elbow_flex", 3, sweep, full_turn=True)
    assert -2047 <= calibration.homing_offset <= 2047
    assert 0 <= calibration.range_min < calibration.range_max <= 4095
    # The servo's readings with that offset are the saved range: nothing wraps.
    low = (sweep.low + 4096 * 4 - calibration.homing_offset) % 4096
    high = (sweep.high + 4096 * 4 - calibration.homing_offset) % 4096
    assert (low, high) == (calibration.range_min, calibration.range_max)


def test_wrist_roll_keeps_the_full_turn_unless_its_sweep_is_recorded() -> None:
    sweep = swept(500, *path(500, 100), *path(100, 900))
    assert joint_calibration("wrist_roll", 5, sweep, full_turn=True) == MotorCalibration(
        5, 0, 500 - 2047, 0, 4095
    )
    recorded = joint_calibration("wrist_roll", 5, sweep, full_turn=False)
    assert recorded.range_max - recorded.range_min == 800


def test_unmoved_and_barely_swept_joints_are_listed() -> None:
    sweeps = {joint: swept(2000) for joint in JOINTS}
    sweeps["shoulder_pan"] = swept(2000, *path(2000, 3300), *path(3300, 700))
    sweeps["elbow_flex"] = swept(2000, *path(2000, 2400))  # 400 of its ~2222 ticks
    unswept = unswept_joints(sweeps, Role.FOLLOWER, full_turn=True)
    assert unswept == ["shoulder_lift", "elbow_flex", "wrist_flex", "gripper"]
    assert "wrist_roll" in unswept_joints(sweeps, Role.FOLLOWER, full_turn=False)


def test_a_sweep_wider_than_any_joint_turns_is_flagged() -> None:
    sweep = swept(2000, *path(2000, 0), *path(0, 3950))
    verdict = judge("elbow_flex", sweep, Role.FOLLOWER, full_turn=True)
    assert verdict.too_wide
    assert verdict.sigma is not None and verdict.sigma > 100


def test_encoder_ticks_undo_the_servos_homing_offset() -> None:
    assert encoder_ticks(2047, 953) == 3000
    assert encoder_ticks(3500, 1000) == 404
    assert encoder_ticks(100, -300) == 3896
