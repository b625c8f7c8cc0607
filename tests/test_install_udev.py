"""``so101d install-udev``: telling the boards apart, the rules it writes, and their lint.

The device lists are injected (``--devices-from`` for the real command as a subprocess);
"by voltage" asks simulated arms behind ptys.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from so101d.boards import (
    IdentifyError,
    ProbePlan,
    assign_by_keys,
    assign_by_unplug,
    assign_by_voltage,
    link_names,
    measure_voltages,
    plan_probes,
    render_table,
    rule_for,
    system_notices,
)
from so101d.calibration.model import Role
from so101d.cli import main
from so101d.deploy import RULES_TEMPLATE, read_template
from so101d.devices import UsbSerialDevice
from so101d.sim import VirtualArm
from so101d.udev_rules import LinkRule, MatchKey, lint_rules, render_rules, udevadm_verify
from tests.commands import so101d
from tests.port_access import OpenWatch

REPO = Path(__file__).resolve().parents[1]
BY_PATH = "/dev/serial/by-path/platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.{}:1.0"


def board(
    node: str,
    serial: str | None,
    port: int,
    product: str = "55d3",
) -> UsbSerialDevice:
    return UsbSerialDevice(
        device_node=node,
        vendor_id="1a86",
        product_id=product,
        serial=serial,
        by_path=BY_PATH.format(port),
        by_id=f"/dev/serial/by-id/usb-1a86_USB_Single_Serial_{serial}-if00" if serial else None,
        model="USB Single Serial",
        vendor="QinHeng Electronics",
    )


LEADER = board("/dev/ttyACM0", "5A46083062", 1)
FOLLOWER = board("/dev/ttyACM1", "5A46083071", 2)
GPS = dataclasses.replace(board("/dev/ttyUSB0", "A9KZ1", 3), vendor_id="0403", product_id="6001")


def rules_for(devices: list[UsbSerialDevice], assigned: dict[Role, UsbSerialDevice]) -> str:
    links = link_names(None)
    rules = [rule_for(links[role], assigned[role], devices).rule for role in assigned]
    return render_rules(read_template(RULES_TEMPLATE), rules)


def rule_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "SYMLINK" in line]


def devices_file(tmp_path: Path, devices: list[UsbSerialDevice]) -> str:
    path = tmp_path / "devices.json"
    path.write_text(json.dumps([dataclasses.asdict(d) for d in devices]))
    return str(path)


# -- by flags --------------------------------------------------------------------------------


def test_flags_name_the_boards_by_serial_and_the_rules_match_them() -> None:
    devices = [GPS, FOLLOWER, LEADER]
    assigned = assign_by_keys(devices, {Role.LEADER: "5A46083062", Role.FOLLOWER: "5A46083071"})
    assert assigned == {Role.LEADER: LEADER, Role.FOLLOWER: FOLLOWER}
    text = rules_for(devices, assigned)
    assert rule_lines(text) == [
        'ENV{ID_VENDOR_ID}=="1a86", ENV{ID_MODEL_ID}=="55d3", ENV{ID_SERIAL_SHORT}=="5A46083062", '
        'SYMLINK+="so101_leader", ENV{ID_MM_DEVICE_IGNORE}="1", GROUP="so101d", MODE="0660"',
        'ENV{ID_VENDOR_ID}=="1a86", ENV{ID_MODEL_ID}=="55d3", ENV{ID_SERIAL_SHORT}=="5A46083071", '
        'SYMLINK+="so101_follower", ENV{ID_MM_DEVICE_IGNORE}="1", GROUP="so101d", MODE="0660"',
    ]
    assert lint_rules(text) == []


def test_the_rules_give_the_boards_to_the_named_group_only() -> None:
    rules = [rule_for("so101_leader", LEADER, [LEADER]).rule]
    text = render_rules(read_template(RULES_TEMPLATE), rules, "lab")
    (line,) = rule_lines(text)
    assert line.endswith('GROUP="lab", MODE="0660"')
    assert "dialout" not in text
    with pytest.raises(ValueError, match="invalid group name"):
        render_rules(read_template(RULES_TEMPLATE), rules, 'x", RUN+="/bin/sh')


def test_flags_also_take_a_device_path() -> None:
    assigned = assign_by_keys(
        [LEADER, FOLLOWER], {Role.LEADER: "/dev/ttyACM1", Role.FOLLOWER: LEADER.by_path or ""}
    )
    assert assigned == {Role.LEADER: FOLLOWER, Role.FOLLOWER: LEADER}


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (("NOPE", "5A46083071"), "no board has serial number or path 'NOPE'"),
        (("5A46083062", "5A46083062"), "the same board was named for two arms"),
    ],
)
def test_flags_that_do_not_name_two_boards_are_refused(keys: tuple[str, str], message: str) -> None:
    with pytest.raises(IdentifyError, match=message):
        assign_by_keys(
            [LEADER, FOLLOWER], dict(zip((Role.LEADER, Role.FOLLOWER), keys, strict=True))
        )


def test_a_named_pair_gets_its_own_links() -> None:
    assert link_names("right") == {
        Role.LEADER: "so101_right_leader",
        Role.FOLLOWER: "so101_right_follower",
    }
    with pytest.raises(ValueError, match="invalid pair name"):
        link_names("a b")


# -- missing and duplicate serial numbers ---------------------------------------------------


def test_a_board_without_serial_is_matched_by_its_usb_port_with_an_explanation() -> None:
    ch340 = board("/dev/ttyUSB0", None, 4, product="7523")
    ch340 = dataclasses.replace(ch340, by_path=BY_PATH.format(4) + "-port0")
    result = rule_for("so101_leader", ch340, [ch340, FOLLOWER])
    assert result.rule.key is MatchKey.PATH
    assert result.rule.value == "platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.4:1.0"
    assert result.note is not None
    assert "has no USB serial number" in result.note
    assert "follows the USB port" in result.note


def test_duplicate_serials_fall_back_to_the_port_for_both_boards() -> None:
    twin = board("/dev/ttyACM1", LEADER.serial, 2)
    for device in (LEADER, twin):
        result = rule_for("x", device, [LEADER, twin])
        assert result.rule.key is MatchKey.PATH
        assert result.note is not None
        assert f"shares its serial number '{LEADER.serial}'" in result.note


def test_a_placeholder_serial_is_not_trusted() -> None:
    result = rule_for("x", board("/dev/ttyUSB0", "12345678", 1, "7523"), [])
    assert result.rule.key is MatchKey.PATH
    assert result.note is not None
    assert "placeholder serial number" in result.note


def test_a_board_with_neither_serial_nor_port_is_refused() -> None:
    orphan = dataclasses.replace(board("/dev/ttyUSB0", None, 1), by_path=None)
    with pytest.raises(IdentifyError, match="no by-path name either"):
        rule_for("x", orphan, [orphan])


# -- by voltage, against simulated arms -----------------------------------------------------


@pytest.fixture
def arms(tmp_path: Path) -> Iterator[list[UsbSerialDevice]]:
    """Two virtual arms, listed follower first, as boards with the arms' pty links."""
    with (
        VirtualArm("leader", tmp_path / "a") as leader,
        VirtualArm("follower", tmp_path / "b") as follower,
    ):
        yield [
            dataclasses.replace(FOLLOWER, device_node=str(follower.link)),
            dataclasses.replace(LEADER, device_node=str(leader.link)),
        ]


def test_the_servos_voltages_tell_leader_from_follower(arms: list[UsbSerialDevice]) -> None:
    readings = measure_voltages(arms)
    assert [r.volts for r in readings] == [12.0, 5.0]
    assert assign_by_voltage(readings) == {Role.LEADER: arms[1], Role.FOLLOWER: arms[0]}


# -- which boards are probed at all -----------------------------------------------------------

CH340 = board("/dev/ttyUSB0", None, 4, product="7523")
CH9102 = board("/dev/ttyACM7", "5A46083099", 5, product="55d4")


def test_only_ch343_boards_are_probed_unasked() -> None:
    asked: list[UsbSerialDevice] = []

    def refuse(device: UsbSerialDevice) -> bool:
        asked.append(device)
        return False

    plan = plan_probes([GPS, CH340, LEADER, CH9102, FOLLOWER], [], refuse)
    assert plan.probe == [LEADER, FOLLOWER]
    assert plan.left_alone == [CH340, CH9102]  # the FTDI GPS is no servo board: not listed
    assert asked == [CH340, CH9102]


def test_a_named_or_approved_board_is_probed() -> None:
    named = plan_probes([CH340, LEADER], ["/dev/ttyUSB0"], lambda device: False)
    assert named == ProbePlan([CH340, LEADER], [])
    approved = plan_probes([CH340, LEADER], [], lambda device: device == CH340)
    assert approved == ProbePlan([CH340, LEADER], [])
    with pytest.raises(IdentifyError, match="no board has serial number or path 'nope'"):
        plan_probes([CH340], ["nope"], lambda device: True)


@pytest.fixture
def foreign_board() -> Iterator[tuple[str, int]]:
    """A CH340 that is not an arm's board (an Arduino, say): a bare pty, and its master end,
    where every byte written to the board arrives."""
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    try:
        yield os.ttyname(slave), master
    finally:
        os.close(master)
        os.close(slave)


def received(master: int) -> bytes:
    try:
        return os.read(master, 4096)
    except BlockingIOError:
        return b""


def test_identification_asks_only_the_ch343_boards_without_raising_dtr(
    tmp_path: Path,
    arms: list[UsbSerialDevice],
    foreign_board: tuple[str, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    node, master = foreign_board
    devices = devices_file(tmp_path, [dataclasses.replace(CH340, device_node=node), *arms])
    watches = {path: OpenWatch(path) for path in (node, *(arm.device_node for arm in arms))}
    dtr: dict[str, list[str]] = {"raised": [], "cleared": []}
    real_ioctl = fcntl.ioctl

    def record(fd: int, request: int, arg: Any = 0, *rest: Any) -> Any:
        lines = struct.unpack("I", arg)[0] if isinstance(arg, bytes) and len(arg) == 4 else 0
        if lines & termios.TIOCM_DTR and request in (termios.TIOCMBIS, termios.TIOCMSET):
            dtr["raised"].append(os.readlink(f"/proc/self/fd/{fd}"))
        if lines & termios.TIOCM_DTR and request == termios.TIOCMBIC:
            dtr["cleared"].append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_ioctl(fd, request, arg, *rest)

    monkeypatch.setattr(fcntl, "ioctl", record)
    args = ["install-udev", "--devices-from", devices, "--by", "voltage", "--dry-run", "--yes"]
    assert main(args) == 0
    output = capsys.readouterr().out
    assert watches[node].opens() == 0 and received(master) == b""
    assert f"left alone: {node} (WCH CH340 (1a86:7523)) is not the CH343 board" in output
    assert f"--probe {node}" in output
    for arm in arms:
        assert watches[arm.device_node].opens() >= 1
    assert "12.0 V: follower" in output and "5.0 V: leader" in output
    assert dtr["raised"] == []
    assert sorted(dtr["cleared"]) == sorted(os.path.realpath(a.device_node) for a in arms)


@pytest.mark.parametrize(
    ("answer", "options", "probed"),
    [("n\n", (), False), ("y\n", (), True), (None, ("--probe", "NODE"), True)],
    ids=["terminal-no", "terminal-yes", "named"],
)
def test_another_wch_board_is_probed_only_when_the_person_says_so(
    tmp_path: Path,
    arms: list[UsbSerialDevice],
    foreign_board: tuple[str, int],
    answer: str | None,
    options: tuple[str, ...],
    probed: bool,
) -> None:
    node, master = foreign_board
    devices = devices_file(tmp_path, [dataclasses.replace(CH340, device_node=node), *arms])
    watch = OpenWatch(node)
    terminal, person = pty.openpty()  # the command's stdin, where the person types
    if answer:
        os.write(terminal, answer.encode())
    command = ["install-udev", "--devices-from", devices, "--dry-run", "--yes"]
    command += [node if option == "NODE" else option for option in options]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "so101d", *command],
            stdin=person if answer else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(person)
    assert result.returncode == 0, result.stderr
    asked = f"{node} is a WCH CH340 (1a86:7523), not the CH343 board of SO-101 arms" in (
        result.stdout
    )
    assert asked == (answer is not None)  # --yes never answers this question
    assert (watch.opens() > 0) == probed
    assert (received(master) != b"") == probed  # Feetech packets reached it
    assert (f"{node}: no servo answered" in result.stdout) == probed


def test_a_seven_volt_follower_is_a_follower(tmp_path: Path) -> None:
    with VirtualArm("follower", tmp_path / "f", supply_voltage=7.4) as arm:
        (reading,) = measure_voltages([dataclasses.replace(FOLLOWER, device_node=str(arm.link))])
    assert reading.role is Role.FOLLOWER


def test_voltages_that_do_not_decide_are_refused(tmp_path: Path) -> None:
    with (
        VirtualArm("leader", tmp_path / "a") as one,
        VirtualArm("leader", tmp_path / "b", supply_voltage=6.2) as other,
    ):
        readings = measure_voltages(
            [
                dataclasses.replace(LEADER, device_node=str(one.link)),
                dataclasses.replace(FOLLOWER, device_node=str(other.link)),
            ]
        )
    with pytest.raises(IdentifyError, match=r"6\.2 V: unclear"):
        assign_by_voltage(readings)
    with pytest.raises(IdentifyError, match=r"2 board\(s\) look like a leader"):
        assign_by_voltage(readings[:1] * 2)


def test_a_board_without_servos_or_gone_is_no_candidate(tmp_path: Path) -> None:
    gone = dataclasses.replace(LEADER, device_node=str(tmp_path / "missing"))
    (reading,) = measure_voltages([gone])
    assert reading.volts is None
    assert "no such device" in reading.describe()
    with pytest.raises(IdentifyError, match="0 board"):
        assign_by_voltage([reading])


# -- by unplugging ---------------------------------------------------------------------------


def test_unplugging_a_board_shows_which_one_it_was() -> None:
    replugged_leader = dataclasses.replace(LEADER, device_node="/dev/ttyACM2")
    listings = iter([[LEADER, FOLLOWER], [FOLLOWER], [FOLLOWER, replugged_leader]])
    prompts: list[str] = []
    assigned = assign_by_unplug(lambda: next(listings), prompts.append)
    assert assigned == {Role.LEADER: LEADER, Role.FOLLOWER: FOLLOWER}
    assert prompts == [
        "Unplug the USB cable of the leader arm's board, then press Enter: ",
        "Plug it back in, then press Enter: ",
    ]


def test_unplugging_nothing_or_too_much_is_refused() -> None:
    listings = iter([[LEADER, FOLLOWER], [LEADER, FOLLOWER]])
    with pytest.raises(IdentifyError, match="0 boards vanished"):
        assign_by_unplug(lambda: next(listings), lambda _: None)
    with pytest.raises(IdentifyError, match="found 1 board"):
        assign_by_unplug(lambda: [LEADER], lambda _: None)


# -- what else on the system grabs serial ports ----------------------------------------------


def test_brltty_and_modemmanager_are_reported(tmp_path: Path) -> None:
    assert system_notices(tmp_path, [LEADER]) == []
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/brltty").touch()
    (tmp_path / "lib/systemd/system").mkdir(parents=True)
    (tmp_path / "lib/systemd/system/ModemManager.service").touch()
    brltty, modem_manager = system_notices(tmp_path, [LEADER])
    assert brltty.startswith("warning: brltty is installed. It can claim USB serial boards")
    assert "sudo apt remove brltty" in brltty
    assert modem_manager.startswith("note: ModemManager is installed")
    assert "ID_MM_DEVICE_IGNORE" in modem_manager


def test_brltty_rules_count_unless_masked(tmp_path: Path) -> None:
    rules = tmp_path / "usr/lib/udev/rules.d"
    rules.mkdir(parents=True)
    (rules / "85-brltty.rules").touch()
    ch340 = board("/dev/ttyUSB0", None, 1, "7523")
    (notice,) = system_notices(tmp_path, [ch340])
    assert "(udev rules: 85-brltty.rules)" in notice
    assert "like the CH340 board plugged in now" in notice
    (tmp_path / "etc/udev/rules.d").mkdir(parents=True)
    (tmp_path / "etc/udev/rules.d/85-brltty.rules").symlink_to("/dev/null")
    assert system_notices(tmp_path, [ch340]) == []


# -- the table and the lint -----------------------------------------------------------------


def test_the_table_shows_every_board() -> None:
    header, *rows = render_table([LEADER, board("/dev/ttyUSB0", None, 4, "7523")]).splitlines()
    assert header.split() == ["DEVICE", "BOARD", "SERIAL", "BY-PATH", "MODEL"]
    assert rows[0].startswith("/dev/ttyACM0  WCH CH343 (1a86:55d3)  5A46083062")
    assert "WCH CH340 (1a86:7523)  (none)" in rows[1]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('KERNEL=="ttyACM0" SYMLINK+="x"', "not a list of KEY op"),
        ('KERNEL=="ttyACM0", SYMLINK+="x",', "not a list of KEY op"),
        ('KERNEL=="ttyACM0", SYMLINK+=x', "not a list of KEY op"),
        ('KERNAL=="ttyACM0"', "unknown key KERNAL"),
        ('LABEL=="end"', "LABEL takes '='"),
        ('GOTO="nowhere"', "GOTO 'nowhere' has no LABEL after it"),
    ],
)
def test_the_lint_finds_broken_lines(line: str, problem: str) -> None:
    (found,) = lint_rules(f"# comment\n{line}\n")
    assert found.startswith("line 2: ")
    assert problem in found


def test_the_lint_wants_each_label_after_its_goto() -> None:
    text = 'LABEL="end"\nACTION=="remove", GOTO="end"\nLABEL="end"\n'
    assert lint_rules(text) == ["line 3: LABEL 'end' defined twice"]  # but the GOTO is fine
    assert lint_rules('LABEL="end"\nGOTO="end"\n') == ["line 2: GOTO 'end' has no LABEL after it"]


def test_rules_values_that_udev_would_not_match_exactly_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot be matched exactly"):
        LinkRule("so101_leader", "1a86", "55d3", MatchKey.SERIAL, 'x", RUN+="/bin/sh', "d")
    with pytest.raises(ValueError, match="invalid link name"):
        LinkRule("../etc/passwd", "1a86", "55d3", MatchKey.SERIAL, "1", "d")


def test_udevadm_verify_accepts_the_rules_where_it_exists(tmp_path: Path) -> None:
    path = tmp_path / "70-so101d.rules"
    path.write_text(rules_for([LEADER, FOLLOWER], {Role.LEADER: LEADER, Role.FOLLOWER: FOLLOWER}))
    result = udevadm_verify(path)
    if result is None:
        pytest.skip("udevadm verify needs systemd >= 253 (this is Debian 12 or has no udevadm)")
    assert result == []


# -- the command -----------------------------------------------------------------------------


def test_dry_run_prints_the_rules_and_writes_nothing(tmp_path: Path) -> None:
    devices = devices_file(tmp_path, [LEADER, FOLLOWER])
    result = so101d(
        "install-udev", "--devices-from", devices, "--dry-run", "--root", str(tmp_path),
        "--leader", "5A46083062", "--follower", "/dev/ttyACM1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    table, rules = result.stdout.split("# Stable names", 1)
    assert "/dev/ttyACM0  WCH CH343 (1a86:55d3)  5A46083062" in table
    assert rule_lines(rules) == rule_lines(
        rules_for([LEADER, FOLLOWER], {Role.LEADER: LEADER, Role.FOLLOWER: FOLLOWER})
    )
    assert lint_rules("# Stable names" + rules) == []
    assert not (tmp_path / "etc").exists()


def test_root_writes_the_rules_named_by_voltage(
    tmp_path: Path, arms: list[UsbSerialDevice]
) -> None:
    devices = devices_file(tmp_path, arms)
    args = ("install-udev", "--devices-from", devices, "--root", str(tmp_path), "--yes")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/group").write_text("dialout:x:20:pi\nso101d:x:999:pi\n")
    result = so101d(*args, "--pair", "left")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    assert "12.0 V: follower" in result.stdout
    assert 'leader.port = "/dev/so101_left_leader"' in result.stdout
    text = (tmp_path / "etc/udev/rules.d/70-so101d-left.rules").read_text()
    assert lint_rules(text) == []
    leader, follower = rule_lines(text)
    assert f'"{LEADER.serial}", SYMLINK+="so101_left_leader"' in leader
    assert f'"{FOLLOWER.serial}", SYMLINK+="so101_left_follower"' in follower
    assert leader.endswith('GROUP="so101d", MODE="0660"')
    assert follower.endswith('GROUP="so101d", MODE="0660"')
    again = so101d(*args, "--pair", "left")
    assert "already holds these rules" in again.stdout


def test_a_group_that_does_not_exist_is_warned_about(tmp_path: Path) -> None:
    devices = devices_file(tmp_path, [LEADER, FOLLOWER])
    result = so101d(
        "install-udev", "--devices-from", devices, "--root", str(tmp_path), "--yes",
        "--leader", "5A46083062", "--follower", "5A46083071", "--group", "arms",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "warning: the group 'arms' does not exist here" in result.stderr
    assert 'GROUP="arms"' in (tmp_path / "etc/udev/rules.d/70-so101d.rules").read_text()


def test_without_yes_and_without_a_terminal_nothing_is_written(tmp_path: Path) -> None:
    devices = devices_file(tmp_path, [LEADER, FOLLOWER])
    result = so101d(
        "install-udev", "--devices-from", devices, "--root", str(tmp_path),
        "--leader", "5A46083062", "--follower", "5A46083071",
    )  # fmt: skip
    assert result.returncode == 1
    assert "nothing written (in a script, pass --yes)" in result.stderr
    assert not (tmp_path / "etc").exists()


def test_the_command_explains_fallbacks_and_refusals(tmp_path: Path) -> None:
    no_serial = board("/dev/ttyUSB0", None, 4, "7523")
    devices = devices_file(tmp_path, [LEADER, no_serial])
    base = ("install-udev", "--devices-from", devices, "--dry-run")
    fallback = so101d(*base, "--leader", "/dev/ttyUSB0", "--follower", "5A46083062")
    assert fallback.returncode == 0
    assert "warning: /dev/ttyUSB0 has no USB serial number" in fallback.stderr
    refused = so101d(*base, "--by", "voltage")
    assert refused.returncode == 1
    assert "cannot tell the boards apart" in refused.stderr
    assert "--leader SERIAL --follower SERIAL" in refused.stderr


def test_no_boards_at_all_is_said_plainly(tmp_path: Path) -> None:
    result = so101d("install-udev", "--devices-from", devices_file(tmp_path, []), "--yes")
    assert result.returncode == 1
    assert "no USB serial boards found" in result.stdout


def test_the_default_config_uses_the_default_link_names() -> None:
    import tomllib

    config = tomllib.loads((REPO / "deploy/config.example.toml").read_text())
    ports = {arm["port"] for pair in config["pair"].values() for arm in pair.values()
             if isinstance(arm, dict) and "port" in arm}  # fmt: skip
    assert ports == {f"/dev/{link}" for link in link_names(None).values()}
