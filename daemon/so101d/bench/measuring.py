"""What both benchmark loops measure: CPU, cycle times and system calls, and their report.

Only the standard library is used, so both loops (so101d's and LeRobot's, in LeRobot's own
interpreter) load this file. System calls are counted by wrapping the functions that make
them. What is counted is what the serial I/O of either
stack goes through: ``os.read``/``readv``/``write``, ``select.select``, ``poll`` objects
handed over by the caller, ``termios`` flushes and drains, ``fcntl.ioctl`` and ``time.sleep``
(each one system call). Calls made from C code of other libraries are not seen.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import select
import termios
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

WRAPPED: tuple[tuple[ModuleType, str], ...] = (
    (os, "read"),
    (os, "readv"),
    (os, "write"),
    (select, "select"),
    (termios, "tcflush"),
    (termios, "tcdrain"),
    (fcntl, "ioctl"),
    (time, "sleep"),
)


class _CountingPoll:
    """Stands in for a ``select.poll`` object while counting."""

    def __init__(self, real: Any, count: Callable[[str], None]) -> None:
        self.real, self._count = real, count
        self.register, self.unregister, self.modify = real.register, real.unregister, real.modify

    def poll(self, *timeout: float | None) -> list[tuple[int, int]]:
        self._count("poll")
        result: list[tuple[int, int]] = self.real.poll(*timeout)
        return result


class SyscallCounter:
    """While entered, counts calls by name in ``counts``: those of the thread that entered
    it (a simulator serving the other end of the port in this process is not counted).

    ``holders`` are objects keeping a poll object in an attribute named ``poll_attribute``
    (so101d's bus keeps it in ``_poller``): it is swapped for a counting one meanwhile.
    """

    def __init__(self, holders: Iterable[object] = (), poll_attribute: str = "_poller") -> None:
        self.counts: Counter[str] = Counter()
        self._holders = [h for h in holders if getattr(h, poll_attribute, None) is not None]
        self._attribute = poll_attribute
        self._originals: list[tuple[ModuleType, str, Any]] = []
        self._thread = threading.get_ident()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def _count(self, name: str) -> None:
        if threading.get_ident() == self._thread:
            self.counts[name] += 1

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self._count(name)
            return real(*args, **kwargs)

        return counted

    def __enter__(self) -> SyscallCounter:
        self._thread = threading.get_ident()
        for module, name in WRAPPED:
            real = getattr(module, name)
            self._originals.append((module, name, real))
            setattr(module, name, self._wrap(name, real))
        for holder in self._holders:
            real_poll = getattr(holder, self._attribute)
            setattr(holder, self._attribute, _CountingPoll(real_poll, self._count))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for module, name, real in self._originals:
            setattr(module, name, real)
        self._originals.clear()
        for holder in self._holders:
            wrapper = getattr(holder, self._attribute, None)
            if isinstance(wrapper, _CountingPoll):
                setattr(holder, self._attribute, wrapper.real)


def cpu_seconds() -> float:
    """User and system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def save_result(
    out: str | Path,
    cpu_s: float,
    elapsed_s: float,
    durations: Sequence[float],
    counter: SyscallCounter,
    counted_cycles: int,
) -> None:
    """What one run measured, as ``so101d bench`` reads it: the timed phase (``cpu_s``,
    ``elapsed_s``, each cycle's duration), then the counted one, and the peak RSS."""
    result = {
        "cpu_s": cpu_s,
        "elapsed_s": elapsed_s,
        "durations": list(durations),
        "syscalls": dict(counter.counts),
        "counted_cycles": counted_cycles,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    Path(out).write_text(json.dumps(result))
