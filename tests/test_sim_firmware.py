"""Servo firmware behaviour beyond storing registers, through our driver and the raw wire."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from so101d.feetech import FeetechBus
from so101d.sim import Fault, Fidelity, UsbLatency, VirtualArm
from so101d.sim.servo import EEPROM_BUSY
from tests.arms import bus_on
from tests.test_sim_gravity import reading_at
from tests.test_sim_servo import home, park
from tests.test_sim_wire import RawPort, read, write

PAN, ROLL = 1, 5
IDS = [1, 2, 3, 4, 5, 6]


def test_a_goal_written_to_a_limp_servo_switches_its_torque_on(
    follower: VirtualArm, bus: FeetechBus
) -> None:
    assert bus.read("Torque_Enable", PAN) == 0
    goal = bus.read("Present_Position", PAN) + 300
    bus.write("Goal_Position", PAN, goal)
    assert bus.read("Torque_Enable", PAN) == 1
    follower.fast_forward(2.0)
    assert bus.read("Present_Position", PAN) == goal  # and it went there


def test_the_goal_switch_can_be_turned_off(tmp_path: Path) -> None:
    quiet = Fidelity(goal_enables_torque=False)
    with (
        VirtualArm("follower", tmp_path / "f", fidelity=quiet) as follower,
        bus_on(follower.link) as bus,
    ):
        before = bus.read("Present_Position", PAN)
        bus.write("Goal_Position", PAN, before + 300)
        follower.fast_forward(2.0)
        assert bus.read("Torque_Enable", PAN) == 0
        assert bus.read("Present_Position", PAN) == before


def test_torque_enable_128_sets_the_present_position_to_2048(
    follower: VirtualArm, bus: FeetechBus
) -> None:
    bus.write("Torque_Enable", ROLL, 128)
    assert bus.read("Present_Position", ROLL) == 2048
    assert bus.read("Torque_Enable", ROLL) == 0
    offset = bus.read("Homing_Offset", ROLL)
    follower.power_cycle()
    assert bus.read("Homing_Offset", ROLL) == offset  # kept in EEPROM
    assert bus.read("Present_Position", ROLL) == 2048


def test_wheel_mode_spins_instead_of_going_to_the_goal(
    follower: VirtualArm, bus: FeetechBus
) -> None:
    park(follower, "shoulder_pan", 0.5)
    bus.write("Lock", PAN, 0)
    bus.write("Overload_Torque", PAN, 100)  # no overload trip while we look
    bus.write("Operating_Mode", PAN, 1)
    bus.write("Goal_Velocity", PAN, 400)
    present = bus.read("Present_Position", PAN)
    bus.write("Goal_Position", PAN, present)  # "stay here": a wheel does not know positions
    follower.fast_forward(0.5)
    assert bus.read("Present_Position", PAN) > present + 150
    assert bus.read("Present_Velocity", PAN) == 400
    follower.fast_forward(5.0)
    assert follower.joint_fractions()["shoulder_pan"] == 1.0  # until the stop holds it
    assert bus.read("Present_Load", PAN) > 500


def test_the_phase_multi_turn_bit_counts_on_across_the_seam(
    follower: VirtualArm, bus: FeetechBus
) -> None:
    follower.set_mount("wrist_roll", 4000)  # the seam ~100 ticks above the middle
    follower.set_joint("wrist_roll", 3950)
    assert bus.read("Present_Position", ROLL) == 3950
    bus.write("Lock", ROLL, 0)
    bus.write("Phase", ROLL, bus.read("Phase", ROLL) | 0x10)
    follower.move_joint("wrist_roll", 150, speed=1000)
    assert follower.wait_idle()
    assert bus.read("Present_Position", ROLL) == 4096 + 150  # multi-turn: no wrap
    bus.write("Phase", ROLL, bus.read("Phase", ROLL) & ~0x10)
    assert bus.read("Present_Position", ROLL) == 150  # single-turn, as LeRobot sets it


def test_max_torque_limit_and_protection_current_cap_the_torque(
    follower: VirtualArm, bus: FeetechBus
) -> None:
    home(follower, bus)
    bus.write("Overload_Torque", PAN, 100)
    lower = reading_at(follower, "shoulder_pan", 0.0)
    bus.write("Goal_Position", PAN, lower - 300)  # into the stop: all the torque it may use
    follower.fast_forward(1.0)
    assert bus.read("Present_Load", PAN) == -1000
    bus.write("Max_Torque_Limit", PAN, 500)  # what LeRobot's configure() writes on the gripper
    follower.fast_forward(0.5)
    assert bus.read("Present_Load", PAN) == -500
    bus.write("Protection_Current", PAN, 125)  # 0.81 A of a 2.7 A stall current: 30 %
    follower.fast_forward(0.5)
    assert -310 <= bus.read("Present_Load", PAN) <= -295  # the supply sags a little
    assert bus.read("Present_Current", PAN) <= 125


def test_a_saved_eeprom_write_keeps_the_servo_busy(tmp_path: Path) -> None:
    exact = Fidelity(usb=UsbLatency.none())  # the wire's own timing, to see a few ms
    with VirtualArm("follower", tmp_path / "f", fidelity=exact) as follower:
        port = RawPort(follower.link)
        try:
            port.transact(write(PAN, "Lock", 0))
            began = time.monotonic()
            assert port.transact(write(PAN, "P_Coefficient", 16))  # saved: busy
            port.send(read(PAN, "Present_Position"))
            assert port.replies(1)
            assert time.monotonic() - began >= EEPROM_BUSY
        finally:
            port.close()


def test_a_brownout_below_min_voltage_resets_ram(follower: VirtualArm, bus: FeetechBus) -> None:
    bus.write("Goal_Position", PAN, bus.read("Present_Position", PAN))
    bus.write("Torque_Enable", PAN, 1)
    bus.write("Acceleration", PAN, 50)
    follower.inject(Fault.BROWNOUT, value=4.3)  # above the logic's 3.5 V, below 4.5 V
    assert follower.servo(PAN).get("Torque_Enable") == 0
    assert follower.servo(PAN).get("Acceleration") == 0
    follower.clear()
    assert bus.read("Torque_Enable", PAN) == 0  # stays off once the supply is back


@pytest.mark.parametrize("arm_seed", [3, 11])
def test_an_arm_seed_builds_the_same_different_arm_twice(tmp_path: Path, arm_seed: int) -> None:
    arms = [VirtualArm("follower", tmp_path / f"{arm_seed}-{n}", arm_seed=arm_seed) for n in (1, 2)]
    other = VirtualArm("follower", tmp_path / "other", arm_seed=arm_seed + 1)
    truths = [[(j["travel"], j["mount"]) for j in arm.ground_truth()] for arm in arms]
    assert truths[0] == truths[1]
    assert arms[0].expected_calibration() == arms[1].expected_calibration()
    assert arms[0].joint_angles() == arms[1].joint_angles()
    assert arms[0].expected_calibration() != other.expected_calibration()
    travels = {j["joint"]: j["travel"] for j in arms[0].ground_truth()}
    assert 2196 <= travels["shoulder_lift"] <= 2504 and travels["wrist_roll"] < 4096


def test_arm_seeds_put_encoder_seams_inside_the_travel(tmp_path: Path) -> None:
    crossing: set[str] = set()
    for arm_seed in range(12):
        arm = VirtualArm("follower", tmp_path / f"s{arm_seed}", arm_seed=arm_seed)
        for joint in arm.ground_truth():
            low, high = joint["encoder_stops"]  # type: ignore[misc]
            if low > high:  # the raw reading wraps 4095 -> 0 between the stops
                crossing.add(str(joint["joint"]))
        calibration = arm.expected_calibration()["wrist_roll"]
        assert -2047 <= calibration["homing_offset"] <= 2047
    assert {"shoulder_lift", "wrist_roll"} <= crossing


def test_a_wrist_roll_homed_off_its_middle_has_the_seam_inside_its_travel(
    tmp_path: Path,
) -> None:
    arm = VirtualArm("leader", tmp_path / "l", arm_seed=5)
    with arm, bus_on(arm.link) as bus:
        bus.write("Lock", ROLL, 0)
        bus.write("Homing_Offset", ROLL, arm.expected_calibration()["wrist_roll"]["homing_offset"])
        stops = next(j["stops"] for j in arm.ground_truth() if j["joint"] == "wrist_roll")
        low, high = stops  # type: ignore[misc]
        assert low > high  # homed readings run ..., 4095, 0, ... between the stops
