"""Living under systemd: sd_notify messages, the watchdog interval, journal-friendly logging.

Everything here degrades to a no-op or to plain output when the process is not a systemd
service, so ``so101d run`` behaves the same in a terminal.
"""

from __future__ import annotations

import logging
import os
import sys

import sdnotify

__all__ = [
    "JournalFormatter",
    "Notifier",
    "setup_logging",
    "stderr_is_journal",
    "watchdog_interval",
]

LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PLAIN_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
JOURNAL_FORMAT = "%(name)s: %(message)s"  # the journal stamps time itself

# sd-daemon(3) priorities, highest logging level first.
_PRIORITIES = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
)
_DEBUG_PRIORITY = 7


class Notifier:
    """sd_notify(3) messages to systemd; does nothing when NOTIFY_SOCKET is not set."""

    def __init__(self) -> None:
        self._notifier = sdnotify.SystemdNotifier() if os.environ.get("NOTIFY_SOCKET") else None

    @property
    def enabled(self) -> bool:
        return self._notifier is not None

    def ready(self, status: str) -> None:
        self._send(f"READY=1\nSTATUS={_one_line(status)}")

    def status(self, text: str) -> None:
        self._send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def close(self) -> None:
        """Close the notification socket (sdnotify keeps one connected for its lifetime)."""
        notifier, self._notifier = self._notifier, None
        sock = getattr(notifier, "socket", None)  # None when sdnotify could not connect
        if sock is not None:
            sock.close()

    def _send(self, message: str) -> None:
        if self._notifier is not None:
            # sdnotify encodes as Latin-1 (and silently drops what does not fit); systemd reads
            # UTF-8. Handing it the UTF-8 bytes as Latin-1 characters puts those bytes on the wire.
            self._notifier.notify(message.encode("utf-8").decode("latin-1"))


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half of WatchdogSec=), or None without a watchdog.

    As sd_watchdog_enabled(3): WATCHDOG_USEC counts only if WATCHDOG_PID is unset or ours.
    """
    usec, pid = os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID")
    try:
        if pid and int(pid) != os.getpid():
            return None
        microseconds = int(usec) if usec else 0
    except ValueError:
        return None
    return microseconds / 1e6 / 2 if microseconds > 0 else None


def stderr_is_journal() -> bool:
    """Whether fd 2 is the journal stream systemd set up (JOURNAL_STREAM = device:inode)."""
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        expected = (int(device), int(inode))
        stat = os.fstat(2)
    except (ValueError, OSError):
        return False
    return (stat.st_dev, stat.st_ino) == expected


class JournalFormatter(logging.Formatter):
    """Prefixes every line of a record (tracebacks too) with its sd-daemon ``<N>`` priority,
    since the journal reads an unprefixed line as info."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def _priority(levelno: int) -> int:
    for level, priority in _PRIORITIES:
        if levelno >= level:
            return priority
    return _DEBUG_PRIORITY


def setup_logging(level: str = "info") -> None:
    """Send every log record to stderr at ``level`` (debug, info, warning or error)."""
    try:
        threshold = LOG_LEVELS[level.lower()]
    except KeyError:
        raise ValueError(
            f"unknown log level {level!r}; use one of {', '.join(LOG_LEVELS)}"
        ) from None
    handler = logging.StreamHandler(sys.stderr)
    if stderr_is_journal():
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT, PLAIN_DATE_FORMAT))
    logging.basicConfig(level=threshold, handlers=[handler], force=True)
