"""Saving calibration files so that a crash or a power cut never loses one.

An SD card that loses power mid-write is a normal event for this appliance, so every save
keeps the canonical path holding a complete file at every instant, and keeps the previous
content as a backup.
"""

from __future__ import annotations

import contextlib
import os
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


def save_bytes(path: Path, data: bytes, *, keep_backups: int = DEFAULT_KEEP_BACKUPS) -> SavedFile:
    """Replace ``path`` with ``data`` atomically, keeping the old content as a backup.

    1. write ``<name>.tmp`` and fsync it, so the new content is on disk before it is used;
    2. hard-link the current file as ``<name>.bak-<UTC timestamp>`` (a synced copy where
       the filesystem has no hard links);
    3. ``os.replace`` the temporary file onto ``path``;
    4. fsync the directory, making the rename and the backup's name durable;
    5. delete all but the newest ``keep_backups`` backups.

    The old file is deliberately not *moved* to the backup name: between that move and the
    replace the canonical path would not exist, and a crash there would lose it. A link (or
    copy) leaves the canonical name on the complete old file until ``os.replace`` switches
    it, in one step, to the complete new one. A crash at any point therefore leaves either
    the old or the new file whole at ``path`` (at worst with a stray ``.tmp``, which the
    next save overwrites). Backup names sort by time; a clock set backwards (a Pi without
    a real-time clock) can only make the wrong backups the oldest, never lose the file.
    Identical content is not rewritten, sparing the SD card and the backups.
    """
    if keep_backups < 1:
        raise ValueError(f"keep_backups must be at least 1, not {keep_backups}")
    if _current_bytes(path) == data:
        return SavedFile(path, changed=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    write_synced(tmp, data)
    try:
        backup = _back_up(path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_directory(path.parent)
    _prune_backups(path, keep_backups)
    return SavedFile(path, changed=True, backup=backup)


def backups(path: Path) -> list[Path]:
    """The backups of ``path``, oldest first."""
    prefix = path.name + BACKUP_MARKER
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    return [
        path.parent / name
        for name in sorted(names)
        if name.startswith(prefix) and not name.endswith(TMP_SUFFIX)
    ]


def _back_up(path: Path) -> Path | None:
    if not path.exists():
        return None
    backup = _free_backup_name(path)
    try:
        os.link(path, backup)
    except OSError:  # no hard links here (e.g. FAT): a copy, written atomically itself
        copy = backup.with_name(backup.name + TMP_SUFFIX)
        write_synced(copy, path.read_bytes())
        os.replace(copy, backup)
    return backup


def _free_backup_name(path: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    backup = path.with_name(f"{path.name}{BACKUP_MARKER}{stamp}")
    serial = 0
    while backup.exists():  # two saves within one microsecond, or a clock set back
        serial += 1
        backup = path.with_name(f"{path.name}{BACKUP_MARKER}{stamp}-{serial}")
    return backup


def _prune_backups(path: Path, keep: int) -> None:
    for old in backups(path)[:-keep]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()


def _current_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
