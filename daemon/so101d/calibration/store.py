"""Saving calibration files so that a crash or a power cut never loses one.

An SD card that loses power mid-write is a normal event for this appliance, so every save
keeps the canonical path holding a complete file at every instant, and keeps the previous
content as a backup.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from so101d.calibration.files import serialize_calibration
from so101d.calibration.locate import other_layout_path
from so101d.calibration.model import ArmCalibration
from so101d.durable import fsync_directory, write_synced

DEFAULT_KEEP_BACKUPS = 5
BACKUP_MARKER = ".bak-"
TMP_SUFFIX = ".tmp"
_NUMBERED = re.compile(r"([0-9]+)-")  # <N>-<UTC time>; older backups have no N


@dataclass(frozen=True)
class SavedFile:
    path: Path
    changed: bool  # False when the file already held exactly these bytes (nothing written)
    backup: Path | None = None  # where the previous content now lives, if there was one


def save_calibration(
    path: Path, calibration: ArmCalibration, *, keep_backups: int = DEFAULT_KEEP_BACKUPS
) -> list[SavedFile]:
    """Save in LeRobot's format at ``path`` and at the other layout's file when that exists,
    so neither LeRobot era keeps reading a stale calibration for this arm."""
    data = serialize_calibration(calibration)
    targets = [path]
    other = other_layout_path(path)
    if other is not None and other.is_file():
        targets.append(other)
    return [save_bytes(target, data, keep_backups=keep_backups) for target in targets]


def save_bytes(
    path: Path,
    data: bytes,
    *,
    keep_backups: int = DEFAULT_KEEP_BACKUPS,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SavedFile:
    """Replace ``path`` with ``data`` atomically, keeping the old content as a backup.

    1. write ``<name>.tmp`` and fsync it, so the new content is on disk before it is used;
    2. delete the oldest backups, leaving room for one more within ``keep_backups``;
    3. hard-link the current file as ``<name>.bak-<N>-<UTC time>`` (a synced copy where
       the filesystem has no hard links), ``N`` one more than the newest backup's;
    4. ``os.replace`` the temporary file onto ``path``;
    5. fsync the directory, making the rename and the backup's name durable.

    The old file is deliberately not *moved* to the backup name: between that move and the
    replace the canonical path would not exist, and a crash there would lose it. A link (or
    copy) leaves the canonical name on the complete old file until ``os.replace`` switches
    it, in one step, to the complete new one. A crash at any point therefore leaves either
    the old or the new file whole at ``path`` (at worst with a stray ``.tmp``, which the
    next save overwrites), and never more than ``keep_backups`` backups.

    Backups are ordered by ``N``, their own creation order, never by the time in their
    name: a Pi has no real-time clock, and a save before NTP has set it must not make the
    newest backup look like the oldest. ``clock`` only labels the backup for people.
    Identical content is not rewritten, sparing the SD card and the backups.
    """
    if keep_backups < 1:
        raise ValueError(f"keep_backups must be at least 1, not {keep_backups}")
    if _current_bytes(path) == data:
        _prune_backups(path, keep_backups)
        return SavedFile(path, changed=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    write_synced(tmp, data)
    try:
        _prune_backups(path, keep_backups - 1)
        backup = _back_up(path, clock)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_directory(path.parent)
    return SavedFile(path, changed=True, backup=backup)


def backups(path: Path) -> list[Path]:
    """The backups of ``path``, oldest first: in the order they were made.

    Backups from before numbering (``<name>.bak-<UTC time>``) count as older than every
    numbered one, in the order of their names.
    """
    return [path.parent / name for _, name in sorted(_backup_names(path))]


def _backup_names(path: Path) -> list[tuple[int, str]]:
    """``(sequence number, file name)`` of each backup of ``path``; 0 for unnumbered ones."""
    prefix = path.name + BACKUP_MARKER
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    return [
        (_sequence(name[len(prefix) :]), name)
        for name in names
        if name.startswith(prefix) and not name.endswith(TMP_SUFFIX)
    ]


def _sequence(label: str) -> int:
    numbered = _NUMBERED.match(label)
    return int(numbered.group(1)) if numbered else 0


def _back_up(path: Path, clock: Callable[[], datetime]) -> Path | None:
    if not path.exists():
        return None
    number = max((n for n, _ in _backup_names(path)), default=0) + 1
    stamp = clock().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    backup = path.with_name(f"{path.name}{BACKUP_MARKER}{number}-{stamp}")
    try:
        os.link(path, backup)
    except OSError:  # no hard links here (e.g. FAT): a copy, written atomically itself
        copy = backup.with_name(backup.name + TMP_SUFFIX)
        write_synced(copy, path.read_bytes())
        os.replace(copy, backup)
    return backup


def _prune_backups(path: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` backups, and copies a crash left half-made."""
    prefix = path.name + BACKUP_MARKER
    half_made = [
        path.parent / name
        for name in os.listdir(path.parent)
        if name.startswith(prefix) and name.endswith(TMP_SUFFIX)
    ]
    ordered = backups(path)
    for old in half_made + ordered[: max(0, len(ordered) - keep)]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()


def _current_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
