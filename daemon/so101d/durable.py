"""Files that survive a power cut: content synced before it is used, renames made durable.

The SD card of a Pi that loses power mid-write must never be left with a torn file; both the
calibration store and the deploy files are written with these two steps around ``os.replace``.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_synced(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` and fsync it; ``mode`` (if given) is set whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if mode is not None:
            os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(directory: Path) -> None:
    """Make the names in ``directory`` (a rename, a new link) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
