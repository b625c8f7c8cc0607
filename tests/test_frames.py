"""Coordinate frames: round trips between every pair exact to the tick, LeRobot's normalization
exactly (against real LeRobot), and LeRobot's documented old->new conversion."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from so101d.calibration.model import JOINTS, ArmCalibration, MotorCalibration
from so101d.calibration.normalize import NormMode, joint_norm_modes, normalize
from so101d.frames import FRAMES, Frame, FrameError, convert, convert_joint, limits, to_tick
from so101d.sim.arm import VirtualArm
from tests.lerobot_env import LeRobotScript
from tests.test_calibration_healthy import HEALTHY, arm
from tests.test_calibration_healthy import changed as changed_joint


def sim_calibration(role: str, seed: int) -> ArmCalibration:
    virtual = VirtualArm(role, "/nonexistent/unused", seed=seed)
    return {j: MotorCalibration(**v) for j, v in virtual.expected_calibration().items()}


CALIBRATIONS: dict[str, ArmCalibration] = {
    **{name: calibration for name, (_, calibration) in HEALTHY.items()},
    "simulated follower": sim_calibration("follower", 3),
    "simulated leader": sim_calibration("leader", 4),
    "inverted elbow (drive_mode 1)": changed_joint(
        HEALTHY["real follower"][1], "elbow_flex", drive_mode=1
    ),
}
FRACTIONS = (0.0, 0.013, 0.25, 0.5, 0.61, 0.75, 0.999, 1.0)


def grid_pose(calibration: ArmCalibration, fraction: float) -> dict[str, int]:
    """Every joint at ``fraction`` of its calibrated range, in raw ticks."""
    return {
        joint: round(motor.range_min + fraction * (motor.range_max - motor.range_min))
        for joint, motor in calibration.items()
    }


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("name", CALIBRATIONS)
@pytest.mark.parametrize(
    ("source", "target"), list(itertools.product(Frame, Frame)), ids=lambda f: str(f)
)
def test_round_trips_between_every_pair_are_exact_to_the_tick(
    name: str, source: Frame, target: Frame
) -> None:
    calibration = CALIBRATIONS[name]
    for fraction in FRACTIONS:
        raw = grid_pose(calibration, fraction)
        start = convert(raw, Frame.RAW, source, calibration)
        there = convert(start, source, target, calibration)
        back = convert(there, target, source, calibration)
        assert convert(there, target, Frame.RAW, calibration) == raw, (fraction, there)
        assert convert(back, source, Frame.RAW, calibration) == raw, (fraction, back)
        if FRAMES[source].whole_ticks:
            assert back == start
        else:
            assert all(close(back[j], start[j]) for j in JOINTS), (fraction, start, back)


@pytest.mark.parametrize("frame", Frame)
def test_every_tick_of_the_range_comes_back(frame: Frame) -> None:
    calibration = CALIBRATIONS["real follower"]
    for joint, motor in calibration.items():
        for tick in range(motor.range_min, motor.range_max + 1):
            value = convert_joint(joint, tick, Frame.RAW, frame, calibration)
            assert convert_joint(joint, value, frame, Frame.RAW, calibration) == tick


@pytest.mark.parametrize("name", CALIBRATIONS)
@pytest.mark.parametrize("use_degrees", [True, False])
def test_lerobot_frames_are_calibration_normalize(name: str, use_degrees: bool) -> None:
    calibration = CALIBRATIONS[name]
    frame = Frame.LEROBOT if use_degrees else Frame.LEROBOT_RANGE
    modes = joint_norm_modes(use_degrees)
    for joint, motor in calibration.items():
        for tick in range(0, 4096, 5):
            ours = convert_joint(joint, tick, Frame.RAW, frame, calibration)
            assert ours == normalize(tick, motor, modes[joint])


def test_integer_frames_truncate_like_lerobot_but_snap_float_error() -> None:
    assert to_tick(2047.9) == 2047
    assert to_tick(-3.7) == -3  # toward zero, as int()
    assert to_tick(2332.9999999999995) == 2333
    assert to_tick(2333.0000000004) == 2333


def test_degrees_frames_convert_without_a_calibration() -> None:
    pose = dict.fromkeys(JOINTS, 10.0)
    assert convert(pose, Frame.LEROBOT, Frame.MUJOCO)["shoulder_pan"] == pytest.approx(
        math.radians(10)
    )
    assert convert(pose, Frame.LEROBOT_LEGACY, Frame.MUJOCO_OLD)["elbow_flex"] == pytest.approx(
        math.radians(10)
    )


@pytest.mark.parametrize(
    ("source", "target"), [(Frame.LEROBOT, Frame.RAW), (Frame.MUJOCO, Frame.LEROBOT_RANGE)]
)
def test_a_conversion_through_the_ticks_asks_for_the_calibration(
    source: Frame, target: Frame
) -> None:
    with pytest.raises(FrameError, match="needs the arm's LeRobot calibration file"):
        convert({"gripper": 50.0}, source, target)


def test_bad_input_is_named() -> None:
    with pytest.raises(FrameError, match="unknown joint 'elbow'"):
        convert({"elbow": 1.0}, Frame.LEROBOT, Frame.MUJOCO)
    with pytest.raises(FrameError, match=r"raw values are whole ticks: gripper is 2047\.5"):
        convert({"gripper": 2047.5}, Frame.RAW, Frame.LEROBOT, CALIBRATIONS["real leader"])


def test_limits_are_the_calibrated_range_in_the_frame() -> None:
    calibration = arm({**dict.fromkeys(JOINTS, (1000, 3000)), "wrist_roll": (0, 4095)})
    travel = limits(Frame.LEROBOT, calibration)
    assert travel["shoulder_lift"] == pytest.approx((-1000 * 360 / 4095, 1000 * 360 / 4095))
    assert travel["gripper"] == (0.0, 100.0)
    assert limits(Frame.RAW, calibration)["elbow_flex"] == (1000.0, 3000.0)
    assert limits(Frame.LEROBOT_RANGE, calibration)["wrist_flex"] == (-100.0, 100.0)


# -- LeRobot's documented old->new conversion -----------------------------------------------

# docs/source/backwardcomp.mdx: shoulder_lift = -(old - 90); elbow_flex = old - 90; the rest as
# recorded. MolmoAct2 writes the same as new = sign * (old - offset).
MOLMOACT2_SIGNS = (1, -1, 1, 1, 1, 1)
MOLMOACT2_OFFSETS = (0, 90, 90, 0, 0, 0)


def documented(joint: str, old: float) -> float:
    if joint == "shoulder_lift":
        return -(old - 90)
    if joint == "elbow_flex":
        return old - 90
    return old


@pytest.mark.parametrize("old", [-180.0, -90.5, -10.0, 0.0, 33.3, 90.0, 119.9, 179.99])
def test_legacy_to_lerobot_is_lerobots_backward_compatibility_conversion(old: float) -> None:
    pose = dict.fromkeys(JOINTS, old)
    converted = convert(pose, Frame.LEROBOT_LEGACY, Frame.LEROBOT)
    assert converted == {joint: documented(joint, old) for joint in JOINTS}
    for joint, sign, offset in zip(JOINTS, MOLMOACT2_SIGNS, MOLMOACT2_OFFSETS, strict=True):
        assert converted[joint] == pytest.approx(sign * (old - offset))


# -- against real LeRobot ------------------------------------------------------------------

VALUES = [round(-190 + 0.73 * i, 2) for i in range(521)] + [-100.0, 0.0, 33.3, 100.0]


@pytest.mark.lerobot
def test_lerobot_frames_equal_real_lerobot_both_modes(tmp_path: Path) -> None:
    """Every tick of several real calibrations through LeRobot's ``_normalize`` equals the
    frames' raw -> lerobot/lerobot_range. LeRobot's ``_unnormalize`` equals lerobot -> raw except
    where LeRobot's float lands a hair off a whole tick: there the frames give that tick, the one
    whose normalization the value is (values include LeRobot's own normalizations of ticks)."""
    motors = {
        (m.drive_mode, m.range_min, m.range_max): m
        for calibration in CALIBRATIONS.values()
        for m in calibration.values()
    }
    normalized_ticks = [
        normalize(tick, motor, mode)
        for motor in motors.values()
        for mode in NormMode
        for tick in range(motor.range_min, motor.range_max + 1, 97)
    ]
    values = VALUES + normalized_ticks
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps({"calibrations": list(motors), "raw": list(range(4096)), "values": values})
    )
    results = LeRobotScript("calibration_normalize.py", str(request)).finish()
    checked = snapped = 0
    for result in results:
        mode = NormMode(result["mode"])
        motor = motors[tuple(result["calibration"])]  # type: ignore[index]
        for use_degrees, frame in ((True, Frame.LEROBOT), (False, Frame.LEROBOT_RANGE)):
            for joint, joint_mode in joint_norm_modes(use_degrees).items():
                if joint_mode is not mode:
                    continue
                calibration = {joint: motor}
                ours = [convert_joint(joint, t, Frame.RAW, frame, calibration) for t in range(4096)]
                assert ours == result["normalized"], (motor, frame, joint)
                for value, theirs in zip(values, result["unnormalized"], strict=True):
                    tick = convert_joint(joint, value, frame, Frame.RAW, calibration)
                    checked += 1
                    if tick != theirs:
                        snapped += 1
                        assert abs(tick - theirs) == 1, (motor, frame, joint, value)
                        back = convert_joint(joint, tick, Frame.RAW, frame, calibration)
                        assert close(back, value), (motor, frame, joint, value)
    assert checked > 100_000
    assert 0 < snapped < checked / 50
