"""``so101d precheck``: the no-motion checks offline, as a person runs them before teleop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from so101d.feetech import FeetechBus, register
from so101d.feetech.protocol import Packet
from so101d.sim import Fault, VirtualArm
from so101d.sim.wire import Reply
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
    assert "4 (wrist_flex)" in report["fault"] and "silent for 1000 ms" in report["fault"]
    motors = next(c for c in report["checks"] if c["check"] == "motors answer")
    assert motors["follower"]["status"] == "fail" and motors["leader"]["status"] == "ok"


def test_a_port_held_by_another_process_is_explained(setup: tuple[PairSetup, Path]) -> None:
    pair, config = setup
    with FeetechBus(pair.follower.link):  # as the running daemon would hold it
        result = so101d("precheck", "--config", str(config))
    assert result.returncode == 1
    (fault,) = [line for line in result.stdout.splitlines() if "FAIL" in line]
    assert fault == (
        f"  FAIL: follower: port {pair.follower.link}: another process holds this port "
        "(so101d's service, or lerobot-teleoperate?)"
    )


def test_an_unknown_pair_is_a_usage_error(setup: tuple[PairSetup, Path]) -> None:
    _, config = setup
    result = so101d("precheck", "--config", str(config), "--pair", "left")
    assert result.returncode == 2
    assert "no pair named 'left'" in result.stderr and "main" in result.stderr


def test_an_unreadable_eeprom_is_a_failed_check_never_a_match(
    setup: tuple[PairSetup, Path],
) -> None:
    pair, config = setup
    limit = bytes((register("Min_Position_Limit").address,))

    def drop_limit_reads(request: Packet, replies: list[Reply]) -> list[Reply]:
        return [] if request.params[:1] == limit else replies

    pair.follower.tap(drop_limit_reads)
    result = so101d("precheck", "--config", str(config), "--json")
    report = json.loads(result.stdout)["main"]
    eeprom = next(c for c in report["checks"] if c["check"] == "EEPROM = file")
    assert eeprom["follower"]["status"] == "fail", eeprom
    assert "EEPROM unreadable" in report["fault"]
    assert result.returncode == 1


def test_a_holding_follower_is_left_holding(setup: tuple[PairSetup, Path]) -> None:
    pair, config = setup
    with FeetechBus(pair.follower.link) as bus:
        for motor in range(1, 7):
            bus.write("Torque_Enable", motor, 1)
    before = pair.follower.joint_angles()
    result = so101d("precheck", "--config", str(config))
    assert "holding (6/6)" in result.stdout and "keeps holding" in result.stdout
    assert torque_enabled(pair.follower) == [1] * 6
    after = pair.follower.joint_angles()
    assert all(abs(before[j] - after[j]) < 0.5 for j in before)


def test_a_motor_answering_late_a_few_times_is_retried_not_missing(
    setup: tuple[PairSetup, Path],
) -> None:
    pair, config = setup
    pair.follower.inject(Fault.LATE_REPLY, motor=6, value=0.03, count=2)  # beyond the 25 ms
    result = so101d("precheck", "--config", str(config), "--json")
    report = json.loads(result.stdout)["main"]
    assert result.returncode == 0, report
    assert any("6 (gripper) answered only after" in w for w in report["warnings"]), report


def test_a_motor_always_late_is_a_transient_fault_not_a_missing_one(
    setup: tuple[PairSetup, Path],
) -> None:
    pair, config = setup
    pair.follower.inject(Fault.LATE_REPLY, motor=6, value=0.03)
    result = so101d("precheck", "--config", str(config), "--json")
    report = json.loads(result.stdout)["main"]
    assert result.returncode == 1
    assert not report["latched"], report["fault"]
    assert "late" in report["fault"] and report["fault"].endswith("(transient)")
    assert "do not answer" not in report["fault"] and "cables" not in report["fault"]


def test_corrupt_replies_are_reported_as_corrupt(setup: tuple[PairSetup, Path]) -> None:
    pair, config = setup
    pair.follower.inject(Fault.CORRUPT_CHECKSUM, motor=6)
    result = so101d("precheck", "--config", str(config), "--json")
    report = json.loads(result.stdout)["main"]
    assert result.returncode == 1
    assert not report["latched"]
    assert "6 (gripper) sent only corrupt replies" in report["fault"], report["fault"]
    assert "do not answer" not in report["fault"]
