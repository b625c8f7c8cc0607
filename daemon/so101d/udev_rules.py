"""udev rules that give each arm's USB board a stable name: render them, and lint them.

A board is matched by vendor and product ID plus either its USB serial number
(``ID_SERIAL_SHORT``, follows the board to any port) or its physical port (``ID_PATH``, for
boards without a usable serial number). Each match adds a ``/dev/<link>`` symlink, tells
ModemManager to keep away and gives the node to the service's own group (``root:so101d
0660``), not to ``dialout``: everyone in ``dialout`` (the Pi's default user) could otherwise
drive the follower.
"""

from __future__ import annotations

import enum
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from so101d.deploy import fill_template

RULES_DIR = Path("/etc/udev/rules.d")
SERVICE_GROUP = "so101d"
BOARD_MODE = "0660"
GROUP_NAME = re.compile(r"[a-z_][a-z0-9_-]*")

# Characters udev keeps in ID_* values (it replaces the rest), minus glob characters.
_VALUE = re.compile(r"[0-9A-Za-z#+\-.:=@_]+")
_HEX_ID = re.compile(r"[0-9a-f]{4}")
_LINK = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")


class MatchKey(enum.Enum):
    SERIAL = "ID_SERIAL_SHORT"
    PATH = "ID_PATH"


@dataclass(frozen=True)
class LinkRule:
    """One board: how udev recognises it and the name it gets under /dev."""

    link: str
    vendor_id: str
    product_id: str
    key: MatchKey
    value: str
    description: str

    def __post_init__(self) -> None:
        if not _LINK.fullmatch(self.link) or ".." in self.link.split("/"):
            raise ValueError(f"invalid link name {self.link!r}: use letters, digits, _ . - and /")
        for name, ident in (("vendor", self.vendor_id), ("product", self.product_id)):
            if not _HEX_ID.fullmatch(ident):
                raise ValueError(
                    f"invalid USB {name} ID {ident!r}: expected 4 lowercase hex digits"
                )
        if not _VALUE.fullmatch(self.value):
            raise ValueError(f"{self.key.value} value {self.value!r} cannot be matched exactly")
        if "\n" in self.description:
            raise ValueError("a rule description must be one line")


def rules_file_name(pair: str | None) -> str:
    return "70-so101d.rules" if pair is None else f"70-so101d-{pair}.rules"


def render_rules(template: str, rules: Sequence[LinkRule], group: str = SERVICE_GROUP) -> str:
    """The rules file: each board's rule, its node owned by ``group``."""
    if len({rule.link for rule in rules}) != len(rules):
        raise ValueError("two boards cannot share one link name")
    if not GROUP_NAME.fullmatch(group):
        raise ValueError(f"invalid group name {group!r}")
    boards = "\n\n".join(_render_rule(rule, group) for rule in rules)
    return fill_template(template, {"BOARDS": boards})


def _render_rule(rule: LinkRule, group: str) -> str:
    matches = [
        f'ENV{{ID_VENDOR_ID}}=="{rule.vendor_id}"',
        f'ENV{{ID_MODEL_ID}}=="{rule.product_id}"',
        f'ENV{{{rule.key.value}}}=="{rule.value}"',
    ]
    actions = [
        f'SYMLINK+="{rule.link}"',
        'ENV{ID_MM_DEVICE_IGNORE}="1"',
        f'GROUP="{group}"',
        f'MODE="{BOARD_MODE}"',
    ]
    return f"# {rule.link}: {rule.description}\n" + ", ".join(matches + actions)


# -- lint -----------------------------------------------------------------------------------

_KEYS = frozenset(
    {
        "ACTION",
        "DEVPATH",
        "KERNEL",
        "KERNELS",
        "NAME",
        "SYMLINK",
        "SUBSYSTEM",
        "SUBSYSTEMS",
        "DRIVER",
        "DRIVERS",
        "ATTR",
        "ATTRS",
        "SYSCTL",
        "ENV",
        "CONST",
        "TAG",
        "TAGS",
        "TEST",
        "PROGRAM",
        "RESULT",
        "OWNER",
        "GROUP",
        "MODE",
        "SECLABEL",
        "RUN",
        "IMPORT",
        "OPTIONS",
        "LABEL",
        "GOTO",
    }
)
_ITEM = r'[A-Z]+(?:\{[^}]+\})?\s*(?:==|!=|=|\+=|-=|:=)\s*"[^"]*"'
_LINE = re.compile(rf"{_ITEM}(?:\s*,\s*{_ITEM})*")
_PARTS = re.compile(r'([A-Z]+)(?:\{[^}]+\})?\s*(==|!=|=|\+=|-=|:=)\s*"([^"]*)"')


def lint_rules(text: str) -> list[str]:
    """Problems in a rules file, as ``line N: ...``; empty when every line is well-formed.

    Every non-comment line must be comma-separated ``KEY[{attr}] op "value"`` items with a
    known key, and every GOTO needs a LABEL further down (udev only jumps forward).
    """
    problems: list[str] = []
    gotos: list[tuple[int, str]] = []
    labels: dict[str, list[int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not _LINE.fullmatch(stripped):
            problems.append(f'line {number}: not a list of KEY op "value" items: {stripped}')
            continue
        for key, op, value in _PARTS.findall(stripped):
            problems.extend(f"line {number}: {p}" for p in _item_problems(key, op))
            if key == "GOTO":
                gotos.append((number, value))
            elif key == "LABEL":
                if value in labels:
                    problems.append(f"line {number}: LABEL {value!r} defined twice")
                labels.setdefault(value, []).append(number)
    problems.extend(
        f"line {number}: GOTO {label!r} has no LABEL after it"
        for number, label in gotos
        if not any(at > number for at in labels.get(label, []))
    )
    return problems


def _item_problems(key: str, op: str) -> Iterable[str]:
    if key not in _KEYS:
        yield f"unknown key {key}"
    elif key in ("LABEL", "GOTO") and op != "=":
        yield f"{key} takes '=', not {op!r}"


def udevadm_verify(path: Path) -> list[str] | None:
    """``udevadm verify`` output lines for a rules file (empty when clean), or None when this
    udevadm lacks the verb (systemd < 253, e.g. Debian 12) or there is no udevadm at all."""
    udevadm = shutil.which("udevadm")
    if udevadm is None:
        return None
    probe = subprocess.run([udevadm, "verify", "--help"], capture_output=True, check=False)
    if probe.returncode != 0:
        return None
    result = subprocess.run(
        [udevadm, "verify", "--resolve-names=never", "--no-style", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0:
        return []
    return (result.stdout + result.stderr).splitlines() or [f"exit status {result.returncode}"]
