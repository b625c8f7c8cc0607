"""Watching for the arms' serial devices, and listing the USB serial boards.

The supervisor waits for each pair's configured paths: udev's ``/dev/so101_leader`` on a Pi,
the simulator's symlinks in tests. Events, never a polling loop, tell it when to look again:
a udev monitor reports tty devices coming and going (where udevd runs), and inotify on the
directories holding the paths sees the links themselves appear and vanish (which also works
where there is no udevd, e.g. in containers). One thread waits on every source and coalesces
a burst of events into one ``on_change()`` call.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import logging
import os
import selectors
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.05  # events closer together than this make one on_change() call
UDEV_ACTIONS = frozenset({"add", "remove"})

# <sys/inotify.h>
_IN_ATTRIB = 0x00000004
_IN_MOVED_FROM = 0x00000040
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_DELETE = 0x00000200
_IN_DELETE_SELF = 0x00000400
_IN_MOVE_SELF = 0x00000800
_IN_Q_OVERFLOW = 0x00004000
_IN_IGNORED = 0x00008000
_IN_ONLYDIR = 0x01000000
_WATCH_MASK = (
    _IN_CREATE
    | _IN_DELETE
    | _IN_MOVED_TO
    | _IN_MOVED_FROM
    | _IN_ATTRIB
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
    | _IN_ONLYDIR
)
# The watched directory itself went away (or events were lost): watch again from scratch.
_REARM = _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_IGNORED
_EVENT_HEADER = struct.Struct("iIII")  # wd, mask, cookie, length of the name that follows
_READ_SIZE = 64 * 1024
# A directory on the way that cannot be watched: watch the one above it instead.
_WATCH_HIGHER = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EACCES})


class EventSource(Protocol):
    """Something the watcher waits on: readable means ``drain()`` has events to read."""

    def fileno(self) -> int: ...

    def drain(self) -> bool:
        """Read every pending event without blocking; True if any of them matters."""
        ...

    def close(self) -> None: ...


class InotifySource:
    """inotify on the directories holding ``paths``: the paths themselves appear or vanish.

    A directory that does not exist yet is waited for through its nearest existing ancestor,
    and watched as soon as it appears. Nothing is ever created.
    """

    def __init__(self, paths: Iterable[str | Path]) -> None:
        self._targets = [Path(os.path.abspath(path)) for path in paths]
        self._libc = _libc()
        self._fd: int = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise _errno_error("inotify_init1")
        self._names: dict[int, set[str]] = {}  # watch -> the entries that matter in its directory
        try:
            self._arm()
        except OSError:
            os.close(self._fd)
            raise

    def fileno(self) -> int:
        return self._fd

    def drain(self) -> bool:
        events = list(self._read_events())
        relevant = any(self._matters(*event) for event in events)
        if relevant:  # a directory on the way may have appeared or gone
            self._arm()
        return relevant

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _matters(self, watch: int, mask: int, name: str) -> bool:
        if mask & _IN_Q_OVERFLOW:
            return True
        if watch not in self._names:  # a watch we dropped
            return False
        return bool(mask & _REARM) or name in self._names[watch]

    def _arm(self) -> None:
        names: dict[int, set[str]] = {}
        for target in self._targets:
            watch, name = self._watch_nearest(target)
            names.setdefault(watch, set()).add(name)
        for stale in self._names.keys() - names.keys():
            self._libc.inotify_rm_watch(self._fd, stale)  # fails harmlessly if already gone
        self._names = names

    def _watch_nearest(self, target: Path) -> tuple[int, str]:
        """Watch the nearest existing directory above ``target``; (watch, entry to look for)."""
        entry = target
        for directory in target.parents:
            watch = self._libc.inotify_add_watch(self._fd, os.fsencode(directory), _WATCH_MASK)
            if watch >= 0:
                return watch, entry.name
            if ctypes.get_errno() not in _WATCH_HIGHER:
                raise _errno_error(f"inotify_add_watch({directory})")
            entry = directory
        raise OSError(errno.ENOENT, f"no directory above {target} can be watched")

    def _read_events(self) -> Iterator[tuple[int, int, str]]:
        while True:
            try:
                data = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                return
            offset = 0
            while offset < len(data):
                watch, mask, _cookie, length = _EVENT_HEADER.unpack_from(data, offset)
                offset += _EVENT_HEADER.size
                name = os.fsdecode(data[offset : offset + length].rstrip(b"\0"))
                offset += length
                yield watch, mask, name


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_init1.restype = ctypes.c_int
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    libc.inotify_add_watch.restype = ctypes.c_int
    libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.inotify_rm_watch.restype = ctypes.c_int
    return libc


def _errno_error(call: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{call}: {os.strerror(code)}")


class UdevMonitor(Protocol):
    """What PyudevSource needs of a ``pyudev.Monitor`` (tests pass a fake)."""

    def fileno(self) -> int: ...

    def poll(self, timeout: float | None = None) -> Any: ...


class PyudevSource:
    """udev's tty add and remove events, from a started monitor (default: a netlink one)."""

    def __init__(self, monitor: UdevMonitor | None = None) -> None:
        self._monitor: UdevMonitor | None = monitor if monitor is not None else _tty_monitor()

    def fileno(self) -> int:
        return self._open_monitor().fileno()

    def drain(self) -> bool:
        relevant = False
        monitor = self._open_monitor()
        try:
            while (device := monitor.poll(timeout=0)) is not None:
                if device.subsystem == "tty" and device.action in UDEV_ACTIONS:
                    relevant = True
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            return True  # the kernel dropped events: whatever they were, look again
        return relevant

    def close(self) -> None:
        self._monitor = None  # pyudev closes the monitor's socket when the monitor is freed

    def _open_monitor(self) -> UdevMonitor:
        if self._monitor is None:
            raise ValueError("the udev event source is closed")
        return self._monitor


def _tty_monitor() -> UdevMonitor:
    import pyudev  # only here: the daemon runs on without it (inotify still works)

    monitor = pyudev.Monitor.from_netlink(pyudev.Context())
    monitor.filter_by("tty")
    monitor.start()
    return monitor  # type: ignore[no-any-return]


def default_sources(paths: Sequence[Path]) -> list[EventSource]:
    sources: list[EventSource] = [InotifySource(paths)]
    try:
        sources.append(PyudevSource())
    except (ImportError, OSError) as exc:
        log.info("no udev events (%s); watching the device links only", exc)
    return sources


class DeviceWatcher:
    """Calls ``on_change()`` (from its own thread) when any of ``paths`` may have changed."""

    def __init__(
        self,
        paths: Iterable[str | Path],
        on_change: Callable[[], None],
        sources: Sequence[EventSource] | None = None,
    ) -> None:
        self.paths = [Path(path) for path in paths]
        self._on_change = on_change
        self._sources = list(sources) if sources is not None else default_sources(self.paths)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="so101d-devices", daemon=True)

    @staticmethod
    def present(path: str | Path) -> bool:
        """The path exists (through its symlink: a dangling link is not present)."""
        return os.path.exists(path)

    def start(self) -> None:
        for source in self._sources:
            self._selector.register(source, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread.start()

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join()
        for source in self._sources:
            source.close()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> DeviceWatcher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        due: float | None = None  # when the pending on_change() call is due
        while not self._stopping.is_set():
            timeout = None if due is None else max(0.0, due - time.monotonic())
            for key, _ in self._selector.select(timeout):
                if key.fileobj == self._wake_r:
                    continue  # only wakes the loop to see the stop flag
                if self._drain(key) and due is None:
                    due = time.monotonic() + DEBOUNCE_S
            if due is not None and time.monotonic() >= due and not self._stopping.is_set():
                due = None
                self._notify()

    def _drain(self, key: selectors.SelectorKey) -> bool:
        source: EventSource = key.fileobj  # type: ignore[assignment]
        try:
            return source.drain()
        except Exception:
            log.exception("device events: %r failed; no longer listening to it", source)
            self._selector.unregister(source)
            return True  # something happened: let the supervisor look

    def _notify(self) -> None:
        try:
            self._on_change()
        except Exception:
            log.exception("device events: the change handler failed")


# -- USB serial boards -------------------------------------------------------------------


@dataclass(frozen=True)
class UsbSerialDevice:
    device_node: str  # /dev/ttyACM0
    vendor_id: str  # 4 lower-case hex digits, e.g. 1a86
    product_id: str  # e.g. 55d3 (WCH CH343)
    serial: str | None  # the chip's USB serial number, when it has one
    by_path: str | None  # /dev/serial/by-path/... (follows the USB port)
    by_id: str | None  # /dev/serial/by-id/... (follows the board)
    model: str | None
    vendor: str | None


def list_usb_serial_devices(context: Any = None) -> list[UsbSerialDevice]:
    """Every tty with a USB device above it, by device node (``context``: a pyudev Context)."""
    if context is None:
        import pyudev

        context = pyudev.Context()
    found = []
    for tty in context.list_devices(subsystem="tty"):
        usb = tty.find_parent("usb", "usb_device")
        if usb is not None and tty.properties.get("DEVNAME"):
            found.append(usb_serial_device(tty.properties, usb.properties))
    return sorted(found, key=lambda device: device.device_node)


def usb_serial_device(tty: Mapping[str, str], usb: Mapping[str, str]) -> UsbSerialDevice:
    """A board from the udev properties of its tty and of the USB device above it."""
    vendor_id, product_id = _usb_ids(tty, usb)
    links = tty.get("DEVLINKS", "").split()
    return UsbSerialDevice(
        device_node=tty["DEVNAME"],
        vendor_id=vendor_id,
        product_id=product_id,
        serial=tty.get("ID_SERIAL_SHORT") or None,
        by_path=_first_link(links, "/dev/serial/by-path/"),
        by_id=_first_link(links, "/dev/serial/by-id/"),
        model=tty.get("ID_MODEL_FROM_DATABASE") or tty.get("ID_MODEL") or None,
        vendor=tty.get("ID_VENDOR_FROM_DATABASE") or tty.get("ID_VENDOR") or None,
    )


def _usb_ids(tty: Mapping[str, str], usb: Mapping[str, str]) -> tuple[str, str]:
    if tty.get("ID_VENDOR_ID") and tty.get("ID_MODEL_ID"):
        return tty["ID_VENDOR_ID"].lower(), tty["ID_MODEL_ID"].lower()
    # Without udev's usb_id (no udevd, or a tty name 60-serial.rules skips) only the kernel's
    # PRODUCT=<vendor>/<product>/<release> of the USB device is there, in unpadded hex.
    vendor, _, rest = usb.get("PRODUCT", "").partition("/")
    product = rest.partition("/")[0]
    try:
        return f"{int(vendor, 16):04x}", f"{int(product, 16):04x}"
    except ValueError:
        return "", ""


def _first_link(links: Sequence[str], directory: str) -> str | None:
    return next((link for link in links if link.startswith(directory)), None)
