"""Atomic saves with bounded backups: a crash at any point leaves a complete file."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from so101d.calibration.files import read_calibration, serialize_calibration
from so101d.calibration.locate import Layout, calibration_path
from so101d.calibration.model import ArmCalibration, Role
from so101d.calibration.store import backups, save_bytes, save_calibration
from tests.test_calibration_healthy import (
    REAL_FOLLOWER,
    REFERENCE_FOLLOWER,
    arm,
    changed,
    write,
)

OLD = arm(REFERENCE_FOLLOWER)
NEW = arm(REAL_FOLLOWER)


def versions(count: int) -> list[ArmCalibration]:
    """``count`` distinct calibrations."""
    return [changed(OLD, "gripper", homing_offset=i) for i in range(count)]


def test_first_save_writes_lerobot_bytes_and_no_backup(tmp_path: Path) -> None:
    path = tmp_path / "robots/so_follower/a.json"
    (saved,) = save_calibration(path, OLD)
    assert path.read_bytes() == serialize_calibration(OLD)
    assert (saved.path, saved.changed, saved.backup) == (path, True, None)
    assert backups(path) == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_a_new_save_keeps_the_old_content_as_a_backup(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", OLD)
    (saved,) = save_calibration(path, NEW)
    assert read_calibration(path) == NEW
    assert saved.backup is not None
    assert backups(path) == [saved.backup]
    assert saved.backup.name.startswith("a.json.bak-")
    assert saved.backup.name.endswith("Z")
    assert read_calibration(saved.backup) == OLD


def test_identical_content_is_not_rewritten(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", OLD)
    inode = path.stat().st_ino
    (saved,) = save_calibration(path, OLD)
    assert not saved.changed
    assert path.stat().st_ino == inode
    assert backups(path) == []


def test_backups_are_bounded_to_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    history = versions(8)
    for calibration in history:
        save_calibration(path, calibration, keep_backups=3)
    kept = backups(path)
    assert [read_calibration(p) for p in kept] == history[-4:-1]
    assert read_calibration(path) == history[-1]


def clock_at(*moments: datetime) -> Callable[[], datetime]:
    """A clock that reads ``moments`` in turn, as a Pi's clock may jump between boots."""
    readings = iter(moments)
    return lambda: next(readings)


AFTER_NTP = datetime(2031, 6, 1, 12, 0, tzinfo=UTC)
BEFORE_NTP = datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC)  # a Pi booted without network


def test_a_clock_set_back_never_prunes_the_newest_backup(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    history = [serialize_calibration(c) for c in versions(7)]
    clock = clock_at(*[AFTER_NTP + timedelta(days=i) for i in range(4)], BEFORE_NTP, BEFORE_NTP)
    for data in history:
        save_bytes(path, data, keep_backups=3, clock=clock)
    kept = backups(path)
    assert [p.read_bytes() for p in kept] == history[-4:-1]
    # The two newest backups sort oldest by the time in their names, yet survived.
    assert [p.name[len("a.json.bak-") :] for p in kept] == [
        "4-20310604T120000Z",
        "5-19700101T000005Z",
        "6-19700101T000005Z",
    ]
    assert path.read_bytes() == history[-1]


def test_backups_from_before_numbering_are_the_oldest(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", OLD)
    legacy = [tmp_path / f"a.json.bak-2031060{i}T120000.000000Z" for i in (1, 2)]
    for backup in legacy:
        write(backup, OLD)
    (saved,) = save_calibration(path, NEW, keep_backups=2)
    assert backups(path) == [legacy[1], saved.backup]
    assert saved.backup is not None and saved.backup.name.startswith("a.json.bak-1-")


def test_at_least_one_backup_is_kept(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        save_calibration(tmp_path / "a.json", OLD, keep_backups=0)


def test_the_other_layouts_file_is_saved_too_when_it_exists(tmp_path: Path) -> None:
    current = calibration_path(tmp_path, Role.LEADER, "a")
    old_layout = write(calibration_path(tmp_path, Role.LEADER, "a", Layout.SO101), OLD)
    saved = save_calibration(current, NEW)
    assert [s.path for s in saved] == [current, old_layout]
    assert read_calibration(old_layout) == NEW
    assert [read_calibration(p) for p in backups(old_layout)] == [OLD]


def test_the_other_layouts_file_is_not_created(tmp_path: Path) -> None:
    current = calibration_path(tmp_path, Role.LEADER, "a")
    assert [s.path for s in save_calibration(current, NEW)] == [current]
    assert not calibration_path(tmp_path, Role.LEADER, "a", Layout.SO101).exists()


def test_without_hard_links_the_backup_is_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*_: object, **__: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = write(tmp_path / "a.json", OLD)
    (saved,) = save_calibration(path, NEW)
    assert saved.backup is not None
    assert read_calibration(saved.backup) == OLD
    assert read_calibration(path) == NEW
    assert not list(tmp_path.glob("*.tmp"))


# -- crashes -------------------------------------------------------------------------------


class Crash(BaseException):
    """Stands for the process dying: nothing may catch it as an ordinary error."""


STEPS = ("open", "write", "fsync", "close", "link", "replace", "listdir", "unlink")


@pytest.fixture
def crash_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int | None], list[str]]]:
    """Arm a crash at the n-th file-system call of the next save (None: count them only)."""
    calls: list[str] = []
    target: list[int | None] = [None]

    def instrument(name: str) -> None:
        real = getattr(os, name)

        def step(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            if len(calls) - 1 == target[0]:
                raise Crash(name)
            return real(*args, **kwargs)

        monkeypatch.setattr(os, name, step)

    for name in STEPS:
        instrument(name)

    def arm_crash(n: int | None) -> list[str]:
        calls.clear()
        target[0] = n
        return calls

    yield arm_crash


def fresh(path: Path, calibration: ArmCalibration) -> None:
    """Only ``path`` in its directory, a new inode holding ``calibration``."""
    for stale in path.parent.iterdir():
        stale.unlink()
    write(path, calibration)


def test_a_crash_at_every_step_leaves_a_complete_file(
    tmp_path: Path, crash_at: Callable[[int | None], list[str]]
) -> None:
    path = tmp_path / "a.json"
    new = serialize_calibration(NEW)
    fresh(path, OLD)
    calls = crash_at(None)
    save_bytes(path, new)
    steps = list(calls)
    assert {"fsync", "link", "replace"} <= set(steps)
    for n, step in enumerate(steps):
        fresh(path, OLD)
        crash_at(n)
        with pytest.raises(Crash):
            save_bytes(path, new)
        crash_at(None)
        replaced = n > steps.index("replace")
        assert read_calibration(path) == (NEW if replaced else OLD), f"crash at {n}: {step}"
        if n > steps.index("link"):
            assert [read_calibration(p) for p in backups(path)] == [OLD], f"crash at {n}: {step}"


def test_interrupted_saves_never_leave_more_backups_than_the_limit(
    tmp_path: Path, crash_at: Callable[[int | None], list[str]]
) -> None:
    path = tmp_path / "a.json"
    history = [serialize_calibration(c) for c in versions(12)]
    for data in history[:4]:
        save_bytes(path, data, keep_backups=2)
    calls = crash_at(None)
    save_bytes(path, history[4], keep_backups=2)
    steps = len(calls)
    # A crash at every step of a save, each followed by a crash in the next one, too.
    for n in range(steps):
        for data in history[5:8]:
            crash_at(n)
            with contextlib.suppress(Crash):
                save_bytes(path, data, keep_backups=2)
            crash_at(None)
            assert len(backups(path)) <= 2, f"crash at step {n}"
        newest = path.read_bytes()
        save_bytes(path, history[8 + n % 4], keep_backups=2)
        kept = backups(path)
        assert len(kept) == 2 and kept[-1].read_bytes() == newest, f"crash at step {n}"
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_save_of_unchanged_content_also_trims_the_backups(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    for calibration in versions(6):
        save_calibration(path, calibration, keep_backups=5)
    (unchanged,) = save_calibration(path, versions(6)[-1], keep_backups=2)
    assert not unchanged.changed
    assert [read_calibration(p) for p in backups(path)] == versions(6)[-3:-1]


SAVE_FOREVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from so101d.calibration.store import save_bytes

    path, first, second = map(Path, sys.argv[1:4])
    contents = [first.read_bytes(), second.read_bytes()]
    print("ready", flush=True)
    saves = 0
    while True:
        save_bytes(path, contents[saves % 2], keep_backups=3)
        saves += 1
        print(saves, flush=True)
    """
)


def test_sigkill_mid_save_always_leaves_a_complete_file(tmp_path: Path) -> None:
    path = tmp_path / "cal" / "a.json"
    contents = [serialize_calibration(NEW), serialize_calibration(OLD)]
    sources = [write(tmp_path / f"content{i}", data) for i, data in enumerate(contents)]
    save_bytes(path, contents[1])
    rng = random.Random(101)
    completed = 0
    for kill in range(60):
        child = subprocess.Popen(
            [sys.executable, "-c", SAVE_FOREVER, str(path), *map(str, sources)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0, 0.015))
        child.send_signal(signal.SIGKILL)
        child.wait()
        completed += len(child.stdout.read().split())
        child.stdout.close()
        assert path.read_bytes() in contents, f"kill {kill}"
        if completed:
            kept = backups(path)
            assert kept, f"kill {kill}: no backup after {completed} saves"
            assert len(kept) <= 3, f"kill {kill}: {len(kept)} backups, keep_backups = 3"
            assert all(p.read_bytes() in contents for p in kept), f"kill {kill}"
    assert completed > 0
