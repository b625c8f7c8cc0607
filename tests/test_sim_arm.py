"""The arm as a device and as a body: the pty and its link, unplug and replug, the hand."""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from pathlib import Path

import pytest
import serial

from so101d.sim import JOINTS, Fault, VirtualArm, VirtualPair
from tests.test_sim_servo import home
from tests.test_sim_wire import bus_on
from tests.waiting import wait_for

IDS = [1, 2, 3, 4, 5, 6]
HUMAN_TOP_SPEED = 4000  # ticks/s (~350 deg/s): faster than any hand moves a joint


def serving_threads(arm: VirtualArm) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.endswith(f" {arm.link}")]


# -- the device --------------------------------------------------------------------------


def test_link_is_a_symlink_to_a_raw_pty_anyone_can_open(tmp_path: Path) -> None:
    link = tmp_path / "deep" / "dir" / "so101_leader"
    with VirtualArm("leader", link) as arm:
        assert arm.link == str(link) and arm.plugged
        target = os.readlink(link)
        assert target.startswith("/dev/pts/")
        assert stat.S_IMODE(os.stat(target).st_mode) & 0o066 == 0o066
    assert not os.path.lexists(link)


def test_an_existing_symlink_is_replaced(tmp_path: Path) -> None:
    link = tmp_path / "so101_follower"
    link.symlink_to("/dev/null")
    with VirtualArm("follower", link), bus_on(str(link)) as bus:
        assert bus.ping(1) == 0


def test_a_regular_file_at_the_link_is_never_deleted(tmp_path: Path) -> None:
    link = tmp_path / "so101_follower"
    link.write_text("precious")
    arm = VirtualArm("follower", link)
    with pytest.raises(FileExistsError, match="not a symlink"):
        arm.start()
    assert link.read_text() == "precious"
    assert not arm.plugged


def test_start_and_stop_are_idempotent_and_stop_ends_the_thread(tmp_path: Path) -> None:
    arm = VirtualArm("follower", tmp_path / "f")
    arm.start()
    arm.start()
    assert len(serving_threads(arm)) == 1
    arm.stop()
    arm.stop()
    assert serving_threads(arm) == []
    assert not arm.plugged


def test_clients_can_come_and_go(follower: VirtualArm) -> None:
    for _ in range(3):
        with bus_on(follower.link) as bus:
            assert bus.ping(2) == 0


def test_unplug_breaks_an_open_port_like_a_real_usb_unplug(follower: VirtualArm) -> None:
    client = serial.Serial(follower.link, 1_000_000, timeout=0.2)
    try:
        follower.unplug()
        assert not os.path.lexists(follower.link)
        with pytest.raises(serial.SerialException):
            client.read(1)
        with pytest.raises(serial.SerialException):
            client.write(b"\xff\xff\x01\x02\x01\xfb")
    finally:
        client.close()
    with pytest.raises(serial.SerialException) as caught:
        serial.Serial(follower.link, 1_000_000)
    assert caught.value.errno == errno.ENOENT
    assert serving_threads(follower) == []


def test_replug_brings_the_same_link_back(follower: VirtualArm) -> None:
    first = os.readlink(follower.link)
    follower.unplug()
    follower.replug()
    assert follower.plugged and os.path.islink(follower.link)
    with bus_on(follower.link) as bus:
        assert bus.broadcast_ping() == dict.fromkeys(IDS, 0)
    assert first.startswith("/dev/pts/")


def test_follower_servos_keep_their_state_across_a_replug(follower: VirtualArm) -> None:
    with bus_on(follower.link) as bus:
        bus.write("Goal_Position", 1, bus.read("Present_Position", 1))
        bus.write("Torque_Enable", 1, 1)
    follower.unplug()
    follower.replug()
    with bus_on(follower.link) as bus:
        assert bus.read("Torque_Enable", 1) == 1


def test_leader_servos_restart_on_a_replug(leader: VirtualArm) -> None:
    with bus_on(leader.link) as bus:
        bus.write("Lock", 1, 0)
        bus.write("Return_Delay_Time", 1, 0)  # EEPROM, saved while unlocked
        bus.write("Acceleration", 1, 254)  # RAM
    leader.unplug()
    leader.replug()
    with bus_on(leader.link) as bus:
        assert bus.read("Lock", 1) == 1
        assert bus.read("Acceleration", 1) == 0
        assert bus.read("Return_Delay_Time", 1) == 0


def test_pair_runs_two_arms(tmp_path: Path) -> None:
    with VirtualPair(tmp_path / "l", tmp_path / "f", seed=3) as pair:
        with bus_on(pair.leader.link) as lead, bus_on(pair.follower.link) as follow:
            assert lead.read("Present_Voltage", 1) == 50
            assert follow.read("Present_Voltage", 1) == 120
        assert pair.leader.motion == "wave" and pair.follower.motion is None
        assert pair.arm("follower") is pair.follower
    assert not os.path.lexists(tmp_path / "l") and not os.path.lexists(tmp_path / "f")


# -- the hand ----------------------------------------------------------------------------


def test_wave_moves_the_leader_smoothly_within_its_travel(tmp_path: Path) -> None:
    with VirtualArm("leader", tmp_path / "l", motion="wave") as arm, bus_on(arm.link) as bus:
        home(arm, bus)
        calibration = arm.expected_calibration()
        previous_sent = time.monotonic()
        previous = first = bus.sync_read("Present_Position", IDS)
        for _ in range(40):
            time.sleep(0.025)
            sent = time.monotonic()
            positions = bus.sync_read("Present_Position", IDS)
            # Both samples were taken between the first send and this reply.
            most = HUMAN_TOP_SPEED * (time.monotonic() - previous_sent) + 2
            for name, motor in zip(JOINTS, IDS, strict=True):
                assert abs(positions[motor] - previous[motor]) <= most
                if name != "wrist_roll":
                    low, high = calibration[name]["range_min"], calibration[name]["range_max"]
                    assert low < positions[motor] < high
            previous, previous_sent = positions, sent
        assert positions != first  # it does move
        assert all(0.15 <= f <= 0.85 for f in arm.joint_fractions().values())


def test_hold_moves_at_human_speed_then_holds(leader: VirtualArm) -> None:
    distance = leader.joint_fractions()["shoulder_pan"] * 2725  # ticks to the lower stop
    began = time.monotonic()
    leader.hold({"gripper": 1.0, "shoulder_pan": 0.0})
    wait_for(lambda: leader.joint_fractions()["shoulder_pan"] == 0.0)
    assert time.monotonic() - began >= distance / HUMAN_TOP_SPEED
    leader.fast_forward(3.0)
    fractions = leader.joint_fractions()
    assert fractions["gripper"] == 1.0 and fractions["shoulder_pan"] == 0.0


def test_hold_rejects_unknown_joints_and_fractions(leader: VirtualArm) -> None:
    with pytest.raises(ValueError, match="unknown joint"):
        leader.hold({"elbow": 0.5})
    with pytest.raises(ValueError, match="outside"):
        leader.hold({"elbow_flex": 1.5})


def test_letting_go_leaves_the_joints_where_they_are(leader: VirtualArm) -> None:
    leader.set_motion("wave")
    leader.fast_forward(5.0)
    leader.set_motion(None)
    angles = leader.joint_angles()
    leader.fast_forward(5.0)
    assert leader.joint_angles() == angles


def test_sweep_visits_every_end_stop_and_matches_the_expected_calibration(
    leader: VirtualArm,
) -> None:
    with bus_on(leader.link) as bus:
        home(leader, bus)
        bus.sync_write("Return_Delay_Time", dict.fromkeys(IDS, 0))  # as LeRobot configures it
        leader.hold(dict.fromkeys(JOINTS, 0.5))
        assert leader.wait_idle()
        assert bus.sync_read("Present_Position", IDS) == dict.fromkeys(IDS, 2047)
        leader.set_motion("sweep")
        assert not leader.sweep_done()
        low = high = bus.sync_read("Present_Position", IDS)
        while not leader.sweep_done():
            leader.fast_forward(0.02)  # a range recording at 50 Hz, without the wall time
            positions = bus.sync_read("Present_Position", IDS)
            low = {m: min(low[m], p) for m, p in positions.items()}
            high = {m: max(high[m], p) for m, p in positions.items()}
    expected = leader.expected_calibration()
    for name, motor in zip(JOINTS, IDS, strict=True):
        if name != "wrist_roll":  # LeRobot >= 0.4.3 records it as 0..4095
            assert (low[motor], high[motor]) == (
                expected[name]["range_min"],
                expected[name]["range_max"],
            )
    assert all(abs(f - 0.5) < 1e-9 for f in leader.joint_fractions().values())  # let go there


def test_a_sweep_never_completes_while_a_joint_is_jammed(leader: VirtualArm) -> None:
    leader.inject(Fault.JAM, motor=2)
    leader.set_motion("sweep")
    leader.fast_forward(60)
    assert not leader.sweep_done()
    leader.clear()
    leader.set_motion("sweep")
    leader.fast_forward(60)
    assert leader.sweep_done()


def test_expected_calibration_has_lerobot_shape(follower: VirtualArm) -> None:
    calibration = follower.expected_calibration()
    assert list(calibration) == list(JOINTS)
    for motor, entry in enumerate(calibration.values(), start=1):
        assert list(entry) == ["id", "drive_mode", "homing_offset", "range_min", "range_max"]
        assert entry["id"] == motor and entry["drive_mode"] == 0
        assert -2047 <= entry["homing_offset"] <= 2047
        assert 0 <= entry["range_min"] < 2047 < entry["range_max"] <= 4095
    assert (calibration["wrist_roll"]["range_min"], calibration["wrist_roll"]["range_max"]) == (
        0,
        4095,
    )
    spans = {name: e["range_max"] - e["range_min"] for name, e in calibration.items()}
    assert spans["shoulder_pan"] == 2725 and spans["gripper"] == 1475


def test_leader_handle_travel_differs_from_the_follower_gripper(tmp_path: Path) -> None:
    leader = VirtualArm("leader", tmp_path / "l").expected_calibration()["gripper"]
    follower = VirtualArm("follower", tmp_path / "f").expected_calibration()["gripper"]
    assert leader["range_max"] - leader["range_min"] == 1100
    assert follower["range_max"] - follower["range_min"] == 1475


def test_same_seed_same_arm(tmp_path: Path) -> None:
    first = VirtualArm("follower", tmp_path / "a", seed=7)
    again = VirtualArm("follower", tmp_path / "b", seed=7)
    other = VirtualArm("follower", tmp_path / "c", seed=8)
    assert first.expected_calibration() == again.expected_calibration()
    assert first.expected_calibration() != other.expected_calibration()
