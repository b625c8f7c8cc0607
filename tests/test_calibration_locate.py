"""Finding calibration files where LeRobot keeps them, in both directory layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from so101d.calibration.files import serialize_calibration
from so101d.calibration.locate import (
    Layout,
    calibration_path,
    check_arm_id,
    find_calibrations,
    infer_role,
    lerobot_calibration_root,
    locate_calibration,
    other_layout_path,
)
from so101d.calibration.model import Role
from tests.lerobot_env import LeRobotScript
from tests.test_calibration_healthy import REAL_FOLLOWER, REFERENCE_FOLLOWER, arm, write

ROOT_VARIABLES = ("HOME", "XDG_CACHE_HOME", "HF_HOME", "HF_LEROBOT_HOME", "HF_LEROBOT_CALIBRATION")


def environments(home: Path) -> list[dict[str, str]]:
    """Each way of choosing the root, alone and overriding the ones below it."""
    return [
        {"HOME": str(home)},
        {"HOME": str(home), "XDG_CACHE_HOME": str(home / "xdg")},
        {"HOME": str(home), "XDG_CACHE_HOME": str(home / "xdg"), "HF_HOME": "~/hf"},
        {"HOME": str(home), "HF_HOME": "$HOME/hf-vars"},
        {"HOME": str(home), "HF_HOME": str(home / "hf"), "HF_LEROBOT_HOME": "~/lr"},
        {"HOME": str(home), "HF_LEROBOT_HOME": str(home / "lr"), "HF_LEROBOT_CALIBRATION": "~/c"},
    ]


def our_root(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Path:
    for name in ROOT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return lerobot_calibration_root()


def test_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    roots = [our_root(monkeypatch, env) for env in environments(tmp_path)]
    assert roots == [
        tmp_path / ".cache/huggingface/lerobot/calibration",
        tmp_path / "xdg/huggingface/lerobot/calibration",
        tmp_path / "hf/lerobot/calibration",
        tmp_path / "hf-vars/lerobot/calibration",
        tmp_path / "lr/calibration",
        tmp_path / "c",
    ]


@pytest.mark.lerobot
def test_root_is_the_one_lerobot_resolves(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    request = tmp_path / "roots.json"
    request.write_text(json.dumps(environments(tmp_path)))
    results = LeRobotScript("calibration_files.py", "roots", str(request)).finish()
    assert len(results) == len(environments(tmp_path))
    for result in results:
        assert our_root(monkeypatch, result["env"]) == Path(result["root"]), result["env"]


@pytest.mark.parametrize(
    ("role", "layout", "relative"),
    [
        (Role.FOLLOWER, Layout.SO, "robots/so_follower/arm.json"),
        (Role.LEADER, Layout.SO, "teleoperators/so_leader/arm.json"),
        (Role.FOLLOWER, Layout.SO101, "robots/so101_follower/arm.json"),
        (Role.LEADER, Layout.SO101, "teleoperators/so101_leader/arm.json"),
    ],
)
def test_paths_per_layout(role: Role, layout: Layout, relative: str) -> None:
    assert calibration_path(Path("/r"), role, "arm", layout) == Path("/r") / relative


@pytest.mark.parametrize("bad", ["", ".", "..", "../etc/x", "a/b", "nul\0"])
def test_ids_that_are_not_plain_file_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        check_arm_id(bad)


def test_the_current_layout_is_preferred_and_the_old_one_found(tmp_path: Path) -> None:
    old = write(calibration_path(tmp_path, Role.FOLLOWER, "a", Layout.SO101), arm(REAL_FOLLOWER))
    assert locate_calibration(tmp_path, Role.FOLLOWER, "a").path == old
    new = write(calibration_path(tmp_path, Role.FOLLOWER, "a"), arm(REAL_FOLLOWER))
    located = locate_calibration(tmp_path, Role.FOLLOWER, "a")
    assert located.path == new
    assert located.paths == {Layout.SO: new, Layout.SO101: old}
    assert not located.conflict


def test_layouts_that_disagree_are_reported(tmp_path: Path) -> None:
    write(calibration_path(tmp_path, Role.LEADER, "a", Layout.SO101), arm(REAL_FOLLOWER))
    write(calibration_path(tmp_path, Role.LEADER, "a"), arm(REFERENCE_FOLLOWER))
    assert locate_calibration(tmp_path, Role.LEADER, "a").conflict


def test_formatting_alone_is_no_disagreement(tmp_path: Path) -> None:
    calibration = arm(REAL_FOLLOWER)
    write(calibration_path(tmp_path, Role.LEADER, "a", Layout.SO101), calibration)
    write(calibration_path(tmp_path, Role.LEADER, "a"), serialize_calibration(calibration) + b"\n")
    assert not locate_calibration(tmp_path, Role.LEADER, "a").conflict


def test_nothing_found_says_where_it_looked(tmp_path: Path) -> None:
    located = locate_calibration(tmp_path, Role.LEADER, "x")
    assert located.path is None
    assert located.searched == [
        tmp_path / "teleoperators/so_leader/x.json",
        tmp_path / "teleoperators/so101_leader/x.json",
    ]


def test_find_every_arm_of_both_roles_and_layouts(tmp_path: Path) -> None:
    for role, ident, layout in [
        (Role.FOLLOWER, "f1", Layout.SO),
        (Role.FOLLOWER, "f1", Layout.SO101),
        (Role.FOLLOWER, "f0", Layout.SO101),
        (Role.LEADER, "l", Layout.SO),
    ]:
        write(calibration_path(tmp_path, role, ident, layout), arm(REAL_FOLLOWER))
    write(tmp_path / "robots/so_follower/notes.txt", b"not a calibration")
    found = [(a.role, a.arm_id, list(a.paths)) for a in find_calibrations(tmp_path)]
    assert found == [
        (Role.LEADER, "l", [Layout.SO]),
        (Role.FOLLOWER, "f0", [Layout.SO101]),
        (Role.FOLLOWER, "f1", [Layout.SO, Layout.SO101]),
    ]


def test_other_layout_path() -> None:
    root = Path("/r")
    so, so101 = root / "robots/so_follower/a.json", root / "robots/so101_follower/a.json"
    assert other_layout_path(so) == so101
    assert other_layout_path(so101) == so
    assert other_layout_path(root / "teleoperators/so_leader/b.json") == (
        root / "teleoperators/so101_leader/b.json"
    )
    assert other_layout_path(root / "elsewhere/a.json") is None


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("r/teleoperators/so_leader/x.json", Role.LEADER),
        ("r/robots/so101_follower/x.json", Role.FOLLOWER),
        ("cal/my_leader.json", Role.LEADER),
        ("cal/x.json", None),
        ("leader_vs_follower/x.json", None),
    ],
)
def test_role_from_the_path(path: str, role: Role | None) -> None:
    assert infer_role(Path(path)) is role
