"""systemd integration: sd_notify datagrams on a fake NOTIFY_SOCKET, the watchdog interval,
and journal priority prefixes on every line of every log record."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from so101d.service import Notifier, setup_logging, stderr_is_journal, watchdog_interval

LOGGING_CHILD = """
import logging
from so101d.service import setup_logging

setup_logging("debug")
log = logging.getLogger("so101d.pair.main")
log.debug("debug line")
log.info("info line")
log.warning("first line\\nsecond line of the same warning")
try:
    raise RuntimeError("boom")
except RuntimeError:
    log.exception("it failed")
log.critical("critical line")
"""
EXPECTED_PRIORITIES = {
    "debug line": "<7>",
    "info line": "<6>",
    "first line": "<4>",
    "second line": "<4>",
    "it failed": "<3>",
    "Traceback": "<3>",
    "RuntimeError: boom": "<3>",
    "critical line": "<2>",
}
PLAIN_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET."""

    def __init__(self, address: str) -> None:
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(address)
        self.socket.settimeout(5)

    def receive(self) -> bytes:
        return self.socket.recv(4096)

    def nothing_pending(self) -> bool:
        self.socket.setblocking(False)
        try:
            self.socket.recv(4096)
        except BlockingIOError:
            return True
        finally:
            self.socket.settimeout(5)
        return False


@pytest.fixture
def systemd(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    # AF_UNIX paths are limited to ~107 bytes: pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="so101d-", dir="/tmp") as directory:
        path = os.path.join(directory, "notify")
        fake = FakeSystemd(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        yield fake
        fake.socket.close()


def test_the_notify_messages_are_the_exact_datagrams(systemd: FakeSystemd) -> None:
    notifier = Notifier()
    assert notifier.enabled
    notifier.ready("main: waiting for the leader")
    notifier.status("main: teleop 100 Hz")
    notifier.watchdog()
    notifier.stopping()
    notifier.close()
    notifier.watchdog()  # after close: nothing
    assert systemd.receive() == b"READY=1\nSTATUS=main: waiting for the leader"
    assert systemd.receive() == b"STATUS=main: teleop 100 Hz"
    assert systemd.receive() == b"WATCHDOG=1"
    assert systemd.receive() == b"STOPPING=1"
    assert systemd.nothing_pending()


def test_a_status_stays_on_one_line_and_is_sent_as_utf8(systemd: FakeSystemd) -> None:
    notifier = Notifier()
    notifier.status("main: paused\nfollower at 61 °C → cooling")
    notifier.close()
    assert systemd.receive() == "STATUS=main: paused follower at 61 °C → cooling".encode()


def test_an_abstract_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"so101d-test-{os.getpid()}"
    fake = FakeSystemd("\0" + name)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        notifier = Notifier()
        notifier.watchdog()
        notifier.close()
        assert fake.receive() == b"WATCHDOG=1"
    finally:
        fake.socket.close()


def test_without_notify_socket_the_notifier_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    notifier.ready("x")
    notifier.status("x")
    notifier.watchdog()
    notifier.stopping()
    notifier.close()


# sdnotify drops the socket it could not connect without closing it.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_vanished_notify_socket_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/notify")
    notifier = Notifier()
    notifier.ready("x")
    notifier.close()


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("200000", None, 0.1),
        ("20000000", "own", 10.0),
        ("200000", "other", None),
        (None, None, None),
        ("0", None, None),
        ("-5", None, None),
        ("soon", None, None),
        ("200000", "me", None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process(
    monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None, expected: float | None
) -> None:
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            own = str(os.getpid())
            monkeypatch.setenv(name, {"own": own, "other": str(os.getpid() + 1)}.get(value, value))
    assert watchdog_interval() == expected


def test_stderr_is_journal_compares_device_and_inode(monkeypatch: pytest.MonkeyPatch) -> None:
    stat = os.fstat(2)
    monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")
    assert stderr_is_journal()
    monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino + 1}")
    assert not stderr_is_journal()
    monkeypatch.setenv("JOURNAL_STREAM", "garbage")
    assert not stderr_is_journal()
    monkeypatch.delenv("JOURNAL_STREAM")
    assert not stderr_is_journal()


def run_logging_child(stderr_path: Path, journal: bool) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    with open(stderr_path, "wb") as stderr:
        if journal:
            stat = os.fstat(stderr.fileno())
            env["JOURNAL_STREAM"] = f"{stat.st_dev}:{stat.st_ino}"
        subprocess.run(
            [sys.executable, "-c", LOGGING_CHILD], stderr=stderr, env=env, check=True, timeout=60
        )
    return stderr_path.read_text().splitlines()


def test_every_line_carries_its_priority_when_stderr_is_the_journal(tmp_path: Path) -> None:
    lines = run_logging_child(tmp_path / "stderr", journal=True)
    assert len(lines) > len(EXPECTED_PRIORITIES)  # the traceback has several lines
    for line in lines:
        assert re.match(r"<[0-7]>", line), line
        assert not PLAIN_LINE.match(line[3:]), line  # the journal stamps the time itself
    for text, prefix in EXPECTED_PRIORITIES.items():
        (line,) = [line for line in lines if text in line]
        assert line.startswith(prefix), line
    assert "<6>so101d.pair.main: info line" in lines
    failed = lines.index("<3>so101d.pair.main: it failed")
    critical = lines.index("<2>so101d.pair.main: critical line")
    assert all(line.startswith("<3>") for line in lines[failed:critical])  # the whole traceback


def test_plain_readable_lines_elsewhere(tmp_path: Path) -> None:
    lines = run_logging_child(tmp_path / "stderr", journal=False)
    assert not any(line.startswith("<") for line in lines)
    records = [line for line in lines if PLAIN_LINE.match(line)]
    assert len(records) == 5  # debug, info, warning, error, critical
    assert any(line.endswith(" WARNING so101d.pair.main: first line") for line in records)


def test_an_unknown_log_level_is_refused() -> None:
    with pytest.raises(ValueError, match="verbose"):
        setup_logging("verbose")
