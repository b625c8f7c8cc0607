"""The stall detector and the guard's torque-limit methods, exact, with fake samples, the
fake bus and a fake clock."""

from __future__ import annotations

import pytest

from so101d.calibrate.stall import Baseline, StallDetector, StallRule
from so101d.motion import ArmGuard, MotionGate, MotionLimits, MotionRefused
from tests.fake_bus import FakeClock, fake_arm

RULE = StallRule()
LIMIT = 300
QUIET = Baseline(load=20.0, current_ma=40.0)


def feed(detector: StallDetector, samples: list[tuple[float, float, int, float]]) -> list[bool]:
    return [detector.update(*sample) for sample in samples]


def test_a_joint_pushed_against_a_stop_is_a_stall_after_three_samples() -> None:
    detector = StallDetector(1, QUIET, LIMIT, RULE)
    moving = [(1000.0 + 20 * i, 1010.0 + 20 * i, 60, 90.0) for i in range(5)]
    pressed = [(1080.0, 1110.0 + 20 * i, 280, 800.0) for i in range(4)]
    assert feed(detector, moving + pressed) == [False] * 5 + [False, False, True, True]


def test_no_stall_while_the_joint_advances_or_the_goal_is_not_ahead() -> None:
    detector = StallDetector(1, QUIET, LIMIT, RULE)
    lagging = [(1000.0 + 20 * i, 1060.0 + 20 * i, 280, 800.0) for i in range(6)]
    arrived = [(1200.0, 1210.0, 280, 800.0) for _ in range(6)]
    assert not any(feed(detector, lagging + arrived))


def test_no_stall_without_effort_above_the_baseline() -> None:
    """A joint that stops with its goal ahead but pushes no harder than it did holding still
    (a dropped sample, a slow bus) has not stalled."""
    holding = Baseline(load=250.0, current_ma=700.0)  # a gravity joint holding the arm
    detector = StallDetector(-1, holding, LIMIT, RULE)
    still = [(2000.0, 1900.0 - 20 * i, -250, 700.0) for i in range(6)]
    assert not any(feed(detector, still))
    saturated = [(2000.0, 1800.0, -290, 700.0) for _ in range(3)]
    assert feed(detector, saturated)[-1]  # capped at 90 % of the limit: still reachable


def test_a_sample_that_advances_resets_the_count() -> None:
    detector = StallDetector(-1, QUIET, LIMIT, RULE)
    samples = [(500.0, 400.0, -280, 800.0)] * 3 + [(490.0, 380.0, -280, 800.0)]
    samples += [(490.0, 360.0, -280, 800.0)] * 2
    assert feed(detector, samples) == [False, False, True, False, False, False]


def guard() -> tuple[ArmGuard, MotionGate, list[tuple[str, int, int]]]:
    arm, bus = fake_arm()
    for servo in bus.servos.values():
        servo.registers["Torque_Limit"] = 1000
    gate = MotionGate()
    return ArmGuard(arm, gate, MotionLimits(2.0, 180.0, 0.05), FakeClock()), gate, bus.writes


def test_a_torque_limit_is_lowered_raised_and_restored() -> None:
    arm_guard, _, writes = guard()
    arm_guard.limit_torque("shoulder_lift", 300)
    arm_guard.limit_torque("shoulder_lift", 450)
    arm_guard.restore_torque_limits()
    assert writes == [
        ("Torque_Limit", 2, 300),
        ("Torque_Limit", 2, 450),
        ("Torque_Limit", 2, 1000),
    ]
    arm_guard.restore_torque_limits()  # nothing left to restore
    assert len(writes) == 3


def test_an_emergency_stop_refuses_a_stronger_limit_but_never_a_weaker_one() -> None:
    arm_guard, gate, writes = guard()
    arm_guard.limit_torque("gripper", 200)
    gate.emergency_stop("emergency stop")
    arm_guard.limit_torque("gripper", 100)
    with pytest.raises(MotionRefused):
        arm_guard.limit_torque("gripper", 400)
    assert writes == [("Torque_Limit", 6, 200), ("Torque_Limit", 6, 100)]


def test_calibration_motion_goes_through_a_pause_but_not_an_emergency_stop() -> None:
    arm_guard, gate, _ = guard()
    gate.pause("calibration session 1")
    with pytest.raises(MotionRefused):
        arm_guard.torque_on_holding()
    arm_guard.torque_on_holding(calibrating=True)
    arm_guard.command({"shoulder_pan": 1500}, stop_move=True)
    gate.emergency_stop("emergency stop")
    with pytest.raises(MotionRefused):
        arm_guard.command({"shoulder_pan": 1600}, stop_move=True)
    arm_guard.release()
    with pytest.raises(MotionRefused):
        arm_guard.torque_on_holding(calibrating=True)
