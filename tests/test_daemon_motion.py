"""Motion safety of the real daemon on the simulator: e-stop in every state and policy,
holding never dropped, servo resets, motors that vanish and rejoin, a full control socket."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest

from so101d.calibration.files import read_calibration
from so101d.calibration.locate import calibration_path
from so101d.calibration.model import DEFAULT_MOTOR_MAP as MOTORS
from so101d.calibration.model import Role
from so101d.calibration.store import save_calibration
from so101d.feetech.errors import ServoFault
from so101d.frames import Frame, convert
from so101d.sim import Fault
from tests.commands import so101d
from tests.daemon_harness import Daemon, PairSetup, StartDaemon, torque_enabled
from tests.test_daemon import assert_clean_log, in_teleop, one_cycle_ticks
from tests.waiting import wait_for
from tests.wire_tap import RegisterTap

POLICIES = {
    "release": {},
    "hold": {},
    "rest": {"rest_pose": {"shoulder_lift": -30.0, "elbow_flex": 30.0}},
}
FAR = {"shoulder_pan": 0.1, "shoulder_lift": 0.2, "elbow_flex": 0.8, "wrist_flex": 0.2}


def estop_reaches_every_servo(daemon: Daemon, pair: PairSetup) -> None:
    """`so101d estop` returns only after every follower servo reads torque off."""
    result = so101d("estop", "--config", str(daemon.config))
    assert torque_enabled(pair.follower) == [0] * 6, result.stdout  # at the reply, no waiting
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "torque off (read back on 6 motors)" in result.stdout
    daemon.wait_state("paused")
    wait_for(lambda: daemon.pair()["reason"].startswith("emergency stop"))  # even if paused


def resume(daemon: Daemon) -> None:
    assert so101d("resume", "--config", str(daemon.config)).returncode == 0


@pytest.mark.parametrize("policy", list(POLICIES))
def test_estop_cuts_torque_in_every_state(
    pair: PairSetup, start_daemon: StartDaemon, policy: str
) -> None:
    pair.leader.set_motion(None)
    pair.leader.hold(FAR)  # far from the follower's rest pose: engaging takes seconds
    wait_for(lambda: pair.leader.joint_fractions()["elbow_flex"] > 0.75, timeout=20)
    daemon = start_daemon(pair, stop_policy=policy, min_voltage_v=9.0, **POLICIES[policy])

    daemon.wait_state("engaging")
    estop_reaches_every_servo(daemon, pair)
    resume(daemon)

    daemon.wait_state("teleop", timeout=30)
    estop_reaches_every_servo(daemon, pair)
    resume(daemon)

    daemon.wait_state("teleop", timeout=30)
    assert so101d("pause", "--config", str(daemon.config)).returncode == 0
    daemon.wait_state("paused")
    estop_reaches_every_servo(daemon, pair)
    resume(daemon)

    daemon.wait_state("teleop", timeout=30)
    pair.leader.unplug()  # waiting: with "hold" the follower keeps its torque
    daemon.wait_state("waiting")
    if policy == "hold":
        assert torque_enabled(pair.follower) == [1] * 6
    estop_reaches_every_servo(daemon, pair)
    resume(daemon)
    daemon.wait_state("waiting")
    pair.leader.replug()

    daemon.wait_state("teleop", timeout=30)
    pair.leader.inject(Fault.MISSING_MOTOR, motor=6)  # fault: latched for the operator
    daemon.wait_state("fault", timeout=30)
    estop_reaches_every_servo(daemon, pair)
    pair.leader.clear()
    resume(daemon)

    daemon.wait_state("teleop", timeout=30)
    pair.follower.inject(Fault.BROWNOUT, value=8.0)  # below min_voltage_v: retried, backing off
    wait_for(lambda: "retry" in daemon.pair(), timeout=30)
    estop_reaches_every_servo(daemon, pair)
    pair.follower.clear()
    resume(daemon)
    daemon.wait_state("teleop", timeout=30)
    assert_clean_log(daemon)


def test_estop_interrupts_the_rest_move(pair: PairSetup, start_daemon: StartDaemon) -> None:
    pose = {"shoulder_pan": 60.0, "shoulder_lift": -40.0, "elbow_flex": 40.0}
    daemon = in_teleop(pair, start_daemon, stop_policy="rest", rest_pose=pose, engage_speed_dps=5)
    pair.leader.set_motion(None)
    tap = RegisterTap(pair.follower)
    assert so101d("pause", "--config", str(daemon.config)).returncode == 0  # starts the rest move
    daemon.wait_state("resting")
    moving = len(tap.writes())
    wait_for(lambda: len(tap.writes()) > moving + 5)  # at 5 °/s: many seconds to go
    estop_reaches_every_servo(daemon, pair)
    written = len(tap.writes())
    time.sleep(0.2)
    assert len(tap.writes()) == written  # no goal after the e-stop
    wait_for(lambda: "rest move stopped: follower motion refused: emergency stop" in daemon.log)


def test_a_holding_follower_survives_a_daemon_restart(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon, stop_policy="hold")
    pair.leader.set_motion(None)
    assert daemon.terminate() == 0
    assert torque_enabled(pair.follower) == [1] * 6
    held = pair.follower.joint_angles()
    tap, torque = RegisterTap(pair.follower), RegisterTap(pair.follower, "Torque_Enable")

    daemon = start_daemon(pair, stop_policy="hold")
    daemon.wait_state("teleop")
    assert "follower found holding" in daemon.log
    assert all(0 not in w.values.values() for w in torque.writes())  # never dropped
    first = tap.writes()[0]
    assert all(
        abs(v - first.present[m]) <= one_cycle_ticks(180, 100) for m, v in first.values.items()
    )
    angles = pair.follower.joint_angles()
    assert all(abs(angles[j] - held[j]) < 5 for j in angles), (held, angles)


def test_a_servo_reset_mid_teleop_ends_the_session(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon)
    pair.follower.power_cycle()  # a brown-out: RAM defaults, torque off
    status = daemon.wait_state("fault")
    assert "reset while mirroring" in status["reason"], status["reason"]
    assert_clean_log(daemon)


def test_a_follower_motor_missing_for_3_s_is_noticed_and_rejoins_without_a_jump(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon)
    tap = RegisterTap(pair.follower)
    pair.follower.inject(Fault.MISSING_MOTOR, motor=3)
    gone = time.monotonic()
    status = wait_for(lambda: (p := daemon.pair())["state"] != "teleop" and p, timeout=5)
    noticed = time.monotonic() - gone
    assert "elbow_flex (motor 3)" in daemon.log
    writes_while_missing = len(tap.writes())
    time.sleep(max(0.0, 3.0 - (time.monotonic() - gone)))
    pair.follower.clear()
    with contextlib.suppress(AssertionError):
        daemon.wait_state("fault", timeout=2)
    if daemon.pair()["latched"]:
        resume(daemon)
    daemon.wait_state("teleop", timeout=30)
    rejoin = next(w for w in tap.writes()[writes_while_missing:] if 3 in w.values)
    assert abs(rejoin.values[3] - rejoin.present[3]) <= one_cycle_ticks(180, 100), rejoin
    assert noticed < 2.0, (noticed, status)


def test_64_idle_clients_do_not_block_estop(pair: PairSetup, start_daemon: StartDaemon) -> None:
    daemon = in_teleop(pair, start_daemon)
    with contextlib.ExitStack() as stack:
        for _ in range(70):
            idle = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            idle.connect(str(daemon.socket_path))
        estop_reaches_every_servo(daemon, pair)
    assert daemon.log.count("refused") <= 1


def test_status_publishes_joint_positions_in_a_chosen_frame(
    work: Path, pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon)
    pair.leader.set_motion(None)
    follower_file = calibration_path(work / "calibration", Role.FOLLOWER, "main_follower")
    calibration = read_calibration(follower_file)

    def published_equals_converted() -> bool:
        raw = {j: pair.follower.servo(m).get("Present_Position") for j, m in MOTORS.items()}
        result = so101d("status", "--json", "--frame", "mujoco", "--config", str(daemon.config))
        published = json.loads(result.stdout)["pairs"]["main"]["positions"]["follower"]
        return published == convert(raw, Frame.RAW, Frame.MUJOCO, calibration)

    wait_for(published_equals_converted, timeout=10)
    shown = so101d("status", "--frame", "lerobot", "--config", str(daemon.config)).stdout
    assert "follower" in shown and "(lerobot)" in shown


def test_servo_settings_are_set_as_lerobot_sets_them(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    for motor in MOTORS.values():  # a servo left in wheel mode, with a multi-turn Phase bit
        pair.follower.servo(motor).set("Operating_Mode", 1)
        pair.follower.servo(motor).set("Phase", pair.follower.servo(motor).get("Phase") | 0x10)
    daemon = in_teleop(pair, start_daemon)
    follower = pair.follower
    for motor in MOTORS.values():
        servo = follower.servo(motor)
        assert (servo.get("Operating_Mode"), servo.get("Phase") & 0x10) == (0, 0)
        assert [servo.get(r) for r in ("P_Coefficient", "I_Coefficient", "D_Coefficient")] == [
            16,
            0,
            32,
        ]
    gripper = follower.servo(MOTORS["gripper"])
    limits = ("Max_Torque_Limit", "Protection_Current", "Overload_Torque")
    assert [gripper.get(name) for name in limits] == [500, 250, 25]
    assert "setting servo settings as LeRobot does" in daemon.log
    assert "Operating_Mode 1 -> 0" in daemon.log


def test_a_leader_wrist_across_the_encoder_seam_never_turns_the_follower_the_long_way(
    work: Path, pair: PairSetup, start_daemon: StartDaemon
) -> None:
    """The leader's wrist_roll homing puts the seam (4095 -> 0) just beside its pose, as a
    homing pose off the middle does on a real arm; the hand then turns it across, both ways."""
    wrist = pair.leader.servo(MOTORS["wrist_roll"])
    pair.leader.set_motion(None)
    encoder = (wrist.get("Present_Position") + wrist.get("Homing_Offset")) % 4096
    offset = (encoder - 3900) % 4096
    offset = offset - 4096 if offset > 2047 else offset
    leader_file = calibration_path(work / "calibration", Role.LEADER, "main_leader")
    calibration = read_calibration(leader_file)
    calibration["wrist_roll"] = replace(
        calibration["wrist_roll"], homing_offset=offset, range_min=0, range_max=4095
    )
    save_calibration(leader_file, calibration)
    daemon = start_daemon(pair)
    daemon.wait_state("teleop", timeout=30)
    assert abs(wrist.get("Present_Position") - 3900) < 5  # the file's homing is in the servo
    tap = RegisterTap(pair.follower)
    start = pair.leader.joint_fractions()["wrist_roll"]
    seen: set[int] = set()
    for fraction in (start + 0.1, start - 0.1, start + 0.1):
        pair.leader.hold({"wrist_roll": fraction})
        while abs(pair.leader.joint_fractions()["wrist_roll"] - fraction) > 0.005:
            seen.add(wrist.get("Present_Position"))
            time.sleep(0.005)
    assert min(seen) < 100 and max(seen) > 4000  # the leader's readings crossed the seam
    still = len(tap.writes())
    wait_for(lambda: len(tap.writes()) > still + 100, timeout=20)  # a second of holding
    goals = [w.values[MOTORS["wrist_roll"]] for w in tap.writes()]
    assert tap.largest_step() <= one_cycle_ticks(180, 100)
    assert min(goals) > 3300, min(goals)  # the long way would pass through the low ticks
    assert max(goals) == round(4095 - 2 * 4096 / 360)  # saturated at the range end
    assert_clean_log(daemon)


def squeeze_an_object(pair: PairSetup) -> tuple[int, RegisterTap]:
    """Close the follower's jaws on an object, through the leader's handle; return where the
    object is and a tap started once the leader is squeezed shut."""
    pair.leader.set_motion(None)
    jaws = pair.follower.servo(MOTORS["gripper"]).get("Present_Position")
    pair.follower.place_obstacle("gripper", jaws - 150)  # an object between the jaws
    pair.leader.hold({"gripper": 0.0})  # the hand squeezes the leader's handle shut
    wait_for(lambda: pair.leader.joint_fractions()["gripper"] < 0.02, timeout=20)
    return jaws - 150, RegisterTap(pair.follower)


def tripped(pair: PairSetup) -> bool:
    """Whether the follower gripper's overload protection has tripped."""
    gripper = next(t for t in pair.follower.telemetry() if t.motor == MOTORS["gripper"])
    return bool(gripper.errors & ServoFault.OVERLOAD)


def test_a_gripper_closed_on_an_object_stays_in_teleop(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon)
    gripper = MOTORS["gripper"]
    grasped, squeezing = squeeze_an_object(pair)
    # Past LeRobot's gripper Protection_Time (2 s): the servo's overload protection has tripped.
    wait_for(lambda: len(squeezing.writes()) > 300, timeout=30)
    status = daemon.pair()
    assert status["state"] == "teleop", (status["reason"], daemon.log)
    assert tripped(pair)
    telemetry = {t.motor: t for t in pair.follower.telemetry()}
    assert telemetry[gripper].torque, telemetry[gripper]
    assert abs(telemetry[gripper].load) >= 15, telemetry[gripper]  # it still holds the object
    assert pair.follower.servo(gripper).get("Present_Position") >= grasped - 5


def test_a_gripper_that_tripped_on_a_grasp_is_rearmed_when_teleop_comes_back(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon)
    gripper = MOTORS["gripper"]
    squeeze_an_object(pair)
    wait_for(lambda: tripped(pair), timeout=30)
    assert so101d("pause", "--config", str(daemon.config)).returncode == 0
    daemon.wait_state("paused")
    pair.follower.place_obstacle("gripper", None)  # the object is taken out; the bit stays
    pair.leader.hold({"gripper": 0.5})
    assert tripped(pair)
    rearming = RegisterTap(pair.follower)
    resume(daemon)
    daemon.wait_state("teleop", timeout=30)
    assert "gripper (motor 6) had tripped its overload protection (a grasp); re-armed" in (
        daemon.log
    )
    first_goal = next(w for w in rearming.writes() if gripper in w.values)
    assert first_goal.values[gripper] == first_goal.present[gripper]  # re-armed in place
    assert not tripped(pair)


def test_estop_while_prechecking_releases_a_holding_follower(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon, stop_policy="hold")
    pair.leader.unplug()
    daemon.wait_state("waiting")
    assert torque_enabled(pair.follower) == [1] * 6  # held through the wait
    pair.leader.inject(Fault.CORRUPT_CHECKSUM, motor=4)  # each precheck retries it for 1 s
    pair.leader.replug()
    for _ in range(10):  # until an e-stop lands inside a precheck (each lasts over 1 s)
        daemon.wait_state("prechecking", timeout=30)
        estop_reaches_every_servo(daemon, pair)
        if "main: emergency stop while prechecking: follower torque off" in daemon.log:
            return
        resume(daemon)
    raise AssertionError(f"no e-stop landed while prechecking:\n{daemon.log}")
