"""``so101d calibrate`` driven in a pseudo-terminal, as a person drives it: through the daemon
(with a wizard killed mid-sweep and another re-attaching), directly on the ports when no
daemon runs, Ctrl-C, and no terminal at all."""

from __future__ import annotations

from pathlib import Path

from so101d.calibration.model import Role
from tests.arms import bus_on
from tests.calibrating import (
    assert_backup_and_sibling,
    assert_eeprom_holds,
    assert_saved_true_travel,
    state,
)
from tests.commands import so101d
from tests.daemon_harness import PairSetup, StartDaemon, torque_enabled
from tests.pty_terminal import Terminal
from tests.test_daemon import assert_clean_log
from tests.test_daemon_calibrate import LEADER_ID, in_teleop_with_an_old_leader_file
from tests.waiting import wait_for

CAPTURE = "then press Enter to capture"
SWEEP = "from end stop to end stop, then press Enter"
REVIEW = "Press y to save"


def test_the_wizard_calibrates_through_the_daemon_and_re_attaches(
    pair: PairSetup, start_daemon: StartDaemon, work: Path
) -> None:
    root = work / "calibration"
    daemon, path = in_teleop_with_an_old_leader_file(pair, start_daemon, root)
    config = ("--config", str(daemon.config))

    first = Terminal("calibrate", *config, "--arm", "leader")
    try:
        first.wait_for(CAPTURE)
        assert "shoulder_lift" in first.screen()
        first.type("\r")
        first.wait_for(SWEEP)
        pair.leader.set_motion("sweep")
        wait_for(lambda: state(daemon)["joints"]["shoulder_pan"]["range"] > 1000)
    finally:
        first.close()  # the terminal goes away mid-sweep; the session goes on

    second = Terminal("calibrate", *config)
    try:
        second.wait_for("re-attaching to session 1 at step sweeping")
        wait_for(pair.leader.sweep_done, timeout=120, interval=0.1)
        second.wait_for("wrist_roll")
        assert "crosses the encoder seam" not in second.screen()
        second.type("\r")
        second.wait_for(REVIEW)
        review = second.screen()
        assert "validator: ok" in review or "warning:" in review, review
        assert f"file: {path}" in review
        second.type("y")
        assert second.wait() == 0, second.screen()
        assert "after `so101d calibrate` started" in second.output
    finally:
        second.close()

    saved = assert_saved_true_travel(path, pair.leader)
    assert_eeprom_holds(pair.leader, saved)
    assert_backup_and_sibling(root, Role.LEADER, LEADER_ID)
    daemon.wait_state("teleop")
    assert_clean_log(daemon)


def test_without_a_daemon_the_wizard_works_on_the_ports_and_ctrl_c_aborts(
    pair: PairSetup, work: Path
) -> None:
    config = work / "config.toml"
    config.write_text(
        f'calibration_dir = "{work / "calibration"}"\nsocket = "{work / "api.sock"}"\n\n'
        + pair.toml()
    )
    for motor in pair.follower.motor_ids:  # a follower left holding: the session limps it
        servo = pair.follower.servo(motor)
        servo.set("Goal_Position", servo.get("Present_Position"))
        servo.set("Torque_Enable", 1)
    terminal = Terminal("calibrate", "--config", str(config), "--arm", "follower")
    try:
        terminal.wait_for("no daemon running: calibrating directly on the port")
        terminal.wait_for(CAPTURE)
        assert torque_enabled(pair.follower) == [0] * 6
        terminal.type("\x03")
        assert terminal.wait() == 130
        assert "aborted: aborted by request" in terminal.output
    finally:
        terminal.close()
    with bus_on(pair.follower.link):  # the port is free again
        pass


def test_not_a_terminal_is_a_clear_error() -> None:
    result = so101d("calibrate", "--arm", "leader")
    assert result.returncode == 2
    assert "so101d calibrate needs a terminal" in result.stderr
