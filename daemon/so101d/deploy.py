"""The files so101d installs onto a system: templates found and filled, results written safely.

A template is a text file with ``@NAME@`` placeholders. In a source checkout (or an editable
install) the templates live in ``udev/`` and ``deploy/``; an installed wheel carries them as
data files in ``<prefix>/share/so101d/``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from so101d.durable import fsync_directory, write_synced

RULES_TEMPLATE = "70-so101d.rules.in"
UNIT_TEMPLATE = "lerobot.service.in"
WEB_UNIT_TEMPLATE = "so101d-web.service.in"

_SOURCE_ROOT = Path(__file__).resolve().parents[2]
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def template_dirs() -> list[Path]:
    return [_SOURCE_ROOT / "udev", _SOURCE_ROOT / "deploy", Path(sys.prefix) / "share" / "so101d"]


def read_template(name: str) -> str:
    for directory in template_dirs():
        if (directory / name).is_file():
            return (directory / name).read_text(encoding="utf-8")
    searched = ", ".join(str(d) for d in template_dirs())
    raise FileNotFoundError(f"template {name} not found (searched {searched})")


def fill_template(text: str, values: Mapping[str, str]) -> str:
    """Replace every ``@NAME@``. A placeholder without a value is an error, and so is a value
    without a placeholder (a renamed placeholder must not be skipped silently)."""
    used = set(_PLACEHOLDER.findall(text))
    if missing := used - values.keys():
        raise KeyError(f"no value for template placeholder(s) {', '.join(sorted(missing))}")
    if unused := values.keys() - used:
        raise KeyError(f"template has no placeholder(s) {', '.join(sorted(unused))}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def under_root(root: Path | None, path: Path) -> Path:
    """``path`` (absolute, on the target system) inside the staging ``root``, if any."""
    return path if root is None else root / path.relative_to("/")


def install_text(path: Path, text: str, mode: int = 0o644) -> bool:
    """Make ``path`` hold ``text``; False when it already did (nothing written).

    Written to a synced temporary sibling and renamed over, so a power cut leaves either
    the old or the new file, never a torn one.
    """
    data = text.encode("utf-8")
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write_synced(tmp, data, mode)
    os.replace(tmp, path)
    fsync_directory(path.parent)
    return True
