"""The automatic calibration in the real daemon, over the control socket, on the simulator in
real time: a follower whose shoulder_pan crosses the encoder seam found and saved without
wrapping; obstacles reported, not saved, the joints found kept; a hot motor pausing and
resuming; 50 °C, an emergency stop and an unplug ending the run with every torque off."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from so101d.calibration.locate import calibration_path
from so101d.calibration.model import Role
from so101d.sim import Fault
from tests.calibrating import (
    assert_eeprom_holds,
    assert_saved_true_travel,
    box_in_the_way,
    state,
    straddle_the_seam,
    wait_step,
)
from tests.daemon_harness import Daemon, PairSetup, StartDaemon, torque_enabled
from tests.waiting import wait_for

FOLLOWER_ID = "main_follower"
RUN_TIMEOUT_S = 240.0  # a run of about 45 s, on a loaded machine
PROGRESS_KEYS = {
    "status",
    "current_motor",
    "progress",
    "temperatures",
    "time_elapsed",
    "estimated_remaining",
}


def started(daemon: Daemon, meanwhile: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """An automatic session on the follower, confirmed after its plan was shown; nothing
    moves meanwhile (the pair paused, the arm limp)."""
    daemon.call("calibrate.start", arm="follower", auto=True)
    confirming = wait_step(daemon, "confirming")
    plan = confirming["auto"]["plan"]
    # The elbow before the shoulder (swept folded); wrist_roll keeps its full turn.
    assert plan["joints"] == [
        "shoulder_pan",
        "elbow_flex",
        "shoulder_lift",
        "wrist_flex",
        "gripper",
    ], plan
    assert plan["estimated_s"] > 0 and "Clear the space" in plan["message"], plan
    meanwhile()
    daemon.call("calibrate.confirm")
    return wait_step(daemon, "calibrating")


def wait_progress(daemon: Daemon, done: Any, timeout: float = RUN_TIMEOUT_S) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        now = state(daemon)
        return now if done(now) else None

    try:
        found: dict[str, Any] = wait_for(reached, timeout=timeout, interval=0.1)
    except AssertionError:
        raise AssertionError(f"never reached: {state(daemon)}\n--- log ---\n{daemon.log}") from None
    return found


def status(now: dict[str, Any]) -> str | None:
    progress = now["auto"]["progress"] or {}
    return progress.get("status")


def joint_done(joint: str) -> Any:
    return lambda s: joint in ((s.get("auto") or {}).get("joints") or {}) or not s["active"]


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_a_seam_crossing_follower_is_calibrated_and_saved_without_wrapping(
    pair: PairSetup, start_daemon: StartDaemon, work: Path
) -> None:
    follower = pair.follower
    straddle_the_seam(follower, "shoulder_pan")  # its readings cross 4095 -> 0 mid-travel
    daemon = start_daemon(pair)
    daemon.wait_state("teleop")

    def wrist_roll_at_its_middle() -> None:  # not swept: homed where it is left
        roll = follower.ground_truth()[4]
        follower.set_joint("wrist_roll", (roll["mount"] - roll["homing_offset"]) % 4096)
        follower.release("wrist_roll")

    calibrating = started(daemon, wrist_roll_at_its_middle)
    assert torque_enabled(pair.leader) == [0] * 6
    progress = wait_progress(daemon, lambda s: (s["auto"]["progress"] or {}).get("current_motor"))
    assert set(progress["auto"]["progress"]) == PROGRESS_KEYS, progress["auto"]["progress"]
    assert progress["auto"]["progress"]["status"] == "calibrating"
    assert calibrating["auto"]["failed"] == []

    review = wait_step(daemon, "review", timeout=RUN_TIMEOUT_S)
    assert review["review"]["errors"] == [], review["review"]
    assert torque_enabled(follower) == [0] * 6  # limp for the review
    assert review["auto"]["progress"]["progress"] == "6/6 motors"
    daemon.call("calibrate.save")
    wait_step(daemon, "saved")
    path = calibration_path(work / "calibration", Role.FOLLOWER, FOLLOWER_ID)
    saved = assert_saved_true_travel(path, follower)
    pan = saved["shoulder_pan"]
    assert 0 < pan["range_min"] < pan["range_max"] < 4095  # the seam is outside the range
    assert abs((pan["range_min"] + pan["range_max"]) / 2 - 2047) <= 1
    assert_eeprom_holds(follower, saved)
    daemon.wait_state("teleop")


def test_an_obstacle_mid_travel_is_reported_not_saved_and_the_servos_get_their_homing_back(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    follower = pair.follower
    daemon = start_daemon(pair)
    daemon.wait_state("teleop")
    before = [follower.servo(m).get("Homing_Offset") for m in follower.motor_ids]
    started(daemon, lambda: box_in_the_way(follower, "shoulder_pan"))
    pan = wait_progress(daemon, joint_done("shoulder_pan"))["auto"]["joints"]["shoulder_pan"]
    assert "obstacle or cable?" in pan["failure"], pan
    assert "low" not in pan and "high" not in pan
    daemon.call("calibrate.abort")
    assert state(daemon)["step"] == "aborted"
    assert torque_enabled(follower) == [0] * 6
    assert [follower.servo(m).get("Homing_Offset") for m in follower.motor_ids] == before


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_a_joint_not_found_is_not_saved_and_only_it_is_left_to_sweep_by_hand(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    follower = pair.follower
    daemon = start_daemon(pair, top="[autocal]\nspeed_dps = 180")
    daemon.wait_state("teleop")
    started(daemon, lambda: box_in_the_way(follower, "shoulder_lift"))
    sweeping = wait_step(daemon, "sweeping", timeout=RUN_TIMEOUT_S)
    assert sweeping["auto"]["failed"] == ["shoulder_lift"], sweeping["auto"]
    lift = sweeping["auto"]["joints"]["shoulder_lift"]
    assert "low" not in lift and "far short" in lift["failure"], lift
    assert "shoulder_lift" in sweeping["reason"] and "by hand" in sweeping["reason"]
    assert sweeping["unswept"] == ["shoulder_lift"]  # the found joints are kept
    daemon.call("calibrate.abort")


def test_a_hot_motor_pauses_with_torque_off_and_resumes_once_cool(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    follower = pair.follower
    daemon = start_daemon(pair)
    daemon.wait_state("teleop")
    started(daemon)
    follower.inject(Fault.OVERHEAT, motor=1, value=45)
    cooling = wait_progress(daemon, lambda s: status(s) == "cooling")
    assert cooling["step"] == "calibrating"
    wait_for(lambda: torque_enabled(follower) == [0] * 6, timeout=10)
    follower.clear(Fault.OVERHEAT)
    follower.fast_forward(300)  # cooling takes minutes of simulated time
    wait_progress(daemon, lambda s: status(s) == "calibrating")
    wait_for(lambda: torque_enabled(follower) == [1] * 6, timeout=10)
    daemon.call("calibrate.abort")


def test_50_degrees_is_an_emergency_stop_with_every_torque_off(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = start_daemon(pair)
    daemon.wait_state("teleop")
    started(daemon)
    pair.follower.inject(Fault.OVERHEAT, motor=1, value=50)
    ended = wait_step(daemon, "aborted")
    assert "emergency stop" in ended["reason"] and "50" in ended["reason"], ended["reason"]
    assert torque_enabled(pair.follower) == [0] * 6
    assert torque_enabled(pair.leader) == [0] * 6
    assert daemon.status()["pairs"]["main"]["state"] == "paused"  # latched: a person resumes


def test_an_emergency_stop_mid_run_ends_it_with_torque_off(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = start_daemon(pair)
    daemon.wait_state("teleop")
    started(daemon)
    wait_progress(daemon, lambda s: s["auto"]["samples"] > 20)
    daemon.call("estop")
    assert state(daemon)["step"] == "aborted"
    assert torque_enabled(pair.follower) == [0] * 6


def test_an_unplug_mid_run_ends_the_session(pair: PairSetup, start_daemon: StartDaemon) -> None:
    daemon = start_daemon(pair)
    daemon.wait_state("teleop")
    started(daemon)
    wait_progress(daemon, lambda s: s["auto"]["samples"] > 20)
    pair.follower.unplug()
    ended = wait_step(daemon, "aborted")
    assert "follower" in ended["reason"], ended["reason"]
    # The follower's servos kept their power and their torque: the pair, back, holds it and
    # asks for a person rather than write the EEPROM under a holding arm.
    pair.follower.replug()
    fault = daemon.wait_state("fault")
    assert "support the arm" in fault["reason"], fault


def telemetry_shape(daemon: Daemon) -> None:
    samples = daemon.call("calibrate.telemetry")["samples"]
    assert samples and set(samples[0]) == {
        "time",
        "joint",
        "position",
        "goal",
        "current_ma",
        "load",
        "temperature_c",
    }
    json.dumps(samples)
