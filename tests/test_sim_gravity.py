"""Gravity and load, through our driver: what a real follower does with its own weight."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from so101d.feetech import FeetechBus
from so101d.sim import IDEAL, Fidelity, VirtualArm
from tests.test_sim_servo import home

PAN, LIFT, ELBOW, WRIST, ROLL, GRIPPER = 1, 2, 3, 4, 5, 6
IDS = [PAN, LIFT, ELBOW, WRIST, ROLL, GRIPPER]
MA_PER_UNIT = 6.5  # Present_Current


def reading_at(follower: VirtualArm, joint: str, fraction: float) -> int:
    """The homed reading of a joint at a fraction of its travel."""
    calibration = follower.expected_calibration()[joint]
    low, high = calibration["range_min"], calibration["range_max"]
    return round(low + fraction * (high - low))


def hold_with_torque(follower: VirtualArm, bus: FeetechBus, goals: dict[int, int]) -> None:
    """Torque on where each joint is, then drive to the goals at full torque and settle."""
    for motor in IDS:
        bus.write("Goal_Position", motor, bus.read("Present_Position", motor))
        bus.write("Torque_Enable", motor, 1)
    for motor, goal in goals.items():
        bus.write("Goal_Position", motor, goal)
    follower.fast_forward(3.0)


@pytest.fixture
def homed(follower: VirtualArm, bus: FeetechBus) -> Iterator[tuple[VirtualArm, FeetechBus]]:
    home(follower, bus)
    yield follower, bus


def test_a_limp_follower_rests_on_a_stop_or_where_its_gearbox_holds(follower: VirtualArm) -> None:
    truth = {joint["joint"]: joint for joint in follower.ground_truth()}
    for joint in truth.values():
        assert not joint["torque"]
    lift = truth["shoulder_lift"]
    assert lift["fraction"] in (0.0, 1.0) or abs(lift["gravity_pct"]) <= 4.0 + 0.5
    angles = follower.joint_angles()
    follower.fast_forward(5.0)
    assert follower.joint_angles() == angles  # at rest: nothing left to fall


def test_a_follower_whose_torque_goes_off_sinks(homed: tuple[VirtualArm, FeetechBus]) -> None:
    follower, bus = homed
    goals = {
        LIFT: reading_at(follower, "shoulder_lift", 0.7),
        ELBOW: reading_at(follower, "elbow_flex", 0.25),
    }
    hold_with_torque(follower, bus, goals)
    held = follower.joint_fractions()
    assert abs(held["shoulder_lift"] - 0.7) < 0.02  # held, give or take the loop's droop
    follower.fast_forward(2.0)
    assert follower.joint_fractions() == pytest.approx(held, abs=1e-6)  # holding: no sinking
    loads = bus.sync_read("Present_Load", IDS)
    truth = {joint["joint"]: joint for joint in follower.ground_truth()}
    assert loads[LIFT] == pytest.approx(-truth["shoulder_lift"]["gravity_pct"] * 10, abs=5)
    assert abs(loads[LIFT]) > 150  # the shoulder carries the arm
    assert abs(loads[WRIST]) < abs(loads[ELBOW]) < abs(loads[LIFT])
    assert loads[PAN] == loads[ROLL] == loads[GRIPPER] == 0

    bus.sync_write("Torque_Enable", dict.fromkeys(IDS, 0))
    assert bus.sync_read("Torque_Enable", IDS) == dict.fromkeys(IDS, 0)  # served: now let go
    follower.fast_forward(3.0)
    fallen = follower.joint_fractions()
    assert fallen["shoulder_lift"] == 1.0  # down on its stop
    assert fallen["shoulder_pan"] == held["shoulder_pan"]  # no weight on the pan
    assert bus.sync_read("Present_Load", IDS) == dict.fromkeys(IDS, 0)
    assert bus.sync_read("Present_Current", IDS) == dict.fromkeys(IDS, 0)


def test_a_shoulder_at_20_percent_torque_cannot_lift_the_arm(
    homed: tuple[VirtualArm, FeetechBus],
) -> None:
    follower, bus = homed
    stretched = {  # the arm reaching out horizontally: the heaviest pose for the shoulder
        LIFT: reading_at(follower, "shoulder_lift", 0.75),
        ELBOW: reading_at(follower, "elbow_flex", 0.0),
    }
    hold_with_torque(follower, bus, stretched)
    assert abs(follower.joint_fractions()["shoulder_lift"] - 0.75) < 0.02
    bus.write("Torque_Limit", LIFT, 200)
    follower.fast_forward(3.0)
    assert follower.joint_fractions()["shoulder_lift"] == 1.0  # it sank onto its stop
    bus.write("Goal_Position", LIFT, reading_at(follower, "shoulder_lift", 0.5))
    follower.fast_forward(3.0)
    assert follower.joint_fractions()["shoulder_lift"] == 1.0  # and cannot lift itself
    load = bus.read("Present_Load", LIFT)
    assert load == -200  # everything it has, upwards
    current = bus.read("Present_Current", LIFT) * MA_PER_UNIT / 1000
    assert current == pytest.approx(0.03 + 0.2 * 2.7, abs=0.01)  # the current follows the load

    bus.write("Torque_Limit", LIFT, 1000)
    follower.fast_forward(3.0)
    assert abs(follower.joint_fractions()["shoulder_lift"] - 0.5) < 0.02  # full torque lifts it


def test_the_load_rises_at_an_obstacle_and_on_a_grasp(homed: tuple[VirtualArm, FeetechBus]) -> None:
    follower, bus = homed
    bus.write("Overload_Torque", GRIPPER, 100)  # no overload trip while we look
    open_jaws = reading_at(follower, "gripper", 0.9)
    hold_with_torque(follower, bus, {GRIPPER: open_jaws})
    free = bus.read("Present_Load", GRIPPER)
    follower.place_obstacle("gripper", reading_at(follower, "gripper", 0.5))  # an object
    bus.write("Goal_Position", GRIPPER, reading_at(follower, "gripper", 0.1))  # close
    follower.fast_forward(2.0)
    assert follower.joint_fractions()["gripper"] == pytest.approx(0.5, abs=0.001)  # stopped early
    grasp = bus.read("Present_Load", GRIPPER)
    assert abs(grasp) >= 900 > abs(free) + 800
    assert bus.read("Present_Current", GRIPPER) * MA_PER_UNIT / 1000 >= 2.4
    follower.place_obstacle("gripper", None)
    follower.fast_forward(2.0)
    assert follower.joint_fractions()["gripper"] == pytest.approx(0.1, abs=0.002)


def test_the_integral_term_takes_out_the_droop(homed: tuple[VirtualArm, FeetechBus]) -> None:
    follower, bus = homed
    goal = reading_at(follower, "shoulder_lift", 0.6)
    hold_with_torque(follower, bus, {LIFT: goal})
    droop = bus.read("Present_Position", LIFT) - goal
    assert droop >= 10  # P alone: gravity pulls it off its goal
    bus.write("Lock", LIFT, 0)
    bus.write("I_Coefficient", LIFT, 8)
    follower.fast_forward(5.0)
    assert abs(bus.read("Present_Position", LIFT) - goal) <= 1


@pytest.mark.parametrize(("fidelity", "rests_at"), [(None, 1.0), (IDEAL, 0.75)])
def test_only_an_idealised_arm_stays_where_a_hand_leaves_it(
    tmp_path: Path, fidelity: Fidelity | None, rests_at: float
) -> None:
    with VirtualArm("follower", tmp_path / "arm", fidelity=fidelity) as follower:
        follower.hold({"shoulder_lift": 0.75, "elbow_flex": 0.0})
        assert follower.wait_idle()
        follower.set_motion(None)  # let go
        follower.fast_forward(3.0)
        assert follower.joint_fractions()["shoulder_lift"] == rests_at
