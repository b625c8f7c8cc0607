"""Leader tracking and mapping with a fake clock: seams, impossible jumps, sensor faults."""

from __future__ import annotations

import itertools
import random

import pytest

from so101d.calibration.model import JOINTS, MotorCalibration
from so101d.calibration.normalize import joint_norm_modes, normalize, unnormalize
from so101d.feetech import ServoFault
from so101d.motion import (
    ArmGuard,
    LeaderMapping,
    LeaderTracker,
    MotionGate,
    MotionLimits,
    degrees_to_ticks,
    seam_delta,
)
from tests.fake_bus import FakeClock, calibration, fake_arm

RATE_HZ = 100
WRIST = "wrist_roll"
FULL_TURN = {j: MotorCalibration(i, 0, 0, 0, 4095) for i, j in enumerate(JOINTS, start=1)}


def feed(tracker: LeaderTracker, clock: FakeClock, readings: list[int], joint: str = WRIST):
    positions = []
    for raw in readings:
        clock.advance(1 / RATE_HZ)
        positions.append(tracker.update({joint: raw}, {})[joint])
    return positions


def test_seam_delta_takes_the_short_way() -> None:
    assert seam_delta(0, 4095) == 1
    assert seam_delta(4095, 0) == -1
    assert seam_delta(2047, 0) == 2047
    assert seam_delta(100, 200) == -100


@pytest.mark.parametrize(
    ("readings", "expected"),
    [
        ([4090, 4094, 4095, 0, 1, 6], [4090, 4094, 4095, 4096, 4097, 4102]),
        ([5, 1, 0, 4095, 4090], [5, 1, 0, -1, -6]),
    ],
)
def test_crossing_the_encoder_seam_continues_past_the_end(
    readings: list[int], expected: list[int]
) -> None:
    clock = FakeClock()
    tracker = LeaderTracker(clock)
    assert feed(tracker, clock, readings) == expected
    assert tracker.glitches == 0


@pytest.mark.parametrize(
    "readings", [[4060, 4070, 4080, 4090, 4095, 5, 20], [40, 30, 20, 10, 0, 4090, 4075]]
)
def test_a_wrist_across_the_seam_saturates_the_follower_never_the_long_way(
    readings: list[int],
) -> None:
    clock = FakeClock()
    tracker = LeaderTracker(clock)
    mapping = LeaderMapping(FULL_TURN, FULL_TURN)
    arm, _ = fake_arm({j: readings[0] for j in JOINTS}, FULL_TURN)
    guard = ArmGuard(arm, MotionGate(), MotionLimits(2.0, 180.0, 2 / RATE_HZ), clock)
    guard.torque_on_holding()
    goals = []
    for raw in readings + [readings[-1]] * 50:
        clock.advance(1 / RATE_HZ)
        targets = mapping.targets(tracker.update({WRIST: raw}, {}))
        goals.append(guard.command(targets)[WRIST])
    upward = readings[0] > 2000
    end = round(guard.bounds[WRIST][1 if upward else 0])
    assert all(abs(b - a) <= degrees_to_ticks(1.8) + 1 for a, b in itertools.pairwise(goals))
    assert all((g >= readings[0]) if upward else (g <= readings[0]) for g in goals)  # one way
    assert goals[-1] == end  # saturated at the range end, and holding there


def test_an_impossible_jump_holds_and_counts_as_a_glitch() -> None:
    clock = FakeClock()
    tracker = LeaderTracker(clock)
    positions = feed(tracker, clock, [2000, 2002, 100, 2004, 2005], joint="elbow_flex")
    assert positions == [2000, 2002, 2002, 2004, 2005]
    assert tracker.glitches == 1
    assert tracker.last_glitch is not None and "elbow_flex read 100 after 2002" in (
        tracker.last_glitch.describe()
    )


def test_the_bound_is_a_hands_speed_over_the_time_since_the_last_good_reading() -> None:
    clock = FakeClock()
    tracker = LeaderTracker(clock)
    feed(tracker, clock, [2000], joint="elbow_flex")
    clock.advance(0.2)  # readings lost for 200 ms: a hand may have moved 144° meanwhile
    assert feed(tracker, clock, [2000 + 1500], joint="elbow_flex") == [3500]
    assert tracker.glitches == 0


def test_a_position_that_persists_is_taken_after_three_consistent_readings() -> None:
    clock = FakeClock()
    tracker = LeaderTracker(clock)
    positions = feed(tracker, clock, [1000, 3000, 3001, 3002, 3003], joint="elbow_flex")
    assert positions == [1000, 1000, 1000, 3002, 3003]
    assert tracker.glitches == 2


def test_an_angle_sensor_fault_or_an_impossible_value_holds() -> None:
    clock = FakeClock()
    tracker = LeaderTracker(clock)
    feed(tracker, clock, [1500], joint="elbow_flex")
    clock.advance(0.01)
    held = tracker.update({"elbow_flex": 1510}, {"elbow_flex": ServoFault.ANGLE_SENSOR})
    clock.advance(0.01)
    beyond = tracker.update({"elbow_flex": 5000}, {})
    assert held["elbow_flex"] == beyond["elbow_flex"] == 1500
    assert tracker.glitches == 2


def test_random_valid_readings_move_the_follower_no_faster_than_its_limit() -> None:
    rng = random.Random(3)
    clock = FakeClock()
    tracker = LeaderTracker(clock)
    cal = calibration()
    mapping = LeaderMapping(cal, cal)
    arm, _ = fake_arm(cal=cal)
    guard = ArmGuard(arm, MotionGate(), MotionLimits(2.0, 180.0, 2 / RATE_HZ), clock)
    start = guard.torque_on_holding()
    tracker.update(start, {})
    for _ in range(200):
        clock.advance(1 / RATE_HZ)
        before = guard.commanded
        goals = guard.command(
            mapping.targets(tracker.update({j: rng.randrange(4096) for j in JOINTS}, {}))
        )
        assert all(abs(goals[j] - before[j]) <= degrees_to_ticks(1.8) + 1 for j in JOINTS)
    assert tracker.glitches > 150 * len(JOINTS)  # nearly all were held as implausible


def _lerobots_target(leader: MotorCalibration, follower: MotorCalibration, joint: str, ticks: int):
    mode = joint_norm_modes(use_degrees=True)[joint]
    return float(unnormalize(normalize(ticks, leader, mode), follower, mode))


# shoulder_pan: ranges where the shortcut int(ticks - leader_mid + follower_mid), the same map
# without LeRobot's float steps, is one tick off (at 3447, for instance).
LEADER = {j: MotorCalibration(i, 0, 0, 142 + 37 * i, 927 + 400 * i) for i, j in enumerate(JOINTS)}
FOLLOWER = {
    j: MotorCalibration(i, 0, 0, 326 + 41 * i, 1471 + 300 * i) for i, j in enumerate(JOINTS)
}


def test_the_mapping_is_lerobots_arithmetic_at_every_position_computed_or_looked_up() -> None:
    mapping = LeaderMapping(LEADER, FOLLOWER)
    positions = range(-300, 4096 + 300)  # past both ends: the seam continued
    for _ in range(2):  # the first pass computes, the second looks up
        for ticks in positions:
            goals = mapping.targets(dict.fromkeys(JOINTS, ticks))
            for joint in JOINTS:
                assert goals[joint] == _lerobots_target(
                    LEADER[joint], FOLLOWER[joint], joint, ticks
                ), (joint, ticks)
