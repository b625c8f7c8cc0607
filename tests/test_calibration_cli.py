"""``so101d validate`` and ``so101d import-calibration``, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from so101d.calibration.files import read_calibration
from so101d.calibration.locate import Layout, calibration_path
from so101d.calibration.model import JOINTS, Role
from so101d.calibration.store import backups
from so101d.checking import ArmFiles, load_pair_calibration
from so101d.faults import PairFault
from tests.commands import so101d
from tests.test_calibration_files import PRE_2025_FILE
from tests.test_calibration_healthy import (
    REAL_FOLLOWER,
    REAL_LEADER,
    REFERENCE_FOLLOWER,
    arm,
    changed,
    write,
)

FOLLOWER = arm(REFERENCE_FOLLOWER)
WRAPPED = changed(FOLLOWER, "shoulder_lift", range_min=0, range_max=4050)


def validate_json(*args: str) -> tuple[int, list[dict[str, Any]]]:
    result = so101d("validate", "--json", *args)
    return result.returncode, json.loads(result.stdout)


# -- validate ------------------------------------------------------------------------------


def test_a_usable_file_prints_the_table_and_exits_0(tmp_path: Path) -> None:
    path = write(calibration_path(tmp_path, Role.FOLLOWER, "f"), arm(REAL_FOLLOWER))
    result = so101d("validate", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path} (follower): usable, 3 warnings"
    assert lines[1].split() == [
        "joint",
        "id",
        "homing",
        "min",
        "max",
        "range",
        "mid",
        "reference",
        "deviation",
        "verdict",
    ]
    assert [line.split()[0] for line in lines[2:8]] == list(JOINTS)
    assert lines[2].split()[-3:] == ["(2661-2789)", "-9.0\N{GREEK SMALL LETTER SIGMA}", "warning"]
    assert "warning: shoulder_pan range is 2436 ticks" in result.stdout


def test_any_file_with_an_error_exits_1(tmp_path: Path) -> None:
    good = write(tmp_path / "good_follower.json", FOLLOWER)
    bad = write(tmp_path / "bad_follower.json", WRAPPED)
    result = so101d("validate", str(good), str(bad))
    assert result.returncode == 1
    assert f"{good} (follower): usable" in result.stdout
    assert f"{bad} (follower): NOT USABLE, 1 error" in result.stdout
    assert "error: shoulder_lift range 0..4050 (4050 ticks) spans nearly the whole" in (
        result.stdout
    )


@pytest.mark.parametrize("content", [None, b"not json", PRE_2025_FILE])
def test_unreadable_and_unusable_files_exit_1(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "arm.json"
    if content is not None:
        write(path, content)
    result = so101d("validate", str(path))
    assert result.returncode == 1
    assert f"{path} (role unknown): NOT USABLE" in result.stdout


@pytest.mark.parametrize("args", [[], ["--role", "driver", "x.json"], ["--bogus", "x.json"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = so101d("validate", *args)
    assert result.returncode == 2
    assert "usage: so101d" in result.stderr


def test_json_gives_one_object_per_file_with_every_finding(tmp_path: Path) -> None:
    good = write(tmp_path / "a.json", FOLLOWER)
    bad = write(tmp_path / "b.json", WRAPPED)
    code, objects = validate_json("--role", "follower", str(good), str(bad))
    assert code == 1
    assert [(o["path"], o["role"], o["verdict"], o["usable"]) for o in objects] == [
        (str(good), "follower", "ok", True),
        (str(bad), "follower", "error", False),
    ]
    (finding,) = objects[1]["findings"]
    assert set(finding) == {"joint", "level", "code", "message"}
    assert (finding["joint"], finding["level"], finding["code"]) == (
        "shoulder_lift",
        "error",
        "encoder_wrap",
    )
    joints = objects[0]["joints"]
    assert [row["joint"] for row in joints] == list(JOINTS)
    assert joints[0]["deviation_sigma"] == 0.0


def test_a_leader_and_a_follower_are_also_checked_as_a_pair(tmp_path: Path) -> None:
    leader = changed(arm(REAL_LEADER), "wrist_flex", range_min=1300, range_max=3640)
    leader_path = write(calibration_path(tmp_path, Role.LEADER, "l"), leader)
    follower_path = write(calibration_path(tmp_path, Role.FOLLOWER, "f"), FOLLOWER)
    code, objects = validate_json(str(leader_path), str(follower_path))
    assert code == 0
    assert objects[0]["findings"] == []
    assert [f["code"] for f in objects[1]["findings"]] == ["pair_midpoint_mismatch"]


# -- import-calibration --------------------------------------------------------------------


def import_calibration(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return so101d("import-calibration", *args, env=env)


def files_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def test_import_copies_the_file_byte_for_byte(tmp_path: Path) -> None:
    source = write(calibration_path(tmp_path / "lerobot", Role.FOLLOWER, "f"), FOLLOWER)
    dest = tmp_path / "daemon"
    result = import_calibration(
        "--role", "follower", "--id", "f", "--from", str(tmp_path / "lerobot"), "--to", str(dest)
    )
    assert result.returncode == 0, result.stderr
    target = dest / "robots/so_follower/f.json"
    assert files_under(dest) == [target]
    assert target.read_bytes() == source.read_bytes()
    assert f"imported {source} -> {target}" in result.stdout


def test_import_goes_to_the_configured_calibration_dir(tmp_path: Path) -> None:
    source = write(calibration_path(tmp_path / "lerobot", Role.FOLLOWER, "f"), FOLLOWER)
    configured = tmp_path / "elsewhere"
    config = tmp_path / "config.toml"
    config.write_text(
        f'calibration_dir = "{configured}"\n[pair.main]\n'
        'leader.port = "/dev/l"\nleader.id = "l"\nfollower.port = "/dev/f"\nfollower.id = "f"\n'
    )
    result = import_calibration(
        "--role", "follower", "--id", "f", "--from", str(source.parents[2]), "--config", str(config)
    )
    assert result.returncode == 0, result.stderr
    assert files_under(configured) == [configured / "robots/so_follower/f.json"]


def test_the_daemons_import_hint_names_the_configured_calibration_dir(tmp_path: Path) -> None:
    configured = tmp_path / "elsewhere"
    with pytest.raises(PairFault) as caught:
        load_pair_calibration(
            configured,
            ArmFiles(Role.LEADER, "l", dict.fromkeys(JOINTS, 1)),
            ArmFiles(Role.FOLLOWER, "f", dict.fromkeys(JOINTS, 1)),
        )
    hint = f"so101d import-calibration --role leader --id l --to {configured}`"
    assert hint in caught.value.reason


def test_import_takes_lerobots_own_root_and_the_old_layout(tmp_path: Path) -> None:
    root = tmp_path / "lerobot"
    write(calibration_path(root, Role.LEADER, "l", Layout.SO101), arm(REAL_LEADER))
    dest = tmp_path / "daemon"
    env = {"HF_LEROBOT_CALIBRATION": str(root)}
    result = import_calibration("--role", "leader", "--id", "l", "--to", str(dest), env=env)
    assert result.returncode == 0, result.stderr
    assert files_under(dest) == [dest / "teleoperators/so_leader/l.json"]


def test_import_refuses_a_file_with_an_error_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "lerobot"
    write(calibration_path(root, Role.FOLLOWER, "f"), WRAPPED)
    dest = tmp_path / "daemon"
    result = import_calibration(
        "--role", "follower", "--id", "f", "--from", str(root), "--to", str(dest)
    )
    assert result.returncode == 1
    assert "error: shoulder_lift range 0..4050" in result.stdout
    assert "nothing imported" in result.stderr
    assert not dest.exists()


def test_import_all_is_all_or_nothing(tmp_path: Path) -> None:
    root, dest = tmp_path / "lerobot", tmp_path / "daemon"
    write(calibration_path(root, Role.FOLLOWER, "f"), FOLLOWER)
    write(calibration_path(root, Role.LEADER, "l"), arm(REAL_LEADER))
    result = import_calibration("--all", "--from", str(root), "--to", str(dest))
    assert result.returncode == 0, result.stderr
    assert files_under(dest) == [
        dest / "robots/so_follower/f.json",
        dest / "teleoperators/so_leader/l.json",
    ]
    write(calibration_path(root, Role.LEADER, "broken"), b"{")
    write(calibration_path(root, Role.FOLLOWER, "f"), arm(REAL_FOLLOWER))
    result = import_calibration("--all", "--from", str(root), "--to", str(dest))
    assert result.returncode == 1
    assert len(files_under(dest)) == 2
    assert read_calibration(dest / "robots/so_follower/f.json") == FOLLOWER


def test_reimport_keeps_a_backup_and_unchanged_is_up_to_date(tmp_path: Path) -> None:
    root, dest = tmp_path / "lerobot", tmp_path / "daemon"
    args = ["--role", "follower", "--id", "f", "--from", str(root), "--to", str(dest)]
    write(calibration_path(root, Role.FOLLOWER, "f"), FOLLOWER)
    assert import_calibration(*args).returncode == 0
    again = import_calibration(*args)
    assert "already up to date" in again.stdout
    write(calibration_path(root, Role.FOLLOWER, "f"), arm(REAL_FOLLOWER))
    assert import_calibration(*args).returncode == 0
    assert len(backups(dest / "robots/so_follower/f.json")) == 1


def test_import_reports_layouts_that_disagree(tmp_path: Path) -> None:
    root, dest = tmp_path / "lerobot", tmp_path / "daemon"
    current = write(calibration_path(root, Role.FOLLOWER, "f"), FOLLOWER)
    old = write(calibration_path(root, Role.FOLLOWER, "f", Layout.SO101), arm(REAL_FOLLOWER))
    result = import_calibration(
        "--role", "follower", "--id", "f", "--from", str(root), "--to", str(dest)
    )
    assert result.returncode == 0
    assert (
        f"calibrations in the two LeRobot layouts: {current} (LeRobot 0.4.3 and later) and "
        f"{old} (LeRobot up to 0.4.2); importing the first"
    ) in result.stdout


def test_import_of_a_missing_arm_says_where_it_looked(tmp_path: Path) -> None:
    result = import_calibration(
        "--role", "leader", "--id", "x", "--from", str(tmp_path), "--to", str(tmp_path / "d")
    )
    assert result.returncode == 1
    assert f"looked for {tmp_path}/teleoperators/so_leader/x.json and " in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--id", "x"],
        ["--role", "leader"],
        ["--all", "--id", "x", "--role", "leader"],
        ["--role", "leader", "--id", "../x"],
    ],
)
def test_import_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = import_calibration(*args, "--from", str(tmp_path), "--to", str(tmp_path / "d"))
    assert result.returncode == 2
    assert "so101d import-calibration: error:" in result.stderr
