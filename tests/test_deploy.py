"""``deploy/install.sh`` and ``deploy/uninstall.sh`` into a staging root (``--root``).

The staged tree stands for a Pi: what install declares is there, a second run changes no
byte, mode or link, and uninstall takes it all away again except config and calibration.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from so101d.calibration.locate import calibration_path
from so101d.calibration.model import Role
from so101d.sim import VirtualArm
from tests.test_calibration_healthy import REAL_FOLLOWER, REAL_LEADER, arm, write

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "deploy/install.sh"
UNINSTALL = REPO / "deploy/uninstall.sh"
PASSWD = "root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n"
GROUP = "root:x:0:\ndialout:x:20:pi\npi:x:1000:\n"
UNIT = "etc/systemd/system/lerobot.service"
RULES = "etc/udev/rules.d/70-so101d.rules"
CONFIG = "etc/so101d/config.toml"
CALIBRATION = "var/lib/so101d/calibration"


def run(script: Path, *args: str, sudo_user: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "SUDO_USER"}
    if sudo_user:
        env["SUDO_USER"] = sudo_user
    result = subprocess.run(
        [str(script), *args], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def install(root: Path, *args: str, sudo_user: str | None = None) -> str:
    fast = ("--skip-venv", "--python", sys.executable)
    return run(INSTALL, "--root", str(root), *fast, *args, sudo_user=sudo_user)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its type, mode and content hash or link target."""
    state = {}
    for path in sorted(root.rglob("*")):
        mode = f"{path.lstat().st_mode:o}"
        if path.is_symlink():
            state[str(path.relative_to(root))] = f"{mode} -> {os.readlink(path)}"
        elif path.is_file():
            state[str(path.relative_to(root))] = (
                f"{mode} {hashlib.sha256(path.read_bytes()).hexdigest()}"
            )
        else:
            state[str(path.relative_to(root))] = mode
    return state


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir() or p.is_symlink()}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A staging root with the accounts of a fresh Raspberry Pi OS."""
    staged = tmp_path / "root"
    (staged / "etc").mkdir(parents=True)
    (staged / "etc/passwd").write_text(PASSWD)
    (staged / "etc/group").write_text(GROUP)
    return staged


@pytest.fixture
def lerobot_cache(tmp_path: Path) -> Path:
    """A user's LeRobot calibration directory with a leader and a follower."""
    cache = tmp_path / "cache"
    write(calibration_path(cache, Role.LEADER, "main_leader"), arm(REAL_LEADER))
    write(calibration_path(cache, Role.FOLLOWER, "main_follower"), arm(REAL_FOLLOWER))
    return cache


@pytest.fixture
def boards(tmp_path: Path) -> Iterator[Path]:
    """Both arms plugged in (simulated), listed as --devices-from wants them."""
    with (
        VirtualArm("leader", tmp_path / "leader") as leader,
        VirtualArm("follower", tmp_path / "follower") as follower,
    ):
        listing = [
            {"device_node": str(arm.link), "vendor_id": "1a86", "product_id": "55d3",
             "serial": serial, "by_path": None, "by_id": None, "model": None, "vendor": None}
            for arm, serial in ((follower, "5A46083071"), (leader, "5A46083062"))
        ]  # fmt: skip
        path = tmp_path / "boards.json"
        path.write_text(json.dumps(listing))
        yield path


@pytest.fixture
def no_boards(tmp_path: Path) -> str:
    path = tmp_path / "none.json"
    path.write_text("[]")
    return str(path)


def test_install_puts_everything_in_place_and_a_second_run_changes_nothing(
    root: Path, lerobot_cache: Path, boards: Path
) -> None:
    args = ("--calibration-from", str(lerobot_cache), "--devices-from", str(boards))
    install(root, *args)

    unit = (root / UNIT).read_text()
    assert "ExecStart=/opt/so101d/venv/bin/so101d run --config /etc/so101d/config.toml\n" in unit
    assert "User=so101d\n" in unit
    rules = (root / RULES).read_text()
    assert 'ENV{ID_SERIAL_SHORT}=="5A46083062", SYMLINK+="so101_leader"' in rules
    assert 'ENV{ID_SERIAL_SHORT}=="5A46083071", SYMLINK+="so101_follower"' in rules
    assert (root / CONFIG).read_text() == (REPO / "deploy/config.example.toml").read_text()
    assert os.readlink(root / "usr/local/bin/so101d") == "/opt/so101d/venv/bin/so101d"
    assert (root / CALIBRATION / "teleoperators/so_leader/main_leader.json").is_file()
    assert (root / CALIBRATION / "robots/so_follower/main_follower.json").is_file()
    passwd = (root / "etc/passwd").read_text()
    assert passwd == PASSWD + (
        "so101d:x:999:999:so101d teleoperation daemon:/var/lib/so101d:/usr/sbin/nologin\n"
    )
    assert (root / "etc/group").read_text() == GROUP + "so101d:x:999:\n"  # not in dialout
    for line in rules.splitlines():
        if "SYMLINK" in line:
            assert line.endswith('GROUP="so101d", MODE="0660"'), line

    before = snapshot(root)
    output = install(root, *args)
    assert snapshot(root) == before
    assert f"keeping {root / CONFIG}" in output
    assert f"keeping {root / RULES}" in output
    assert "keeping the calibration" in output


def test_an_upgrade_takes_the_boards_and_the_user_out_of_dialout(
    root: Path, no_boards: str
) -> None:
    """What earlier versions installed: the user in dialout, rules giving the boards to it."""
    (root / "etc/group").write_text(GROUP.replace("dialout:x:20:pi", "dialout:x:20:pi,so101d"))
    rules_dir = root / RULES
    rules_dir.parent.mkdir(parents=True)
    old_rule = (
        'ENV{ID_SERIAL_SHORT}=="5A46083062", SYMLINK+="so101_leader", GROUP="dialout", MODE="0660"'
    )
    for name in ("70-so101d.rules", "70-so101d-left.rules"):
        (rules_dir.parent / name).write_text(f"# so101d\n{old_rule}\n")
    output = install(root, "--devices-from", no_boards, "--calibration-from", "/nowhere")
    assert "dialout:x:20:pi\n" in (root / "etc/group").read_text()
    for name in ("70-so101d.rules", "70-so101d-left.rules"):
        text = (rules_dir.parent / name).read_text()
        assert text == f"# so101d\n{old_rule.replace('dialout', 'so101d')}\n"
        assert f"{rules_dir.parent / name}: the boards now belong to the group so101d" in output
    before = snapshot(root)
    install(root, "--devices-from", no_boards, "--calibration-from", "/nowhere")
    assert snapshot(root) == before


def test_an_existing_config_is_never_overwritten(root: Path, no_boards: str) -> None:
    (root / CONFIG).parent.mkdir(parents=True)
    (root / CONFIG).write_text("# mine\n")
    install(root, "--devices-from", no_boards, "--calibration-from", str(root / "none"))
    assert (root / CONFIG).read_text() == "# mine\n"


def test_without_boards_install_says_how_to_name_them_later(root: Path, no_boards: str) -> None:
    output = install(root, "--devices-from", no_boards, "--calibration-from", str(root / "x"))
    assert "then check it: so101d config check" in output  # a command that exists
    assert not (root / RULES).exists()
    assert "sudo so101d install-udev" in output
    assert (root / UNIT).is_file()


def test_the_sudo_user_joins_the_so101d_group_and_leaves_with_it(
    root: Path, no_boards: str
) -> None:
    install(root, "--devices-from", no_boards, "--calibration-from", "/nowhere", sudo_user="pi")
    assert "so101d:x:999:pi\n" in (root / "etc/group").read_text()
    run(UNINSTALL, "--root", str(root))
    assert (root / "etc/group").read_text() == GROUP


def test_uninstall_removes_what_install_added_and_keeps_config_and_calibration(
    root: Path, lerobot_cache: Path, boards: Path
) -> None:
    original = files(root)
    install(root, "--calibration-from", str(lerobot_cache), "--devices-from", str(boards))
    kept = {f for f in files(root) if f.startswith(("etc/so101d/", "var/lib/so101d/"))}
    assert kept

    output = run(UNINSTALL, "--root", str(root))
    assert files(root) == original | kept
    assert "removed the user and group so101d" in output
    assert (root / "etc/passwd").read_text() == PASSWD
    assert (root / "etc/group").read_text() == GROUP

    run(UNINSTALL, "--root", str(root), "--purge")
    assert files(root) == original


def test_the_venv_step_installs_a_working_so101d(root: Path, no_boards: str) -> None:
    args = ("--root", str(root), "--python", sys.executable, "--source", str(REPO))
    run(INSTALL, *args, "--devices-from", no_boards, "--calibration-from", "/nowhere")
    so101d = root / "opt/so101d/venv/bin/so101d"
    result = subprocess.run(
        [str(so101d), "install-service", "--dry-run"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr  # the installed package finds its templates
    assert "Type=notify" in result.stdout
