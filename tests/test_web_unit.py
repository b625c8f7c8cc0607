"""The generated ``so101d-web.service``: the web process as the service user, with the
network but nothing else, that ``systemd-analyze verify`` passes; and what install.sh adds
for it (the token file) and uninstall.sh takes away."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

from tests.test_deploy import UNINSTALL, install, run
from tests.test_unit_file import directives, systemd_analyze, unit

__all__ = ["unit"]  # the fixture: the units as `so101d install-service --root` writes them

MAX_EXPOSURE = 2.0  # as lerobot.service, though this one has the network
WEB_UNIT = "etc/systemd/system/so101d-web.service"
TOKEN = "etc/so101d/web-token"


def web_unit(unit: Path) -> Path:
    return unit.with_name("so101d-web.service")


def test_the_web_unit_runs_so101d_web_as_the_service_user_after_the_daemon(unit: Path) -> None:
    sections = directives(web_unit(unit))
    service = sections["Service"]
    assert service["ExecStart"] == [
        f"{unit.parents[4]}/venv/bin/so101d web --config /etc/so101d/config.toml"
    ]
    assert (service["User"], service["Group"]) == (["so101d"], ["so101d"])
    assert service["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert "IPAddressDeny" not in service and "PrivateNetwork" not in service
    assert service["RestartPreventExitStatus"] == ["78"]
    assert int(service["Nice"][0]) > 0  # teleop comes first
    assert "lerobot.service" in sections["Unit"]["After"][0]
    assert "Requires" not in sections["Unit"] and "BindsTo" not in sections["Unit"]
    # The daemon's directories are lerobot.service's: declaring one here would delete it
    # (the control socket with it) whenever the web process stops.
    assert not {"RuntimeDirectory", "StateDirectory", "ConfigurationDirectory"} & set(service)
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]


def test_systemd_analyze_verify_says_nothing_about_the_web_unit(unit: Path) -> None:
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(web_unit(unit))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_web_unit_exposure_is_low(unit: Path) -> None:
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--threshold=30", str(web_unit(unit))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"Overall exposure level for so101d-web\.service: (\d+\.\d+)", result.stdout)
    assert found is not None, result.stdout
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout


def test_install_makes_the_token_once_with_mode_0640_and_uninstall_removes_the_unit(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\n")
    none = tmp_path / "none.json"
    none.write_text("[]")
    args = ("--devices-from", str(none), "--calibration-from", "/nowhere")
    output = install(root, *args)
    token = root / TOKEN
    assert stat.S_IMODE(token.stat().st_mode) == 0o640
    assert re.fullmatch(r"[0-9a-f]{64}", token.read_text())
    assert f"wrote the dashboard's access token {token}" in output
    assert (root / WEB_UNIT).is_file()
    first = token.read_text()
    assert f"keeping {token}" in install(root, *args)
    assert token.read_text() == first
    run(UNINSTALL, "--root", str(root))
    assert not (root / WEB_UNIT).exists()
    assert token.read_text() == first  # with the config, until --purge
    run(UNINSTALL, "--root", str(root), "--purge")
    assert not token.exists()
