"""Which USB board is which arm: identify leader and follower, and choose how udev knows them.

Three ways to decide: the user names them (a serial number or a device path), the user
unplugs one board and we see which vanished, or the servos say (a leader is powered at
about 5 V, a follower at 7.4 V or 12 V; ``Present_Voltage``). Asking the servos writes
Feetech packets at 1 Mbaud, which can reset or confuse an Arduino or a 3D printer's board,
so only the CH343 boards of SO-101 arms are asked unprompted (:func:`plan_probes`). The
device list is always a parameter, so all of this runs against injected lists and
simulated arms.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from so101d.calibration.model import Role
from so101d.udev_rules import LinkRule, MatchKey

if TYPE_CHECKING:
    from so101d.devices import UsbSerialDevice

ROLES = (Role.LEADER, Role.FOLLOWER)
WCH_VENDOR = "1a86"  # the servo boards of SO-101 arms: WCH CH343 or CH340
CH343 = (WCH_VENDOR, "55d3")  # the board SO-101 arms ship with
CH340 = (WCH_VENDOR, "7523")  # also on some servo boards, and on countless Arduinos
KNOWN_BOARDS = {CH343: "WCH CH343", CH340: "WCH CH340"}
LEADER_MAX_V = 6.0
FOLLOWER_MIN_V = 6.5
MOTOR_IDS = range(1, 7)
ANSWER_WITHIN_S = 1.0
_PAIR_NAME = re.compile(r"[A-Za-z0-9_-]+")
_UNIT_DIRS = ("usr/lib/systemd/system", "lib/systemd/system", "etc/systemd/system")
_UDEV_DIRS = ("usr/lib/udev/rules.d", "lib/udev/rules.d")
# Serial numbers that firmware or EEPROM defaults give many boards alike (CH340B: 12345678).
_PLACEHOLDER_SERIAL = re.compile(r"(.)\1*|0?123456789?(ABCDEF)?", re.IGNORECASE)


class IdentifyError(Exception):
    """The boards cannot be told apart this way; the message says why and what to do."""


def link_names(pair: str | None) -> dict[Role, str]:
    """``so101_leader``/``so101_follower``, or ``so101_<pair>_leader``... for a named pair."""
    if pair is None:
        return {role: f"so101_{role}" for role in ROLES}
    if not _PAIR_NAME.fullmatch(pair):
        raise ValueError(f"invalid pair name {pair!r}: use letters, digits, '_' and '-'")
    return {role: f"so101_{pair}_{role}" for role in ROLES}


def devices_from_json(text: str) -> list[UsbSerialDevice]:
    """Devices from a JSON list of objects with UsbSerialDevice's field names."""
    from so101d.devices import UsbSerialDevice

    fields = [field.name for field in dataclasses.fields(UsbSerialDevice)]
    items = json.loads(text)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError("expected a JSON list of objects")
    devices = []
    for item in items:
        if unknown := item.keys() - set(fields):
            raise ValueError(f"unknown device field(s): {', '.join(sorted(unknown))}")
        devices.append(UsbSerialDevice(**{name: item.get(name) for name in fields}))
    return devices


def usb_id(device: UsbSerialDevice) -> tuple[str, str]:
    return device.vendor_id.lower(), device.product_id.lower()


def board_name(device: UsbSerialDevice) -> str:
    known = KNOWN_BOARDS.get(usb_id(device))
    text = f"{device.vendor_id}:{device.product_id}"
    return f"{known} ({text})" if known else text


# -- by the user's word ------------------------------------------------------------------


def find_device(devices: Sequence[UsbSerialDevice], key: str) -> UsbSerialDevice:
    """The one device whose serial number, device node or by-path/by-id link is ``key``."""
    found = [d for d in devices if key in (d.serial, d.device_node, d.by_path, d.by_id)]
    if not found:
        raise IdentifyError(f"no board has serial number or path {key!r} (see the table)")
    if len(found) > 1:
        nodes = ", ".join(d.device_node for d in found)
        raise IdentifyError(f"{key!r} names several boards ({nodes}): give a device path")
    return found[0]


def assign_by_keys(
    devices: Sequence[UsbSerialDevice], keys: Mapping[Role, str]
) -> dict[Role, UsbSerialDevice]:
    assigned = {role: find_device(devices, key) for role, key in keys.items()}
    _require_distinct(assigned)
    return assigned


# -- by unplugging -----------------------------------------------------------------------


def assign_by_unplug(
    list_devices: Callable[[], list[UsbSerialDevice]], ask: Callable[[str], object]
) -> dict[Role, UsbSerialDevice]:
    """Ask the user to unplug each role's board in turn and see which one vanished.

    The last role needs no unplugging when exactly one candidate is left.
    """
    candidates = list_devices()
    if len(candidates) < len(ROLES):
        raise IdentifyError(f"found {len(candidates)} board(s); plug in both arms' boards")
    assigned: dict[Role, UsbSerialDevice] = {}
    for role in ROLES:
        left = [d for d in candidates if d not in assigned.values()]
        if role is ROLES[-1] and len(left) == 1:
            assigned[role] = left[0]
            break
        ask(f"Unplug the USB cable of the {role} arm's board, then press Enter: ")
        present = {_identity(d) for d in list_devices()}
        gone = [d for d in left if _identity(d) not in present]
        if len(gone) != 1:
            raise IdentifyError(f"{len(gone)} boards vanished, expected exactly one")
        assigned[role] = gone[0]
        ask("Plug it back in, then press Enter: ")
    return assigned


def _identity(device: UsbSerialDevice) -> tuple[str | None, ...]:
    # The device node can change on replug; what identifies the board cannot.
    return (device.vendor_id, device.product_id, device.serial, device.by_path)


# -- by asking the servos ----------------------------------------------------------------


@dataclass(frozen=True)
class VoltageReading:
    device: UsbSerialDevice
    volts: float | None  # median supply voltage of the servos that answered
    problem: str | None = None  # why there is no reading

    @property
    def role(self) -> Role | None:
        if self.volts is None:
            return None
        if self.volts < LEADER_MAX_V:
            return Role.LEADER
        if self.volts >= FOLLOWER_MIN_V:
            return Role.FOLLOWER
        return None

    def describe(self) -> str:
        if self.volts is None:
            return self.problem or "no servo answered"
        role = self.role or f"unclear (between {LEADER_MAX_V} and {FOLLOWER_MIN_V} V)"
        return f"{self.volts:.1f} V: {role}"


@dataclass(frozen=True)
class ProbePlan:
    probe: list[UsbSerialDevice]  # boards whose servos may be asked
    left_alone: list[UsbSerialDevice]  # WCH boards that may not be servo boards at all


def plan_probes(
    devices: Sequence[UsbSerialDevice],
    named: Sequence[str],
    ask: Callable[[UsbSerialDevice], bool],
) -> ProbePlan:
    """Which boards to ask for their servos' voltage.

    A CH343 (the SO-101 arms' board) is asked; so is any board the person ``named`` (serial
    or path, e.g. an arm's CH340 board). Another WCH board is asked only when ``ask(board)``
    says yes (the person, in a terminal: never implied by ``--yes``). Boards of other
    makers are no servo boards and are left out.
    """
    chosen = [find_device(devices, key) for key in named]
    plan = ProbePlan([], [])
    for device in devices:
        if device in chosen or usb_id(device) == CH343:
            plan.probe.append(device)
        elif device.vendor_id.lower() == WCH_VENDOR:
            (plan.probe if ask(device) else plan.left_alone).append(device)
    return plan


def read_supply_voltage(port: str) -> float | None:
    """Median ``Present_Voltage`` (volts) of the servos answering on ``port``; None if none do.

    The port is opened without raising DTR or RTS, which reset some boards. Motors that
    miss a reply are asked again for up to ``ANSWER_WITHIN_S`` (a busy CPU is not a missing
    servo).
    """
    from so101d.feetech import FeetechBus, ServoError
    from so101d.feetech.roll_call import roll_call

    def volts_of(motor: int) -> float | None:
        try:
            return bus.read("Present_Voltage", motor) / 10
        except ServoError as exc:  # e.g. the voltage error bit: the reading still came
            return exc.values[motor] / 10 if motor in exc.values else None

    with FeetechBus(port, raise_dtr_rts=False) as bus:
        tries = roll_call(bus, MOTOR_IDS, volts_of, ANSWER_WITHIN_S)
    volts = [t.answer for t in tries.values() if t.answer is not None]
    return statistics.median(volts) if volts else None


def measure_voltages(
    devices: Sequence[UsbSerialDevice],
    read: Callable[[str], float | None] = read_supply_voltage,
) -> list[VoltageReading]:
    """Ask the servos behind each of ``devices`` (see :func:`plan_probes` for which)."""
    from so101d.feetech import BusError

    readings = []
    for device in devices:
        try:
            readings.append(VoltageReading(device, read(device.device_node)))
        except BusError as exc:
            readings.append(VoltageReading(device, None, exc.detail))
    return readings


def assign_by_voltage(readings: Sequence[VoltageReading]) -> dict[Role, UsbSerialDevice]:
    unclear = [r for r in readings if r.volts is not None and r.role is None]
    if unclear:
        raise IdentifyError(f"{unclear[0].device.device_node}: {unclear[0].describe()}")
    assigned: dict[Role, UsbSerialDevice] = {}
    for role in ROLES:
        matching = [r.device for r in readings if r.role is role]
        if len(matching) != 1:
            hint = " (several pairs? name each pair's boards with --leader/--follower)"
            raise IdentifyError(
                f"{len(matching)} board(s) look like a {role} by voltage, expected one"
                + (hint if matching else "")
            )
        assigned[role] = matching[0]
    return assigned


def _require_distinct(assigned: Mapping[Role, UsbSerialDevice]) -> None:
    if len({_identity(d) for d in assigned.values()}) != len(assigned):
        raise IdentifyError("the same board was named for two arms")


# -- how udev recognises a board ---------------------------------------------------------


@dataclass(frozen=True)
class BoardRule:
    rule: LinkRule
    note: str | None  # why the rule follows the USB port instead of the serial number


def rule_for(link: str, device: UsbSerialDevice, devices: Sequence[UsbSerialDevice]) -> BoardRule:
    """Match by serial number when it is unique and real, else by USB port (with a note)."""
    vendor, product = device.vendor_id.lower(), device.product_id.lower()
    problem = _serial_problem(device, devices)
    if problem is None:
        assert device.serial is not None
        rule = LinkRule(
            link,
            vendor,
            product,
            MatchKey.SERIAL,
            device.serial,
            f"{board_name(device)}, serial number {device.serial}",
        )
        return BoardRule(rule, None)
    if not device.by_path:
        raise IdentifyError(f"{device.device_node} {problem}, and it has no by-path name either")
    port = id_path(device.by_path)
    rule = LinkRule(
        link, vendor, product, MatchKey.PATH, port, f"{board_name(device)}, USB port {port}"
    )
    note = (
        f"{device.device_node} {problem}: {link} follows the USB port instead, so keep this "
        "board's cable in the same socket (moving it, or adding a hub, loses the name)"
    )
    return BoardRule(rule, note)


def _serial_problem(device: UsbSerialDevice, devices: Sequence[UsbSerialDevice]) -> str | None:
    if not device.serial:
        return "has no USB serial number (CH340 boards have none)"
    if _PLACEHOLDER_SERIAL.fullmatch(device.serial):
        return f"has the placeholder serial number {device.serial!r}, which many boards share"
    twins = [
        d.device_node
        for d in devices
        if d is not device
        and (d.vendor_id, d.product_id, d.serial)
        == (device.vendor_id, device.product_id, device.serial)
    ]
    if twins:
        return f"shares its serial number {device.serial!r} with {', '.join(twins)}"
    return None


def id_path(by_path: str) -> str:
    """udev's ID_PATH from a /dev/serial/by-path name (which may add ``-port<N>``)."""
    return re.sub(r"-port[0-9]+$", "", os.path.basename(by_path))


# -- the rest of the system ---------------------------------------------------------------


def system_notices(root: Path, devices: Iterable[UsbSerialDevice]) -> list[str]:
    """Warnings about software on the system under ``root`` that grabs serial ports."""
    notices = []
    brltty = _active_brltty_rules(root)
    if (root / "usr/bin/brltty").exists() or brltty:
        ch340 = any(usb_id(d) == CH340 for d in devices)
        rules = f" (udev rules: {', '.join(brltty)})" if brltty else ""
        notices.append(
            f"warning: brltty is installed{rules}. It can claim USB serial boards"
            f"{', like the CH340 board plugged in now,' if ch340 else ' (notably CH340)'} and "
            "disconnect them. On a Pi without a braille display: sudo apt remove brltty"
        )
    if any((root / d / "ModemManager.service").exists() for d in _UNIT_DIRS):
        notices.append(
            "note: ModemManager is installed. The rules set ID_MM_DEVICE_IGNORE, so it leaves "
            "these boards alone; on a dedicated Pi you may also: "
            "sudo systemctl disable --now ModemManager"
        )
    return notices


def group_notice(root: Path, group: str) -> str | None:
    """A warning when ``group``, which the rules give the boards to, does not exist under
    ``root``: udev would then leave the nodes to its defaults (``root:dialout``)."""
    try:
        lines = (root / "etc/group").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    if any(line.split(":", 1)[0] == group for line in lines):
        return None
    return (
        f"warning: the group {group!r} does not exist here, so udev leaves the boards "
        f"root:dialout until it does (deploy/install.sh creates it: sudo groupadd --system "
        f"{group}), or pass --group"
    )


def _active_brltty_rules(root: Path) -> list[str]:
    """brltty's udev rule files that are not masked by a /dev/null link in /etc."""
    found = sorted(
        {
            p.name
            for d in _UDEV_DIRS
            if (root / d).is_dir()
            for p in (root / d).glob("*brltty*.rules")
        }
    )
    masked = root / "etc/udev/rules.d"
    return [name for name in found if os.path.realpath(masked / name) != "/dev/null"]


# -- the table ------------------------------------------------------------------------------


def render_table(devices: Sequence[UsbSerialDevice]) -> str:
    header = ("DEVICE", "BOARD", "SERIAL", "BY-PATH", "MODEL")
    rows = [
        (
            d.device_node,
            board_name(d),
            d.serial or "(none)",
            id_path(d.by_path) if d.by_path else "(none)",
            d.model or "",
        )
        for d in devices
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )
