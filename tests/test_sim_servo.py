"""The servo model through our driver: registers, homing, EEPROM and Lock, goal tracking."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from so101d.feetech import FeetechBus, ServoError, ServoFault
from so101d.sim import JOINTS, VirtualArm
from tests.test_sim_wire import bus_on
from tests.waiting import wait_for

IDS = [1, 2, 3, 4, 5, 6]
PAN = 1


def home(follower: VirtualArm, bus: FeetechBus) -> None:
    """Write the homing offsets a proper calibration finds, so the middle reads 2047."""
    for calibration in follower.expected_calibration().values():
        bus.write("Lock", calibration["id"], 0)
        bus.write("Homing_Offset", calibration["id"], calibration["homing_offset"])


def park(follower: VirtualArm, joint: str, fraction: float) -> None:
    """Move a limp joint by hand to a fraction of its travel and let go there."""
    follower.hold({joint: fraction})
    assert follower.wait_idle()
    follower.set_motion(None)


def settle(
    follower: VirtualArm, bus: FeetechBus, motor: int, goal: int, seconds: float = 1.5
) -> int:
    """Torque on at the present position, command ``goal``, let time pass; return the position."""
    bus.write("Goal_Position", motor, bus.read("Present_Position", motor))
    bus.write("Torque_Enable", motor, 1)
    bus.write("Goal_Position", motor, goal)
    follower.fast_forward(seconds)
    return bus.read("Present_Position", motor)


def test_power_on_defaults(follower: VirtualArm, bus: FeetechBus) -> None:
    expected = {
        "Return_Delay_Time": 250,
        "Response_Status_Level": 1,
        "Min_Position_Limit": 0,
        "Max_Position_Limit": 4095,
        "Max_Temperature_Limit": 70,
        "Max_Voltage_Limit": 140,
        "Min_Voltage_Limit": 45,
        "Max_Torque_Limit": 1000,
        "Torque_Limit": 1000,
        "P_Coefficient": 32,
        "Operating_Mode": 0,
        "Torque_Enable": 0,
        "Acceleration": 0,
        "Lock": 1,
        "Homing_Offset": 0,
    }
    for motor in IDS:
        assert {name: bus.read(name, motor) for name in expected} == expected
        assert bus.read("Phase", motor) & 0x10 == 0
        assert bus.read("Goal_Position", motor) == bus.read("Present_Position", motor)
        assert 118 <= bus.read("Present_Voltage", motor) <= 120
        assert 25 <= bus.read("Present_Temperature", motor) <= 30


def test_leader_servos_run_at_5_volts(leader: VirtualArm) -> None:
    with bus_on(leader.link) as bus:
        assert bus.sync_read("Present_Voltage", IDS) == dict.fromkeys(IDS, 50)
        assert bus.read("Max_Voltage_Limit", 1) == 80 and bus.read("Min_Voltage_Limit", 1) == 40


def test_raw_middle_readings_differ_per_joint_and_per_seed(tmp_path: Path) -> None:
    readings = []
    for seed in (0, 1):
        with VirtualArm("follower", tmp_path / f"f{seed}", seed=seed) as follower:
            follower.hold(dict.fromkeys(JOINTS, 0.5))
            assert follower.wait_idle()
            with bus_on(follower.link) as bus:
                readings.append(bus.sync_read("Present_Position", IDS))
    assert readings[0] != readings[1]
    assert all(600 <= p <= 3500 for r in readings for p in r.values())
    assert len(set(readings[0].values())) > 1


@pytest.mark.parametrize("offset", [-710, 1500, -2047])
def test_homing_offset_shifts_the_reading_modulo_a_turn(bus: FeetechBus, offset: int) -> None:
    before = bus.read("Present_Position", PAN)
    bus.write("Homing_Offset", PAN, offset)
    assert bus.read("Present_Position", PAN) == (before - offset) % 4096


def test_homing_puts_the_middle_at_2047(follower: VirtualArm, bus: FeetechBus) -> None:
    home(follower, bus)
    follower.hold(dict.fromkeys(JOINTS, 0.5))
    assert follower.wait_idle()
    assert bus.sync_read("Present_Position", IDS) == dict.fromkeys(IDS, 2047)


def test_position_limits_clamp_the_goal(follower: VirtualArm, bus: FeetechBus) -> None:
    home(follower, bus)
    present = bus.read("Present_Position", PAN)
    bus.write("Min_Position_Limit", PAN, present - 200)
    bus.write("Max_Position_Limit", PAN, present + 200)
    assert settle(follower, bus, PAN, present + 800) == present + 200
    assert settle(follower, bus, PAN, present - 800) == present - 200


def test_torque_on_drives_to_a_stale_goal(follower: VirtualArm, bus: FeetechBus) -> None:
    stale = bus.read("Goal_Position", PAN)  # the power-on position
    park(follower, "shoulder_pan", 0.9)  # someone moves the limp follower and lets go
    moved = bus.read("Present_Position", PAN)
    assert abs(moved - stale) > 500
    bus.write("Torque_Enable", PAN, 1)
    wait_for(lambda: abs(bus.read("Present_Position", PAN) - stale) <= 1)  # the lunge


def test_torque_on_after_goal_equals_present_does_not_move(
    follower: VirtualArm, bus: FeetechBus
) -> None:
    park(follower, "shoulder_pan", 0.9)
    present = bus.read("Present_Position", PAN)
    bus.write("Goal_Position", PAN, present)
    bus.write("Torque_Enable", PAN, 1)
    follower.fast_forward(2.0)
    assert bus.read("Present_Position", PAN) == present
    assert bus.read("Moving", PAN) == 0


def test_goal_tracking_takes_human_visible_time(follower: VirtualArm, bus: FeetechBus) -> None:
    home(follower, bus)
    park(follower, "shoulder_pan", 0.2)  # no gravity on the pan: exact arithmetic
    start = bus.read("Present_Position", PAN)
    bus.write("Goal_Position", PAN, start)
    bus.write("Torque_Enable", PAN, 1)
    began = time.monotonic()
    bus.write("Goal_Position", PAN, start + 1000)
    seen = [start]

    def arrived() -> bool:
        seen.append(bus.read("Present_Position", PAN))
        return seen[-1] == start + 1000

    wait_for(arrived)
    # No faster than the top speed at 12 V (less one tick: readings are rounded).
    assert time.monotonic() - began >= (1000 - 1) / 3000
    assert seen == sorted(seen)  # a smooth approach, no overshoot


def test_goal_velocity_slows_the_move(follower: VirtualArm, bus: FeetechBus) -> None:
    home(follower, bus)
    park(follower, "shoulder_pan", 0.4)
    start = bus.read("Present_Position", PAN)
    bus.write("Goal_Velocity", PAN, 200)
    bus.write("Goal_Position", PAN, start)
    bus.write("Torque_Enable", PAN, 1)
    began = time.monotonic()
    bus.write("Goal_Position", PAN, start + 300)
    speeds: list[int] = []

    def arrived() -> bool:
        speeds.append(bus.read("Present_Velocity", PAN))
        return bus.read("Present_Position", PAN) == start + 300

    wait_for(arrived)
    assert time.monotonic() - began >= (300 - 1) / 200  # less one tick: readings are rounded
    assert min(speeds) >= 0 and max(speeds) <= 200


def test_end_stop_stops_the_joint_and_the_load_rises(follower: VirtualArm, bus: FeetechBus) -> None:
    home(follower, bus)
    bus.write("Overload_Torque", PAN, 100)  # no overload trip while we look
    lower_stop = follower.expected_calibration()["shoulder_pan"]["range_min"]
    assert settle(follower, bus, PAN, lower_stop - 400) == lower_stop
    assert follower.joint_fractions()["shoulder_pan"] == 0.0
    assert bus.read("Present_Load", PAN) <= -800  # pushing towards lower positions
    assert bus.read("Present_Current", PAN) >= 200  # 6.5 mA units: over 1.3 A
    assert bus.read("Moving", PAN) == 0
    bus.write("Overload_Torque", PAN, 80)
    follower.fast_forward(2.0)  # Protection_Time: 200 x 10 ms above Overload_Torque
    with pytest.raises(ServoError) as caught:
        bus.read("Present_Load", PAN)
    assert caught.value.faults == {PAN: ServoFault.OVERLOAD}
    assert caught.value.values == {PAN: -200}  # still pushing, at Protective_Torque: 20 %


def test_free_motion_load_is_small_and_rest_load_is_zero(
    follower: VirtualArm, bus: FeetechBus
) -> None:
    home(follower, bus)
    park(follower, "shoulder_pan", 0.2)  # gravity loads a resting wrist_flex
    start = bus.read("Present_Position", PAN)
    bus.write("Goal_Velocity", PAN, 100)  # ~9 s for the move: plenty of time to look
    bus.write("Goal_Position", PAN, start)
    bus.write("Torque_Enable", PAN, 1)
    bus.write("Goal_Position", PAN, start + 900)
    wait_for(lambda: bus.read("Moving", PAN))
    assert 0 < bus.read("Present_Load", PAN) <= 150
    follower.fast_forward(15.0)
    assert bus.read("Present_Position", PAN) == start + 900
    assert bus.read("Present_Load", PAN) == 0


@pytest.mark.parametrize("lock", [0, 1])
def test_eeprom_survives_a_power_cycle_only_when_unlocked(
    follower: VirtualArm, bus: FeetechBus, lock: int
) -> None:
    bus.write("Lock", 2, lock)
    bus.write("Max_Torque_Limit", 2, 600)
    bus.write("Acceleration", 2, 254)
    assert bus.read("Max_Torque_Limit", 2) == 600  # the live table changes either way
    follower.power_cycle()
    assert bus.read("Max_Torque_Limit", 2) == (600 if lock == 0 else 1000)
    assert bus.read("Acceleration", 2) == 0  # RAM is back to its defaults
    assert bus.read("Lock", 2) == 1


def test_locked_eeprom_writes_can_be_dropped(tmp_path: Path) -> None:
    link = tmp_path / "strict"
    follower = VirtualArm("follower", link, drop_locked_eeprom_writes=True)
    with follower, bus_on(follower.link) as bus:
        bus.write("Max_Torque_Limit", 2, 600)  # still acknowledged
        assert bus.read("Max_Torque_Limit", 2) == 1000
        bus.write("Lock", 2, 0)
        bus.write("Max_Torque_Limit", 2, 600)
        assert bus.read("Max_Torque_Limit", 2) == 600


def test_direct_register_access_bypasses_the_wire(follower: VirtualArm, bus: FeetechBus) -> None:
    servo = follower.servo(4)
    servo.set("Firmware_Minor_Version", 9)  # read-only on the wire, but not for the factory
    assert bus.read("Firmware_Minor_Version", 4) == 9
    servo.set("Homing_Offset", -300)
    assert bus.read("Homing_Offset", 4) == -300
    follower.power_cycle()
    assert servo.get("Firmware_Minor_Version") == 9
    with pytest.raises(ValueError, match="measured"):
        servo.set("Present_Position", 100)
    with pytest.raises(KeyError):
        servo.get("No_Such_Register")
    with pytest.raises(ValueError):
        follower.servo(7)
