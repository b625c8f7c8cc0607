"""``so101d calibrate --auto`` as a user runs it: no terminal and no ``--yes`` refuses to move;
on a terminal it says what moves and asks first, and a "no" moves nothing; ``--yes`` without a
terminal runs to a saved file and writes the telemetry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from so101d.calibration.locate import calibration_path
from so101d.calibration.model import Role
from tests.calibrating import state
from tests.commands import so101d
from tests.daemon_harness import PairSetup, StartDaemon, torque_enabled
from tests.pty_terminal import Terminal


def test_no_terminal_and_no_yes_refuses_to_move(pair: PairSetup, start_daemon: StartDaemon) -> None:
    daemon = start_daemon(pair)
    daemon.wait_state("teleop")
    result = so101d("calibrate", "--config", str(daemon.config), "--auto", "--arm", "follower")
    assert result.returncode == 2
    assert "refusing to move the arm" in result.stderr and "--yes" in result.stderr
    assert state(daemon) == {"session": None}  # no session: nothing paused, nothing moved


def test_on_a_terminal_it_says_what_moves_and_a_no_moves_nothing(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = start_daemon(pair)
    daemon.wait_state("teleop")
    terminal = Terminal("calibrate", "--config", str(daemon.config), "--auto", "--arm", "follower")
    try:
        terminal.wait_for("Move the arm now? [y/N]")
        assert "the follower will move on its own" in terminal.output
        assert "shoulder_pan" in terminal.output and "about" in terminal.output
        assert torque_enabled(pair.follower) == [0] * 6
        terminal.type("n\r")
        assert terminal.wait() == 1
        assert "aborted: nothing moved" in terminal.output
    finally:
        terminal.close()
    ended = state(daemon)
    assert ended["step"] == "aborted"
    assert ended["auto"]["samples"] == 0 and ended["auto"]["progress"] is None, ended["auto"]
    daemon.wait_state("teleop")


@pytest.mark.timeout(300)
def test_yes_without_a_terminal_saves_the_file_and_the_telemetry(
    pair: PairSetup, start_daemon: StartDaemon, work: Path
) -> None:
    daemon = start_daemon(pair)
    daemon.wait_state("teleop")
    telemetry = work / "samples.json"
    result = so101d(
        "calibrate",
        "--config",
        str(daemon.config),
        "--auto",
        "--arm",
        "follower",
        "--yes",
        "--save-telemetry",
        str(telemetry),
        timeout=280,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "6/6 motors" in result.stdout and "saved:" in result.stdout, result.stdout
    samples = json.loads(telemetry.read_text())
    assert len(samples) > 500
    assert set(samples[0]) == {
        "time",
        "joint",
        "position",
        "goal",
        "current_ma",
        "load",
        "temperature_c",
    }
    path = calibration_path(work / "calibration", Role.FOLLOWER, "main_follower")
    saved = json.loads(path.read_bytes())
    assert all(0 <= v["range_min"] < v["range_max"] <= 4095 for v in saved.values())
    daemon.wait_state("teleop")
