"""Calibration sessions in the real daemon, over the control socket, on the simulator: a full
session, the encoder-wrap case read back by real LeRobot, conflicts, unswept joints, e-stop
and unplug mid-sweep, and the idle timeout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from so101d.api import CONFLICT, UNPROCESSABLE
from so101d.calibration.locate import Layout, calibration_path
from so101d.calibration.model import JOINTS, MotorCalibration, Role
from so101d.calibration.normalize import NormMode, normalize
from so101d.sim import VirtualArm
from tests.arms import bus_on
from tests.calibrating import (
    MIDDLE,
    assert_backup_and_sibling,
    assert_eeprom_holds,
    assert_saved_true_travel,
    pose,
    refused,
    start_sweeping,
    state,
    straddle_the_seam,
    sweep,
    wait_step,
)
from tests.commands import so101d
from tests.daemon_harness import (
    Daemon,
    PairSetup,
    StartDaemon,
    save_arm_calibration,
    torque_enabled,
)
from tests.lerobot_env import LeRobotScript
from tests.test_daemon import assert_clean_log, in_teleop
from tests.waiting import wait_for

LEADER_ID = "main_leader"


def old_leader_file(root: Path, leader: VirtualArm) -> Path:
    """A leader file that is not the arm's true calibration (shoulder_pan homed 100 ticks
    off), in both LeRobot layouts, as on a machine that ran LeRobot of both eras."""
    old = leader.expected_calibration()
    old["shoulder_pan"]["homing_offset"] += 100
    old["shoulder_pan"]["range_min"] -= 100
    old["shoulder_pan"]["range_max"] -= 100
    path = save_arm_calibration(root, Role.LEADER, LEADER_ID, old)
    sibling = calibration_path(root, Role.LEADER, LEADER_ID, Layout.SO101)
    sibling.parent.mkdir(parents=True)
    sibling.write_bytes(path.read_bytes())
    return path


def in_teleop_with_an_old_leader_file(
    pair: PairSetup, start_daemon: StartDaemon, root: Path
) -> tuple[Daemon, Path]:
    """The daemon mirroring, the leader's old file in place, the leader held at its middle."""
    path = old_leader_file(root, pair.leader)
    daemon = in_teleop(pair, start_daemon)
    pose(pair.leader, MIDDLE)
    return daemon, path


def test_a_full_session_through_the_socket(
    pair: PairSetup, start_daemon: StartDaemon, work: Path
) -> None:
    root = work / "calibration"
    daemon, path = in_teleop_with_an_old_leader_file(pair, start_daemon, root)
    started = daemon.call("calibrate.start", pair="main", arm="leader")
    assert (started["session"], started["step"]) == ("1", "starting")
    homing = wait_step(daemon, "homing")
    status = daemon.status()
    assert status["pairs"]["main"]["state"] == "paused"
    assert "calibration session 1 (main leader 'main_leader')" in status["pairs"]["main"]["reason"]
    assert status["calibration"]["step"] == "homing"
    assert torque_enabled(pair.follower) == [0] * 6
    assert torque_enabled(pair.leader) == [0] * 6
    assert set(homing["joints"]) == set(JOINTS)

    daemon.call("calibrate.capture")
    sweeping = wait_step(daemon, "sweeping")
    assert all(abs(j["position"] - 2047) <= 1 for j in sweeping["joints"].values())
    sweep(pair.leader)
    swept = state(daemon)
    assert swept["unswept"] == []
    assert not any(j["crosses_seam"] or j["too_wide"] for j in swept["joints"].values())
    review = daemon.call("calibrate.done")["review"]
    assert review["errors"] == [], review
    assert review["path"] == str(path)
    old_pan = review["joints"]["shoulder_pan"]
    assert old_pan["old"]["homing_offset"] - old_pan["new"]["homing_offset"] in range(96, 105)

    since_save = len(daemon.log)
    daemon.call("calibrate.save")
    saved_state = wait_step(daemon, "saved")
    saved = assert_saved_true_travel(path, pair.leader)
    assert_eeprom_holds(pair.leader, saved)
    assert_backup_and_sibling(root, Role.LEADER, LEADER_ID)
    assert {entry["path"] for entry in saved_state["saved"]} == {
        str(path),
        str(calibration_path(root, Role.LEADER, LEADER_ID, Layout.SO101)),
    }

    # The pair reconnects with the new file at once: checked, prechecked, mirroring again.
    daemon.wait_state("teleop")
    after = daemon.log[since_save:]
    assert "checking: validating calibration files" in after
    assert "EEPROM differs" not in after
    assert_clean_log(daemon)


@pytest.mark.lerobot
def test_a_neutral_pose_far_from_the_middle_still_saves_a_file_that_does_not_wrap(
    pair: PairSetup, start_daemon: StartDaemon, work: Path
) -> None:
    root = work / "calibration"
    calibration_path(root, Role.LEADER, LEADER_ID).unlink()  # a new arm: no file yet
    straddle_the_seam(pair.leader, "shoulder_lift")  # its readings cross 4095 -> 0 mid-travel
    daemon = start_daemon(pair)
    missing = daemon.wait_state("fault")
    assert "so101d calibrate --arm leader" in missing["reason"], missing

    pose(pair.leader, {**MIDDLE, "shoulder_lift": 0.05})  # LeRobot would save "0..4054"
    daemon.call("calibrate.start", arm="leader")
    assert wait_step(daemon, "homing")["joints"]["shoulder_lift"]["raw"] > 2900
    daemon.call("calibrate.capture")
    sweep(pair.leader)
    swept = state(daemon)["joints"]
    assert swept["shoulder_lift"]["crosses_seam"], swept["shoulder_lift"]
    assert swept["shoulder_lift"]["max"] > 4095  # where a wrap-blind recorder wraps
    assert abs(swept["shoulder_lift"]["range"] - 2350) <= 10
    assert [j for j, s in swept.items() if s.get("crosses_seam")] == ["shoulder_lift"]
    daemon.call("calibrate.done")
    daemon.call("calibrate.save")
    wait_step(daemon, "saved")
    path = calibration_path(root, Role.LEADER, LEADER_ID)
    saved = assert_saved_true_travel(path, pair.leader)
    lift = saved["shoulder_lift"]
    assert 0 < lift["range_min"] < 2047 < lift["range_max"] < 4095  # no wrap
    assert_eeprom_holds(pair.leader, saved)
    daemon.wait_state("teleop")  # the file appeared: the latch cleared by itself

    # Real LeRobot reads the same joint angles through the saved file as so101d does.
    pose(pair.leader, {"shoulder_lift": 0.9, "elbow_flex": 0.2, "shoulder_pan": 0.7})
    daemon.call("pause")
    daemon.wait_state("paused")
    link, directory = pair.leader.link, str(path.parent)
    script = LeRobotScript("read_angles.py", "leader", link, LEADER_ID, directory)
    (result,) = script.finish()
    assert result["calibrated"]  # the EEPROM matches the file: LeRobot would not recalibrate
    calibration = {j: MotorCalibration(**v) for j, v in saved.items()}
    with bus_on(pair.leader.link) as bus:
        raw = bus.sync_read("Present_Position", [1, 2, 3, 4, 5])
    true_angles = pair.leader.joint_angles()
    for joint, motor in zip(JOINTS[:5], [1, 2, 3, 4, 5], strict=True):
        ours = normalize(raw[motor], calibration[joint], NormMode.DEGREES)
        assert abs(result["positions"][joint] - ours) < 0.1, (joint, result, ours)
        if joint != "wrist_roll":  # a full turn's middle is not the joint's middle
            assert abs(ours - true_angles[joint]) < 1.0, (joint, ours, true_angles)


def test_conflicts_unswept_joints_and_an_idempotent_abort(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon)
    daemon.call("calibrate.start", arm="follower")
    wait_step(daemon, "homing")

    shown = so101d("status", "--config", str(daemon.config)).stdout
    assert "calibration session 1: pair main, follower, homing" in shown
    assert "paused since" in shown and "calibration session 1 (main follower" in shown
    second = refused(daemon, "calibrate.start", arm="leader")
    assert second.code == CONFLICT
    assert "calibration session 1 (main follower 'main_follower') is active" in str(second)
    for method in ("pause", "resume"):
        conflict = refused(daemon, method, pair="main")
        assert conflict.code == CONFLICT, method
        assert "calibration session 1" in str(conflict)
    cli = so101d("pause", "--config", str(daemon.config))
    assert cli.returncode == 1
    assert "calibration session 1 (main follower 'main_follower') holds it" in cli.stderr
    assert refused(daemon, "calibrate.done").code == CONFLICT  # still homing

    daemon.call("calibrate.capture")
    unswept = refused(daemon, "calibrate.done")
    assert unswept.code == UNPROCESSABLE
    assert unswept.details["unswept"] == [j for j in JOINTS if j != "wrist_roll"]
    assert "not swept yet: shoulder_pan, shoulder_lift" in str(unswept)

    aborted = daemon.call("calibrate.abort")
    assert (aborted["step"], aborted["reason"]) == ("aborted", "aborted by request")
    assert daemon.call("calibrate.abort")["step"] == "aborted"  # idempotent
    daemon.wait_state("teleop")
    assert daemon.call("pause")["paused"] == ["main"]
    assert_clean_log(daemon)


def test_estop_mid_sweep_aborts_then_torques_off_everything(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon)
    start_sweeping(daemon, "follower")  # the session holds the follower's port
    pair.follower.hold({"elbow_flex": 0.9, "shoulder_pan": 0.2})
    wait_for(lambda: state(daemon)["joints"]["elbow_flex"]["range"] > 300)
    for motor in pair.follower.motor_ids:  # something switched torque on meanwhile
        servo = pair.follower.servo(motor)
        servo.set("Goal_Position", servo.get("Present_Position"))
        servo.set("Torque_Enable", 1)

    result = so101d("estop", "--config", str(daemon.config))
    assert torque_enabled(pair.follower) == [0] * 6, result.stdout  # at the reply
    assert torque_enabled(pair.leader) == [0] * 6
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "torque off (read back on 6 motors)" in result.stdout
    ended = state(daemon)
    assert (ended["step"], ended["reason"]) == ("aborted", "emergency stop")
    # The session has returned the arm without resuming the pair: the e-stop stays latched.
    assert daemon.pair()["state"] == "paused"
    pair.follower.set_motion(None)  # the hand lets go, or teleop would fight it
    assert so101d("resume", "--config", str(daemon.config)).returncode == 0
    daemon.wait_state("teleop")
    assert_clean_log(daemon)


def test_an_unplug_mid_sweep_aborts_with_the_reason(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon)
    start_sweeping(daemon, "leader")
    pair.leader.set_motion("sweep")
    wait_for(lambda: state(daemon)["joints"]["shoulder_pan"]["range"] > 300)
    pair.leader.unplug()
    ended = wait_step(daemon, "aborted")
    assert ended["reason"].startswith("the leader's board went away"), ended["reason"]
    daemon.wait_state("waiting")
    pair.leader.replug()
    daemon.wait_state("teleop")
    assert_clean_log(daemon)


def test_a_session_nobody_asks_about_ends_after_the_idle_timeout(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon, top="calibration_idle_timeout_s = 1")
    daemon.call("calibrate.start", arm="leader")
    wait_for(lambda: "aborted: idle timeout" in daemon.log, timeout=30)  # `status` does not attach
    ended = state(daemon)
    assert ended["step"] == "aborted"
    assert ended["reason"].startswith("idle timeout: no client for"), ended
    daemon.wait_state("teleop")
    assert json.loads(json.dumps(daemon.status()))["calibration"]["step"] == "aborted"
