"""``so101d precheck``: the no-motion checks offline, as a person runs them before teleop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from so101d.feetech import FeetechBus
from so101d.sim import Fault, VirtualArm
from tests.commands import so101d
from tests.daemon_harness import PairSetup, torque_enabled


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[PairSetup, Path]]:
    with (
        VirtualArm("leader", tmp_path / "so101_leader", seed=1) as leader,
        VirtualArm("follower", tmp_path / "so101_follower", seed=2) as follower,
    ):
        pair = PairSetup("main", leader, follower)
        pair.save_calibrations(tmp_path / "calibration")
        config = tmp_path / "config.toml"
        config.write_text(
            f'calibration_dir = "{tmp_path / "calibration"}"\n'
            f'socket = "{tmp_path / "api.sock"}"\n\n' + pair.toml()
        )
        yield pair, config


def test_a_healthy_pair_passes_without_moving(setup: tuple[PairSetup, Path]) -> None:
    pair, config = setup
    before = pair.follower.joint_angles()
    result = so101d("precheck", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("motors answer", "firmware", "supply", "temperature", "positions"):
        assert check in result.stdout
    assert "5.0 V" in result.stdout and "12.0 V" in result.stdout
    assert "OK: ready for teleop" in result.stdout
    after = pair.follower.joint_angles()
    assert all(abs(before[j] - after[j]) < 0.5 for j in before)
    assert torque_enabled(pair.follower) == [0] * 6


def test_json_names_the_missing_motor(setup: tuple[PairSetup, Path]) -> None:
    pair, config = setup
    pair.follower.inject(Fault.MISSING_MOTOR, motor=4)
    result = so101d("precheck", "--config", str(config), "--pair", "main", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)["main"]
    assert not report["ok"] and report["latched"]
    assert "4 (wrist_flex)" in report["fault"]
    motors = next(c for c in report["checks"] if c["check"] == "motors answer")
    assert motors["follower"]["status"] == "fail" and motors["leader"]["status"] == "ok"


def test_a_port_held_by_another_process_is_explained(setup: tuple[PairSetup, Path]) -> None:
    pair, config = setup
    with FeetechBus(pair.follower.link):  # as the running daemon would hold it
        result = so101d("precheck", "--config", str(config))
    assert result.returncode == 1
    assert "another process holds this port" in result.stdout


def test_an_unknown_pair_is_a_usage_error(setup: tuple[PairSetup, Path]) -> None:
    _, config = setup
    result = so101d("precheck", "--config", str(config), "--pair", "left")
    assert result.returncode == 2
    assert "no pair named 'left'" in result.stderr and "main" in result.stderr
