"""The generated ``lerobot.service``: what it says, ``systemd-analyze verify`` finds nothing in
it, and ``systemd-analyze security`` rates its exposure at most 2.0."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from so101d.deploy import fill_template, install_text
from tests.commands import so101d

MAX_EXPOSURE = 2.0


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        reason = "systemd-analyze is missing (apt-get install systemd)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """The unit as `so101d install-service` writes it, with ExecStart pointing at a file that
    exists (`systemd-analyze verify` checks that, and --root does not relocate the check)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin/so101d").write_text("#!/bin/sh\n")
    (venv / "bin/so101d").chmod(0o755)
    root = tmp_path / "root"
    result = so101d("install-service", "--root", str(root), "--venv", str(venv))
    assert result.returncode == 0, result.stderr
    return root / "etc/systemd/system/lerobot.service"


def directives(unit: Path) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        elif line and not line.startswith("#"):
            key, value = line.split("=", 1)
            current.setdefault(key, []).append(value)
    return sections


def test_the_unit_is_a_watched_notify_service_that_gives_up_a_crash_loop(unit: Path) -> None:
    sections = directives(unit)
    service, unit_section = sections["Service"], sections["Unit"]
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["ExecStart"] == [
        f"{unit.parents[4]}/venv/bin/so101d run --config /etc/so101d/config.toml"
    ]
    assert service["Restart"] == ["always"]
    assert service["RestartPreventExitStatus"] == ["78"]
    assert int(service["WatchdogSec"][0]) >= 10
    burst = int(unit_section["StartLimitBurst"][0])
    interval = int(unit_section["StartLimitIntervalSec"][0])
    assert burst * int(service["RestartSec"][0]) * 4 <= interval  # well below: the limit trips
    assert "StartLimitIntervalSec" not in service  # ignored there
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_unit_keeps_serial_and_udev_access(unit: Path) -> None:
    service = directives(unit)["Service"]
    assert service["User"] == ["so101d"]
    # The boards' nodes belong to the service's own group, as the udev rules say; not dialout.
    assert service["Group"] == ["so101d"]
    assert "SupplementaryGroups" not in service
    assert service["PrivateDevices"] == ["no"]
    assert service["DevicePolicy"] == ["closed"]
    assert service["DeviceAllow"] == ["char-ttyACM rw", "char-ttyUSB rw"]
    assert service["RestrictAddressFamilies"] == ["AF_UNIX AF_NETLINK"]
    assert "PrivateNetwork" not in service
    assert "modprobe@cdc_acm.service" in directives(unit)["Unit"]["After"][0]
    for key in ("ConfigurationDirectory", "StateDirectory", "RuntimeDirectory"):
        assert service[key] == ["so101d"]


def test_systemd_analyze_verify_says_nothing(unit: Path) -> None:
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_exposure_is_at_most_2(unit: Path) -> None:
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--threshold=20", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"Overall exposure level for lerobot\.service: (\d+\.\d+)", result.stdout)
    assert found is not None, result.stdout
    assert float(found.group(1)) <= MAX_EXPOSURE


def test_install_service_rewrites_only_what_changed(tmp_path: Path) -> None:
    args = ("install-service", "--root", str(tmp_path))
    first, second = so101d(*args), so101d(*args)
    assert "wrote" in first.stdout
    assert "is up to date" in second.stdout
    assert "does not exist; the service cannot start" in second.stderr
    changed = so101d(*args, "--user", "robot")
    assert "User=robot" in (tmp_path / "etc/systemd/system/lerobot.service").read_text()
    assert changed.returncode == 0


def test_install_service_refuses_paths_that_would_break_execstart(tmp_path: Path) -> None:
    result = so101d("install-service", "--dry-run", "--venv", "opt/my venv")
    assert result.returncode == 1
    assert "--venv must be an absolute path without spaces" in result.stderr


def test_dry_run_prints_the_unit(tmp_path: Path) -> None:
    result = so101d("install-service", "--dry-run", "--root", str(tmp_path))
    assert "ExecStart=/opt/so101d/venv/bin/so101d run --config /etc/so101d/config.toml" in (
        result.stdout
    )
    assert not any(tmp_path.iterdir())


def test_templates_need_every_placeholder_filled() -> None:
    assert fill_template("a @X@ b @X@", {"X": "1"}) == "a 1 b 1"
    with pytest.raises(KeyError, match="no value for template placeholder"):
        fill_template("@X@ @Y@", {"X": "1"})
    with pytest.raises(KeyError, match="template has no placeholder"):
        fill_template("@X@", {"X": "1", "Z": "2"})


def test_install_text_replaces_whole_files_and_skips_equal_ones(tmp_path: Path) -> None:
    path = tmp_path / "etc/x.rules"
    assert install_text(path, "one\n")
    assert not install_text(path, "one\n")
    assert install_text(path, "two\n", mode=0o600)
    assert path.read_text() == "two\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["x.rules"]  # no temporary left behind
