"""``so101d install-udev`` and ``so101d install-service``: put so101d's udev rules and its
systemd unit onto this system, or under a staging root (``--root``)."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from so101d.boards import (
    ROLES,
    BoardRule,
    IdentifyError,
    assign_by_keys,
    assign_by_unplug,
    assign_by_voltage,
    board_name,
    devices_from_json,
    group_notice,
    link_names,
    measure_voltages,
    plan_probes,
    render_table,
    rule_for,
    system_notices,
)
from so101d.calibration.model import Role
from so101d.deploy import (
    RULES_TEMPLATE,
    UNIT_TEMPLATE,
    WEB_UNIT_TEMPLATE,
    fill_template,
    install_text,
    read_template,
    under_root,
)
from so101d.udev_rules import RULES_DIR, lint_rules, render_rules, rules_file_name

if TYPE_CHECKING:  # importing so101d.devices loads pyudev: done only when needed
    from so101d.devices import UsbSerialDevice

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

UNIT_PATH = Path("/etc/systemd/system/lerobot.service")
WEB_UNIT_PATH = Path("/etc/systemd/system/so101d-web.service")
UNITS = ((UNIT_TEMPLATE, UNIT_PATH), (WEB_UNIT_TEMPLATE, WEB_UNIT_PATH))
DEFAULT_VENV = Path("/opt/so101d/venv")
DEFAULT_USER = "so101d"
DEFAULT_CONFIG = Path("/etc/so101d/config.toml")
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]*")


def register(subparsers: Subparsers) -> None:
    _register_udev(subparsers)
    _register_service(subparsers)


# -- install-udev ----------------------------------------------------------------------------


def _register_udev(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "install-udev",
        help="give the arms' USB boards stable names (/dev/so101_leader, /dev/so101_follower)",
        description="List the USB serial boards, decide which is the leader's and which the "
        "follower's, and write udev rules that name them /dev/so101_leader and "
        "/dev/so101_follower (or /dev/so101_<PAIR>_leader... with --pair). Decides by "
        "--leader/--follower; else by the servos' supply voltage (leader ~5 V, follower "
        "~7.4 or 12 V; only CH343 boards are asked unless --probe names another); else, "
        "in a terminal, by asking you to unplug a board.",
    )
    parser.add_argument("--leader", metavar="BOARD", help="the leader's board: serial or path")
    parser.add_argument("--follower", metavar="BOARD", help="the follower's board: serial or path")
    parser.add_argument(
        "--by",
        choices=["voltage", "unplug"],
        help="how to tell the boards apart without --leader/--follower "
        "(default: voltage, then unplugging when that cannot decide)",
    )
    parser.add_argument(
        "--probe",
        action="append",
        default=[],
        metavar="BOARD",
        help="also ask the servos behind this board (serial or path) for their voltage. "
        "Only the CH343 boards of SO-101 arms (1a86:55d3) are asked unprompted: another WCH "
        "board (a CH340 may be an Arduino or a 3D printer) is asked about in a terminal, "
        "even with --yes, and left alone otherwise",
    )
    parser.add_argument(
        "--pair",
        metavar="NAME",
        help="for several pairs: name the links so101_NAME_leader/so101_NAME_follower, "
        "in their own rules file; identify one pair per run",
    )
    parser.add_argument(
        "--group",
        default=DEFAULT_USER,
        help=f"the group that owns the boards' device nodes: the service's own group "
        f"(default: {DEFAULT_USER}), never dialout, whose members could drive the arms",
    )
    parser.add_argument("--list", action="store_true", help="only show the boards")
    parser.add_argument("--yes", "-y", action="store_true", help="write without asking")
    parser.add_argument("--dry-run", action="store_true", help="print the rules, write nothing")
    _add_root(parser)
    parser.add_argument(
        "--devices-from",
        type=Path,
        metavar="FILE",
        help="for testing and offline use: take the board list from a JSON list of objects "
        "with the fields device_node, vendor_id, product_id, serial, by_path, by_id, model, "
        "vendor instead of asking udev",
    )
    parser.set_defaults(handler=run_install_udev)


def run_install_udev(args: argparse.Namespace) -> int:
    try:
        links = link_names(args.pair)
        devices = _devices(args.devices_from)
    except (OSError, ValueError) as exc:
        return _fail("install-udev", str(exc))
    for notice in system_notices(args.root or Path("/"), devices):
        print(notice, file=sys.stderr)
    if not devices:
        print("no USB serial boards found (are they plugged in?)")
        return 0 if args.list else 1
    print(render_table(devices))
    if args.list:
        return 0
    try:
        assigned = _identify(args, devices)
        board_rules = [rule_for(links[role], assigned[role], devices) for role in ROLES]
    except (IdentifyError, ValueError) as exc:
        return _fail("install-udev", f"cannot tell the boards apart: {exc}", _IDENTIFY_HINT)
    return _write_rules(args, board_rules)


_IDENTIFY_HINT = (
    "name them yourself with --leader SERIAL --follower SERIAL (serial numbers or /dev paths "
    "from the table above), or run `sudo so101d install-udev --by unplug` in a terminal"
)


def _devices(source: Path | None) -> list[UsbSerialDevice]:
    if source is not None:
        return devices_from_json(source.read_text(encoding="utf-8"))
    from so101d.devices import list_usb_serial_devices

    return list_usb_serial_devices()


def _identify(
    args: argparse.Namespace, devices: Sequence[UsbSerialDevice]
) -> dict[Role, UsbSerialDevice]:
    if args.leader or args.follower:
        if not (args.leader and args.follower):
            raise IdentifyError("give both --leader and --follower")
        return assign_by_keys(devices, {Role.LEADER: args.leader, Role.FOLLOWER: args.follower})
    if args.by == "unplug":
        return _by_unplug(args)
    try:
        return _by_voltage(devices, args.probe)
    except IdentifyError as exc:
        if args.by == "voltage" or not sys.stdin.isatty() or args.devices_from:
            raise
        print(f"the voltages do not decide ({exc}); let us find them by unplugging")
        return _by_unplug(args)


def _by_voltage(
    devices: Sequence[UsbSerialDevice], named: Sequence[str]
) -> dict[Role, UsbSerialDevice]:
    plan = plan_probes(devices, named, _may_probe)
    for device in plan.left_alone:
        print(
            f"left alone: {device.device_node} ({board_name(device)}) is not the CH343 board of "
            f"SO-101 arms; if it is an arm's board: --probe {device.device_node}"
        )
    print("asking the servos for their supply voltage (leader ~5 V, follower ~7.4 or 12 V):")
    readings = measure_voltages(plan.probe)
    for reading in readings:
        print(f"  {reading.device.device_node}: {reading.describe()}")
    return assign_by_voltage(readings)


def _by_unplug(args: argparse.Namespace) -> dict[Role, UsbSerialDevice]:
    if args.devices_from is not None:
        raise IdentifyError("--by unplug needs the live board list, not --devices-from")
    if not sys.stdin.isatty():
        raise IdentifyError("--by unplug needs a terminal to ask you")
    from so101d.devices import list_usb_serial_devices

    return assign_by_unplug(list_usb_serial_devices, _ask)


def _may_probe(device: UsbSerialDevice) -> bool:
    return _confirm(
        f"{device.device_node} is a {board_name(device)}, not the CH343 board of SO-101 arms. "
        "Asking it for servo voltages writes packets at 1 Mbaud, which can reset or confuse "
        "an Arduino or a 3D printer. Is it an arm's board?"
    )


def _ask(prompt: str) -> str:
    try:
        return input(prompt)
    except EOFError as exc:
        raise IdentifyError("no answer (end of input)") from exc


def _write_rules(args: argparse.Namespace, board_rules: Sequence[BoardRule]) -> int:
    try:
        text = render_rules(
            read_template(RULES_TEMPLATE), [b.rule for b in board_rules], args.group
        )
    except ValueError as exc:
        return _fail("install-udev", str(exc))
    if problems := lint_rules(text):
        return _fail("install-udev", "generated rules fail the lint:\n" + "\n".join(problems))
    for board in board_rules:
        if board.note:
            print(f"warning: {board.note}", file=sys.stderr)
    if notice := group_notice(args.root or Path("/"), args.group):
        print(notice, file=sys.stderr)
    if args.dry_run:
        print(text, end="")
        return 0
    path = under_root(args.root, RULES_DIR / rules_file_name(args.pair))
    for board in board_rules:
        print(f"/dev/{board.rule.link} = {board.rule.description}")
    if not args.yes and not _confirm(f"write {path}?"):
        return _fail("install-udev", "nothing written (in a script, pass --yes)")
    try:
        changed = install_text(path, text)
    except PermissionError:
        return _fail("install-udev", f"cannot write {path}: run it with sudo")
    print(f"wrote {path}" if changed else f"{path} already holds these rules")
    if args.root is None:
        _apply_udev_rules()
    ports = ", ".join(
        f'{role}.port = "/dev/{b.rule.link}"' for role, b in zip(ROLES, board_rules, strict=True)
    )
    print(f"in /etc/so101d/config.toml, the pair's {ports}")
    return 0


def _apply_udev_rules() -> None:
    if shutil.which("udevadm") is None:
        print("udevadm not found: the names appear after a reboot or a replug", file=sys.stderr)
        return
    for command in (
        ["udevadm", "control", "--reload"],
        ["udevadm", "trigger", "--action=add", "--subsystem-match=tty"],
        ["udevadm", "settle", "--timeout=10"],
    ):
        if subprocess.run(command, check=False).returncode != 0:
            print(f"warning: {' '.join(command)} failed; replug the boards", file=sys.stderr)
            return


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


# -- install-service -------------------------------------------------------------------------


def _register_service(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "install-service",
        help="install and enable the lerobot.service and so101d-web.service systemd units",
        description=f"Write {UNIT_PATH} (the so101d daemon, sandboxed, restarted on failure) "
        f"and {WEB_UNIT_PATH} (the web dashboard, a client of the daemon's socket) and enable "
        "them, so teleop and the dashboard start at boot.",
    )
    _add_root(parser)
    parser.add_argument(
        "--venv",
        type=Path,
        default=DEFAULT_VENV,
        help=f"the venv so101d is installed in, on the target (default: {DEFAULT_VENV})",
    )
    parser.add_argument(
        "--user", default=DEFAULT_USER, help=f"the service's user (default: {DEFAULT_USER})"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"the daemon's config file (default: {DEFAULT_CONFIG})",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the unit, write nothing")
    parser.add_argument(
        "--no-enable", action="store_true", help="write the unit but do not enable it"
    )
    parser.set_defaults(handler=run_install_service)


def run_install_service(args: argparse.Namespace) -> int:
    if problem := _service_args_problem(args):
        return _fail("install-service", problem)
    values = {"VENV": str(args.venv), "USER": args.user, "CONFIG": str(args.config)}
    units = [(fill_template(read_template(t), values), path) for t, path in UNITS]
    if args.dry_run:
        print("\n".join(text for text, _ in units), end="")
        return 0
    for unit, unit_path in units:
        path = under_root(args.root, unit_path)
        try:
            changed = install_text(path, unit)
        except PermissionError:
            return _fail("install-service", f"cannot write {path}: run it with sudo")
        print(f"wrote {path}" if changed else f"{path} is up to date")
    executable = under_root(args.root, args.venv / "bin" / "so101d")
    if not executable.exists():
        print(f"warning: {executable} does not exist; the service cannot start", file=sys.stderr)
    if args.root is not None or args.no_enable:
        return 0
    return _enable_unit()


def _service_args_problem(args: argparse.Namespace) -> str | None:
    for option, path in (("--venv", args.venv), ("--config", args.config)):
        if not path.is_absolute() or re.search(r"\s", str(path)):
            return f"{option} must be an absolute path without spaces, not {path}"
    if not _USER_NAME.fullmatch(args.user):
        return f"invalid user name {args.user!r}"
    return None


def _enable_unit() -> int:
    if not Path("/run/systemd/system").is_dir():
        print(
            "systemd is not running here: enable them on the target with "
            f"`systemctl enable {' '.join(path.name for _, path in UNITS)}`"
        )
        return 0
    names = [path.name for _, path in UNITS]
    for command in (["systemctl", "daemon-reload"], ["systemctl", "enable", *names]):
        if subprocess.run(command, check=False).returncode != 0:
            return _fail("install-service", f"{' '.join(command)} failed")
    print(
        f"enabled {' and '.join(names)}: they start at boot "
        "(now: sudo systemctl start lerobot so101d-web)"
    )
    return 0


# -- shared ----------------------------------------------------------------------------------


def _add_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        help="write under this staging root instead of / (nothing on this system changes)",
    )


def _fail(command: str, message: str, hint: str | None = None) -> int:
    print(f"so101d {command}: {message}", file=sys.stderr)
    if hint:
        print(hint, file=sys.stderr)
    return 1
