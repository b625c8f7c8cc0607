"""The dashboard and the calibration wizard in a real headless Chromium, against the real web
process, the real daemon and the simulator. Every wait is on a page state (Playwright's
expect), never a sleep; the scripted hand moves the virtual arms."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from so101d.calibration.locate import calibration_path
from so101d.calibration.model import Role
from so101d.calibration.validate import validate_file
from so101d.sim.calibration_files import save_matching_calibration
from tests.browser import chromium, open_dashboard
from tests.calibrating import (
    MIDDLE,
    assert_backup_and_sibling,
    assert_eeprom_holds,
    assert_saved_true_travel,
    box_in_the_way,
    pose,
    state,
)
from tests.daemon_harness import Daemon, PairSetup, StartDaemon, torque_enabled
from tests.test_daemon import assert_clean_log
from tests.test_daemon_calibrate import LEADER_ID, old_leader_file
from tests.waiting import wait_for
from tests.web_harness import WebProcess, daemon_and_web

pytestmark = pytest.mark.browser
__all__ = ["chromium"]  # the fixture, imported for the tests below

ABORTED = "Calibration was aborted (bus error or arm disconnected). Close and retry."
PAGE_TIMEOUT_MS = 60_000  # a bound on a hung test on a loaded machine, not a timing
AUTO_RUN_TIMEOUT_MS = 240_000  # an automatic run of about 45 s of motion, on a loaded machine


@pytest.fixture
def running(
    pair: PairSetup, start_daemon: StartDaemon, work: Path
) -> Iterator[tuple[Daemon, WebProcess]]:
    """The leader's old file in place (in both layouts), the pair mirroring, the web up."""
    old_leader_file(work / "calibration", pair.leader)
    with daemon_and_web(pair, start_daemon, work) as both:
        pose(pair.leader, MIDDLE)
        yield both


@pytest.fixture
def page(chromium: Any, running: tuple[Daemon, WebProcess]) -> Iterator[Any]:
    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    opened = open_dashboard(chromium, running[1])
    yield opened
    opened.context.close()


def button(page: Any, name: str) -> Any:
    return page.locator("#wizard").get_by_role("button", name=name, exact=True)


def choose(page: Any, role: str, how: str) -> None:
    """The card's "Calibrate <role>", then "Calibrate by hand" or "Calibrate automatically"."""
    card = page.get_by_label(f"Calibration of the {role}")
    card.get_by_role("button", name=f"Calibrate {role}").click()
    card.get_by_role("button", name=f"Calibrate {how}").click()


def start_wizard(page: Any, role: str) -> None:
    choose(page, role, "by hand")
    expect(button(page, "Capture neutral")).to_be_enabled()


def sweeping(page: Any, role: str) -> None:
    start_wizard(page, role)
    button(page, "Capture neutral").click()
    expect(button(page, "Done sweeping")).to_be_enabled()


def joint_row(page: Any, joint: str) -> Any:
    return page.locator("#wizard-body tr", has_text=joint)


def test_the_wizard_calibrates_end_to_end_and_a_reload_mid_sweep_re_attaches(
    page: Any, running: tuple[Daemon, WebProcess], pair: PairSetup, work: Path
) -> None:
    daemon, _ = running
    root = work / "calibration"
    expect(page.locator(".state-name")).to_have_text("teleop")
    start_wizard(page, "leader")
    expect(page.locator("#wizard-help")).to_contain_text("capture the neutral pose")
    expect(joint_row(page, "shoulder_lift")).to_be_visible()  # live ticks
    button(page, "Capture neutral").click()
    expect(page.locator(".steps li.current")).to_have_text("2 Range of motion")
    pair.leader.set_motion("sweep")
    wait_for(lambda: state(daemon)["joints"]["shoulder_pan"]["range"] > 1000, timeout=60)

    page.reload()
    expect(button(page, "Done sweeping")).to_be_enabled()  # re-attached at the sweep
    expect(page.locator(".steps li.current")).to_have_text("2 Range of motion")
    wait_for(pair.leader.sweep_done, timeout=120, interval=0.1)
    expect(joint_row(page, "gripper")).not_to_contain_text("not swept yet")
    button(page, "Done sweeping").click()

    expect(button(page, "Save")).to_be_enabled()
    path = calibration_path(root, Role.LEADER, LEADER_ID)
    expect(page.locator("#wizard-body")).to_contain_text(f"file: {path}")
    expect(joint_row(page, "shoulder_pan")).to_contain_text("→")  # old -> new
    button(page, "Save").click()
    expect(page.locator("#wizard-help")).to_contain_text("Saved.")
    expect(button(page, "Close")).to_be_visible()

    saved = assert_saved_true_travel(path, pair.leader)
    assert_eeprom_holds(pair.leader, saved)
    assert_backup_and_sibling(root, Role.LEADER, LEADER_ID)
    daemon.wait_state("teleop")
    expect(page.locator(".state-name")).to_have_text("teleop")
    button(page, "Close").click()
    expect(page.locator("#wizard")).to_be_hidden()
    assert_clean_log(daemon)


@pytest.mark.timeout(600)
def test_the_automatic_wizard_shows_the_plan_moves_on_start_and_saves(
    page: Any, running: tuple[Daemon, WebProcess], pair: PairSetup, work: Path
) -> None:
    daemon, _ = running
    follower = pair.follower
    expect(page.locator(".state-name")).to_have_text("teleop")
    choose(page, "follower", "automatically")
    body = page.locator("#wizard-body")
    expect(body).to_contain_text("will move on its own")
    expect(body).to_contain_text("Clear the space around the arm")
    expect(page.locator(".steps li.current")).to_have_text("1 Plan")
    assert state(daemon)["step"] == "confirming"  # nothing moves before Start
    roll = follower.ground_truth()[4]  # not swept: homed where it is left
    follower.set_joint("wrist_roll", (roll["mount"] - roll["homing_offset"]) % 4096)
    follower.release("wrist_roll")
    button(page, "Start").click()

    expect(page.locator(".steps li.current")).to_have_text("2 Moving on its own")
    progress = body.locator("p.progress")
    expect(progress).to_contain_text("shoulder_pan")
    expect(progress).to_contain_text(" s left")
    expect(body.locator("progress")).to_be_visible()
    expect(body.locator("tr", has_text="gripper")).to_be_visible()  # its temperature
    later = re.compile(r"3/6 motors\s+wrist_flex")  # three done, the fourth moving
    expect(progress).to_contain_text(later, timeout=AUTO_RUN_TIMEOUT_MS)

    expect(button(page, "Save")).to_be_enabled(timeout=AUTO_RUN_TIMEOUT_MS)
    path = calibration_path(work / "calibration", Role.FOLLOWER, "main_follower")
    expect(body).to_contain_text(f"file: {path}")
    expect(body).to_contain_text("validator: ok")
    button(page, "Save").click()
    expect(page.locator("#wizard-help")).to_contain_text("Saved.")
    report = validate_file(path, Role.FOLLOWER)
    assert report.usable, [f.message for f in report.findings]
    assert_eeprom_holds(follower, assert_saved_true_travel(path, follower))
    daemon.wait_state("teleop")
    expect(page.locator(".state-name")).to_have_text("teleop")


def start_automatic(page: Any) -> None:
    """The follower's automatic calibration, confirmed with Start, moving its first joint."""
    choose(page, "follower", "automatically")
    expect(page.locator("#wizard-body")).to_contain_text("Clear the space around the arm")
    button(page, "Start").click()
    expect(page.locator("#wizard-body p.progress")).to_contain_text("shoulder_pan")


def test_cancel_mid_run_asks_to_stop_and_stop_ends_it_with_the_arm_limp(
    page: Any, running: tuple[Daemon, WebProcess], pair: PairSetup
) -> None:
    daemon, _ = running
    start_automatic(page)
    button(page, "Cancel").click()
    expect(page.locator("#wizard-confirm")).to_contain_text("Stop the automatic calibration?")
    button(page, "Keep calibrating").click()
    expect(page.locator("#wizard-confirm")).to_be_hidden()
    assert state(daemon)["step"] == "calibrating"
    button(page, "Cancel").click()
    button(page, "Stop").click()
    expect(page.locator("#wizard")).to_be_hidden()
    wait_for(lambda: state(daemon)["step"] == "aborted")
    assert torque_enabled(pair.follower) == [0] * 6
    daemon.wait_state("teleop")


@pytest.mark.timeout(600)
def test_a_joint_the_run_could_not_find_is_left_to_the_sweep_with_a_note_naming_it(
    page: Any, running: tuple[Daemon, WebProcess], pair: PairSetup
) -> None:
    daemon, _ = running
    box_in_the_way(pair.follower, "shoulder_lift")
    start_automatic(page)
    expect(button(page, "Done sweeping")).to_be_enabled(timeout=AUTO_RUN_TIMEOUT_MS)
    expect(page.locator(".steps li.current")).to_have_text("2 Range of motion")
    expect(page.locator("#wizard-help")).to_contain_text(
        "Sweep only shoulder_lift by hand from end stop to end stop (the others are kept)"
    )
    body = page.locator("#wizard-body")
    expect(body).to_contain_text("not calibrated automatically: shoulder_lift:")
    expect(body.locator("p.error")).to_have_count(1)
    button(page, "Cancel").click()
    button(page, "Discard").click()
    wait_for(lambda: state(daemon)["step"] == "aborted")


def test_a_second_tab_gets_the_409_naming_the_holder_and_cancel_in_step_1_closes(
    page: Any, chromium: Any, running: tuple[Daemon, WebProcess]
) -> None:
    daemon, web = running
    start_wizard(page, "leader")
    other = open_dashboard(chromium, web)
    try:
        choose(other, "follower", "by hand")
        expect(other.locator("#notice")).to_contain_text(
            "calibration session 1 (main leader 'main_leader') is active"
        )
        expect(other.locator("#wizard")).to_be_hidden()
    finally:
        other.context.close()
    button(page, "Cancel").click()  # step 1: no question asked
    expect(page.locator("#wizard")).to_be_hidden()
    wait_for(lambda: state(daemon)["step"] == "aborted")
    daemon.wait_state("teleop")


def test_done_too_early_lists_the_unmoved_joints_and_cancel_asks_to_discard(
    page: Any, running: tuple[Daemon, WebProcess], pair: PairSetup
) -> None:
    daemon, _ = running
    sweeping(page, "leader")
    pair.leader.hold({"shoulder_pan": 0.05})
    pose(pair.leader, {"shoulder_pan": 0.95})
    button(page, "Done sweeping").click()  # 422: everything else is unmoved
    error = page.locator("#wizard-error")
    expect(error).to_contain_text("Not swept yet: shoulder_lift, elbow_flex, wrist_flex, gripper")
    expect(error).not_to_contain_text("shoulder_pan")
    expect(page.locator("#wizard-body tr.unswept")).to_have_count(4)

    button(page, "Cancel").click()
    expect(page.locator("#wizard-confirm")).to_contain_text("Discard the range-of-motion sweep?")
    button(page, "Keep calibrating").click()
    expect(page.locator("#wizard-confirm")).to_be_hidden()
    assert state(daemon)["step"] == "sweeping"
    button(page, "Cancel").click()
    button(page, "Discard").click()
    expect(page.locator("#wizard")).to_be_hidden()
    wait_for(lambda: state(daemon)["step"] == "aborted")


def test_estop_mid_sweep_aborts_and_every_follower_torque_is_off(
    page: Any, running: tuple[Daemon, WebProcess], pair: PairSetup
) -> None:
    daemon, _ = running
    sweeping(page, "follower")
    pair.follower.hold({"elbow_flex": 0.9})
    wait_for(lambda: state(daemon)["joints"]["elbow_flex"]["range"] > 300)
    for motor in pair.follower.motor_ids:  # something switched torque on meanwhile
        servo = pair.follower.servo(motor)
        servo.set("Goal_Position", servo.get("Present_Position"))
        servo.set("Torque_Enable", 1)
    assert torque_enabled(pair.follower) == [1] * 6

    page.get_by_role("button", name="E-STOP").click()
    expect(page.locator("#notice")).to_contain_text("every follower's torque is off")
    assert torque_enabled(pair.follower) == [0] * 6
    expect(page.locator("#wizard-aborted")).to_contain_text(
        "aborted by the E-STOP. Close and retry"
    )
    expect(page.locator("#wizard-aborted-reason")).to_have_text("emergency stop")
    expect(button(page, "Done sweeping")).to_be_disabled()
    assert daemon.pair()["state"] == "paused"


def test_an_unplug_mid_sweep_shows_the_abort_banner_with_the_actions_disabled(
    page: Any, running: tuple[Daemon, WebProcess], pair: PairSetup
) -> None:
    daemon, _ = running
    sweeping(page, "leader")
    pair.leader.set_motion("sweep")
    wait_for(lambda: state(daemon)["joints"]["shoulder_pan"]["range"] > 300)
    pair.leader.unplug()
    expect(page.locator("#wizard-aborted")).to_contain_text(ABORTED)
    expect(page.locator("#wizard-aborted-reason")).to_contain_text("the leader's board went away")
    expect(button(page, "Done sweeping")).to_be_disabled()
    expect(button(page, "Cancel")).to_be_hidden()
    button(page, "Close").click()
    expect(page.locator("#wizard")).to_be_hidden()
    pair.leader.replug()
    daemon.wait_state("teleop")


def test_the_missing_calibration_banner_appears_and_disappears(
    page: Any, running: tuple[Daemon, WebProcess], pair: PairSetup, work: Path
) -> None:
    root = work / "calibration"
    banner = page.get_by_role("region", name="Missing calibration")
    expect(page.get_by_label("Calibration of the follower")).to_contain_text("OK")
    expect(banner).to_be_empty()
    calibration_path(root, Role.FOLLOWER, "main_follower").unlink()
    expect(banner).to_contain_text("Arm follower of pair main has no calibration file")
    expect(banner.get_by_role("button", name="Calibrate follower")).to_be_visible()
    expect(page.get_by_label("Calibration of the follower")).to_contain_text("MISSING")
    save_matching_calibration(pair.follower, root, "main_follower")
    expect(banner).to_be_empty()
    expect(page.get_by_label("Calibration of the follower")).to_contain_text("OK")


def test_the_dashboard_shows_the_pair_its_telemetry_and_its_precheck(
    page: Any, running: tuple[Daemon, WebProcess]
) -> None:
    pair_view = page.get_by_label("Pair main")
    expect(pair_view.locator(".state-name")).to_have_text("teleop")
    expect(pair_view.locator(".rate")).not_to_have_text("0.0 Hz")
    expect(pair_view.locator(".motors tbody tr")).to_have_count(6)
    expect(pair_view.locator(".precheck")).to_contain_text("motors answer")
    pair_view.get_by_role("button", name="Pause").click()
    expect(pair_view.locator(".state-name")).to_have_text("paused")
    pair_view.get_by_role("button", name="Resume").click()
    expect(pair_view.locator(".state-name")).to_have_text("teleop")


STREAM_UPDATES = """() => new Promise((done) => {
  let updates = 0;
  const observer = new MutationObserver(() => {
    if (++updates >= 5) { observer.disconnect(); done(); }
  });
  observer.observe(document.querySelector(".motors tbody"), { childList: true });
})"""


def test_the_calibrate_buttons_stay_put_while_the_stream_updates_the_page(
    page: Any, running: tuple[Daemon, WebProcess]
) -> None:
    """A button replaced between a tap's press and release loses the tap (and the focus)."""
    expect(page.locator(".state-name")).to_have_text("teleop")
    card = page.get_by_label("Calibration of the leader")
    calibrate = card.get_by_role("button", name="Calibrate leader").element_handle()
    calibrate.focus()
    page.evaluate(STREAM_UPDATES)  # five snapshots drawn: the motor table redrawn each time
    assert calibrate.evaluate("(b) => b.isConnected && document.activeElement === b")
    page.mouse.move(*centre(calibrate))
    page.mouse.down()
    page.evaluate(STREAM_UPDATES)  # a slow tap, across a second of updates
    page.mouse.up()
    expect(card.get_by_role("button", name="Calibrate by hand")).to_be_visible()


def centre(handle: Any) -> tuple[float, float]:
    box = handle.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
