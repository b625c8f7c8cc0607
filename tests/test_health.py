"""The follower's health checks with a fake clock: grasps, blocked joints, missing motors."""

from __future__ import annotations

from pathlib import Path

import pytest

from so101d.arm import Telemetry
from so101d.config import parse_config
from so101d.faults import PairFault, SafetyFault
from so101d.feetech import ServoFault
from so101d.health import FollowerHealth, Safety
from so101d.motion import ArmGuard, MotionGate, MotionLimits
from tests.fake_bus import FakeClock, fake_arm

CONFIG = parse_config(
    '[pair.main]\nleader.port = "/dev/l"\nleader.id = "l"\n'
    'follower.port = "/dev/f"\nfollower.id = "f"\n',
    Path("/etc/so101d/config.toml"),
).pairs["main"]


def reading(
    joint: str, load: float = 10.0, faults: ServoFault = ServoFault.VOLTAGE & 0
) -> Telemetry:
    return Telemetry(joint, 2000, load, 12.0, 30, faults)


def test_a_firm_grasp_is_not_an_overload() -> None:
    arm, _ = fake_arm()
    clock = FakeClock()
    safety = Safety(arm, CONFIG, clock)
    for _ in range(100):  # ten seconds squeezing an object
        safety.check(reading("gripper", load=95.0, faults=ServoFault.OVERLOAD))
        clock.advance(0.1)


def test_a_body_joint_held_at_load_is_an_overload() -> None:
    arm, _ = fake_arm()
    clock = FakeClock()
    safety = Safety(arm, CONFIG, clock)
    safety.check(reading("elbow_flex", load=95.0))
    clock.advance(CONFIG.overload_time_s)
    with pytest.raises(SafetyFault, match=r"elbow_flex .* overloaded"):
        safety.check(reading("elbow_flex", load=95.0))


def health() -> tuple[FollowerHealth, FakeClock, object]:
    arm, bus = fake_arm()
    clock = FakeClock()
    guard = ArmGuard(arm, MotionGate(), MotionLimits(2, 180, 0.02), clock)
    guard.torque_on_holding()
    return FollowerHealth(guard, CONFIG, clock), clock, bus


def test_a_silent_motor_ends_the_session_naming_it_within_ten_cycles() -> None:
    checks, clock, bus = health()
    bus.servos[3].answers = False  # type: ignore[attr-defined]
    with pytest.raises(PairFault, match=r"elbow_flex \(motor 3\) stopped answering") as raised:
        for _ in range(10):
            checks.sample()
            clock.advance(0.01)
    assert "4 times in a row" in str(raised.value)


def test_one_late_reply_is_not_a_missing_motor() -> None:
    checks, clock, bus = health()
    for cycle in range(60):
        bus.servos[3].answers = cycle != 2  # type: ignore[attr-defined]
        checks.sample()
        clock.advance(0.01)


def test_a_joint_far_from_its_goal_for_half_a_second_is_blocked() -> None:
    checks, clock, bus = health()
    bus.servos[2].registers["Present_Position"] += 500  # type: ignore[attr-defined]  # 44° off
    with pytest.raises(SafetyFault, match="shoulder_lift stays 44° from its goal"):
        for _ in range(200):
            checks.sample()
            clock.advance(0.01)
