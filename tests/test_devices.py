"""Device watching (inotify on the links, udev events through a fake monitor, the debounced
watcher thread) and the listing of USB serial boards from udev properties."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from so101d import devices
from so101d.devices import (
    DEBOUNCE_S,
    DeviceWatcher,
    InotifySource,
    PyudevSource,
    UsbSerialDevice,
    list_usb_serial_devices,
    usb_serial_device,
)
from tests.waiting import wait_for


def drain_when_ready(source: InotifySource | PyudevSource) -> bool:
    """Wait (bounded) until the source has events, then drain them."""
    readable, _, _ = select.select([source], [], [], 10)
    assert readable, "no event arrived"
    return source.drain()


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, InotifySource]]:
    link = tmp_path / "so101_leader"
    source = InotifySource([link])
    yield link, source
    source.close()


# -- inotify -------------------------------------------------------------------------------


def test_inotify_sees_the_link_appear_and_vanish(watched: tuple[Path, InotifySource]) -> None:
    link, source = watched
    assert not source.drain()  # nothing happened yet
    os.symlink("/dev/null", link)
    assert drain_when_ready(source)
    link.unlink()
    assert drain_when_ready(source)


def test_inotify_ignores_other_names_in_the_directory(
    watched: tuple[Path, InotifySource],
) -> None:
    link, source = watched
    (link.parent / "so101_leader.bak").write_text("")
    os.symlink("/dev/null", link.parent / "ttyACM0")
    assert not drain_when_ready(source)


def test_inotify_sees_a_link_renamed_into_place_as_udev_does(
    watched: tuple[Path, InotifySource],
) -> None:
    link, source = watched
    temporary = link.parent / ".#so101_leader1234"
    os.symlink("/dev/null", temporary)
    assert not drain_when_ready(source)
    os.rename(temporary, link)
    assert drain_when_ready(source)


def test_inotify_sees_a_node_appear_and_its_mode_change(
    watched: tuple[Path, InotifySource],
) -> None:
    link, source = watched
    link.write_text("")  # a device node, as far as the watcher can tell
    assert drain_when_ready(source)
    os.chmod(link, 0o660)  # udev setting the group and mode after creating the node
    assert drain_when_ready(source)


def test_inotify_waits_for_directories_that_do_not_exist_yet(tmp_path: Path) -> None:
    link = tmp_path / "serial" / "by-id" / "usb-1a86_USB_Single_Serial_575E003208-if00"
    source = InotifySource([link])
    try:
        (tmp_path / "unrelated").mkdir()
        assert not drain_when_ready(source)
        link.parent.parent.mkdir()
        assert drain_when_ready(source)
        (link.parent.parent / "by-path").mkdir()
        assert not drain_when_ready(source)
        link.parent.mkdir()
        assert drain_when_ready(source)
        os.symlink("/dev/null", link)
        assert drain_when_ready(source)
        # The directory goes away and comes back: the watch follows.
        link.unlink()
        assert drain_when_ready(source)
        link.parent.rmdir()
        assert drain_when_ready(source)
        link.parent.mkdir()
        os.symlink("/dev/null", link)
        assert drain_when_ready(source)
        assert DeviceWatcher.present(link)
    finally:
        source.close()


def test_inotify_creates_nothing(tmp_path: Path) -> None:
    InotifySource([tmp_path / "a" / "b" / "link"]).close()
    assert list(tmp_path.iterdir()) == []


def test_a_dangling_link_is_not_present(tmp_path: Path) -> None:
    link = tmp_path / "so101_follower"
    os.symlink(tmp_path / "pts-7", link)
    assert not DeviceWatcher.present(link)
    (tmp_path / "pts-7").write_text("")
    assert DeviceWatcher.present(link)
    assert DeviceWatcher.present(str(link))


# -- udev, through a fake monitor ----------------------------------------------------------


@dataclass
class FakeUdevEvent:
    action: str
    subsystem: str


class FakeMonitor:
    """A pyudev Monitor stand-in: a datagram socket pair signals each queued event."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._reader.setblocking(False)
        self._events: deque[FakeUdevEvent] = deque()

    def trigger(self, action: str, subsystem: str = "tty") -> None:
        self._events.append(FakeUdevEvent(action, subsystem))
        self._writer.send(b"!")

    def fileno(self) -> int:
        return self._reader.fileno()

    def poll(self, timeout: float | None = None) -> FakeUdevEvent | None:
        assert timeout == 0, "the source must never block"
        try:
            self._reader.recv(1)
        except BlockingIOError:
            return None
        return self._events.popleft()

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


@pytest.fixture
def monitor() -> Iterator[FakeMonitor]:
    fake = FakeMonitor()
    yield fake
    fake.close()


def test_udev_add_and_remove_of_a_tty_matter(monitor: FakeMonitor) -> None:
    source = PyudevSource(monitor)
    assert source.fileno() == monitor.fileno()
    monitor.trigger("add")
    assert drain_when_ready(source)
    monitor.trigger("remove")
    assert drain_when_ready(source)


def test_other_udev_events_do_not(monitor: FakeMonitor) -> None:
    source = PyudevSource(monitor)
    monitor.trigger("change")
    monitor.trigger("bind")
    monitor.trigger("add", subsystem="usb")
    assert not drain_when_ready(source)
    assert not source.drain()  # everything was read


def test_one_drain_reads_every_pending_event(monitor: FakeMonitor) -> None:
    source = PyudevSource(monitor)
    for action in ("change", "add", "change"):
        monitor.trigger(action)
    assert drain_when_ready(source)
    assert monitor.poll(timeout=0) is None


class OverflowingMonitor(FakeMonitor):
    def poll(self, timeout: float | None = None) -> FakeUdevEvent | None:
        raise OSError(errno.ENOBUFS, "No buffer space available")


def test_lost_udev_events_count_as_a_change() -> None:
    monitor = OverflowingMonitor()
    try:
        assert PyudevSource(monitor).drain()
    finally:
        monitor.close()


def test_a_real_udev_source_can_be_created_here() -> None:
    source = PyudevSource()  # netlink opens without udevd; it just never hears anything
    try:
        assert source.fileno() >= 0
        assert isinstance(source.drain(), bool)
    finally:
        source.close()


def test_without_udev_the_watcher_falls_back_to_inotify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_netlink() -> Any:
        raise OSError("Could not create udev monitor")

    monkeypatch.setattr(devices, "_tty_monitor", no_netlink)
    with caplog.at_level(logging.INFO, logger="so101d.devices"):
        sources = devices.default_sources([tmp_path / "link"])
    assert [type(source) for source in sources] == [InotifySource]
    assert "no udev events" in caplog.text
    for source in sources:
        source.close()


# -- the watcher ---------------------------------------------------------------------------


@dataclass
class Calls:
    """Records on_change() calls; can hold the watcher thread inside one."""

    times: list[float] = field(default_factory=list)
    hold: threading.Event | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> None:
        with self.lock:
            self.times.append(time.monotonic())
        if self.hold is not None:
            self.hold.wait(10)

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.times)


class FakeSource:
    """An event source the test drives: each trigger() queues what drain() reports for it."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._outcomes: deque[bool | Exception] = deque()
        self.drains = 0
        self.closed = False

    def trigger(self, outcome: bool | Exception = True) -> None:
        self._outcomes.append(outcome)
        self._writer.send(b"!")

    def fileno(self) -> int:
        return self._reader.fileno()

    def drain(self) -> bool:
        with contextlib.suppress(BlockingIOError):
            self._reader.recv(4096)
        outcomes = [self._outcomes.popleft() for _ in range(len(self._outcomes))]
        self.drains += 1
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome
        return any(outcomes)

    def close(self) -> None:
        self.closed = True
        self._reader.close()
        self._writer.close()


@pytest.fixture
def source() -> Iterator[FakeSource]:
    fake = FakeSource()
    yield fake
    if not fake.closed:
        fake.close()


def test_the_watcher_calls_on_change_after_the_debounce_delay(monitor: FakeMonitor) -> None:
    calls = Calls()
    with DeviceWatcher([], calls, sources=[PyudevSource(monitor)]):
        started = time.monotonic()
        monitor.trigger("add")
        wait_for(lambda: calls.count == 1)
    assert calls.times[0] - started >= DEBOUNCE_S


def test_a_burst_of_events_makes_one_call(source: FakeSource) -> None:
    hold = threading.Event()
    calls = Calls(hold=hold)
    with DeviceWatcher([], calls, sources=[source]):
        source.trigger()
        wait_for(lambda: calls.count == 1)  # the watcher thread is now held inside the call
        for _ in range(20):
            source.trigger()
        hold.set()
        wait_for(lambda: calls.count == 2)  # the 20 events, coalesced
        source.trigger()
        wait_for(lambda: calls.count >= 3)
        assert calls.count == 3


def test_irrelevant_events_make_no_call(source: FakeSource) -> None:
    calls = Calls()
    with DeviceWatcher([], calls, sources=[source]):
        source.trigger(False)
        wait_for(lambda: source.drains == 1)
        relevant_at = time.monotonic()
        source.trigger(True)
        wait_for(lambda: calls.count == 1)
    # Had the irrelevant event started the debounce delay, the call would have come earlier.
    assert calls.times[0] - relevant_at >= DEBOUNCE_S


def test_the_watcher_with_its_default_sources_sees_a_link(tmp_path: Path) -> None:
    link = tmp_path / "so101_leader"
    calls = Calls()
    with DeviceWatcher([link, tmp_path / "so101_follower"], calls) as watcher:
        assert not watcher.present(link)
        os.symlink("/dev/null", link)
        wait_for(lambda: calls.count >= 1)
        assert watcher.present(link)


def test_a_failing_handler_does_not_stop_the_watcher(
    source: FakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    failures = Calls()

    def fail() -> None:
        failures()
        raise RuntimeError("handler bug")

    with DeviceWatcher([], fail, sources=[source]):
        source.trigger()
        wait_for(lambda: failures.count == 1)
        source.trigger()
        wait_for(lambda: failures.count == 2)
    assert "the change handler failed" in caplog.text


def test_a_failing_source_is_dropped_and_the_others_keep_working(
    source: FakeSource, monitor: FakeMonitor, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Calls()
    with DeviceWatcher([], calls, sources=[source, PyudevSource(monitor)]):
        source.trigger(OSError("netlink receive buffer overrun"))
        wait_for(lambda: calls.count == 1)  # a failing source counts as a change
        source.trigger()
        monitor.trigger("add")
        wait_for(lambda: calls.count == 2)
    assert caplog.text.count("no longer listening") == 1
    assert source.drains == 1
    assert source.closed


def test_stop_closes_the_sources_and_may_be_repeated(source: FakeSource) -> None:
    watcher = DeviceWatcher([], Calls(), sources=[source])
    watcher.start()
    watcher.stop()
    watcher.stop()
    assert source.closed


# -- USB serial boards ---------------------------------------------------------------------

CH343_PATH = "platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.3:1.0"
CH343_TTY = {  # `udevadm info -q property -n /dev/ttyACM0` for a CH343 board on a Pi 4
    "DEVPATH": "/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0/"
    "usb1/1-1/1-1.3/1-1.3:1.0/tty/ttyACM0",
    "DEVNAME": "/dev/ttyACM0",
    "MAJOR": "166",
    "MINOR": "0",
    "SUBSYSTEM": "tty",
    "ID_BUS": "usb",
    "ID_MODEL": "USB_Single_Serial",
    "ID_MODEL_ENC": "USB\\x20Single\\x20Serial",
    "ID_MODEL_ID": "55d3",
    "ID_SERIAL": "1a86_USB_Single_Serial_575E003208",
    "ID_SERIAL_SHORT": "575E003208",
    "ID_VENDOR": "1a86",
    "ID_VENDOR_ENC": "1a86",
    "ID_VENDOR_ID": "1a86",
    "ID_REVISION": "0445",
    "ID_TYPE": "generic",
    "ID_USB_INTERFACES": ":020201:0a0000:",
    "ID_USB_INTERFACE_NUM": "00",
    "ID_USB_DRIVER": "cdc_acm",
    "ID_VENDOR_FROM_DATABASE": "QinHeng Electronics",
    "ID_PATH": CH343_PATH,
    "ID_PATH_TAG": "platform-fd500000_pcie-pci-0000_01_00_0-usb-0_1_3_1_0",
    "ID_MM_CANDIDATE": "1",
    "DEVLINKS": f"/dev/serial/by-path/{CH343_PATH} "
    "/dev/serial/by-id/usb-1a86_USB_Single_Serial_575E003208-if00 /dev/so101_leader",
    "TAGS": ":systemd:",
}
USB_PARENT = {"PRODUCT": "1a86/55d3/445", "TYPE": "239/2/1", "DEVTYPE": "usb_device"}


@dataclass
class FakeUdevDevice:
    properties: dict[str, str]
    usb_parent: FakeUdevDevice | None = None

    def find_parent(self, subsystem: str, device_type: str | None = None) -> Any:
        assert (subsystem, device_type) == ("usb", "usb_device")
        return self.usb_parent


@dataclass
class FakeContext:
    ttys: list[FakeUdevDevice]

    def list_devices(self, subsystem: str) -> list[FakeUdevDevice]:
        assert subsystem == "tty"
        return self.ttys


def usb_tty(properties: dict[str, str]) -> FakeUdevDevice:
    return FakeUdevDevice(properties, FakeUdevDevice(USB_PARENT))


def test_a_ch343_board_as_udev_describes_it() -> None:
    assert usb_serial_device(CH343_TTY, USB_PARENT) == UsbSerialDevice(
        device_node="/dev/ttyACM0",
        vendor_id="1a86",
        product_id="55d3",
        serial="575E003208",
        by_path=f"/dev/serial/by-path/{CH343_PATH}",
        by_id="/dev/serial/by-id/usb-1a86_USB_Single_Serial_575E003208-if00",
        model="USB_Single_Serial",
        vendor="QinHeng Electronics",
    )


def test_without_udevd_the_kernel_product_gives_the_ids() -> None:
    kernel_only = {key: CH343_TTY[key] for key in ("DEVPATH", "DEVNAME", "MAJOR", "MINOR")}
    device = usb_serial_device(kernel_only, {"PRODUCT": "1a86/7523/264"})
    assert (device.vendor_id, device.product_id) == ("1a86", "7523")
    assert device.serial is device.by_id is device.by_path is device.model is None


def test_listing_keeps_usb_ttys_only_in_device_order() -> None:
    second = dict(CH343_TTY, DEVNAME="/dev/ttyACM1", ID_SERIAL_SHORT="575E003211", DEVLINKS="")
    context = FakeContext(
        [
            usb_tty(second),
            FakeUdevDevice({"DEVNAME": "/dev/ttyS0", "SUBSYSTEM": "tty"}),  # no USB parent
            usb_tty(CH343_TTY),
            usb_tty({"SUBSYSTEM": "tty"}),  # no device node
        ]
    )
    found = list_usb_serial_devices(context)
    assert [(d.device_node, d.serial) for d in found] == [
        ("/dev/ttyACM0", "575E003208"),
        ("/dev/ttyACM1", "575E003211"),
    ]
    assert found[1].by_id is None


def test_listing_the_real_devices_here_works() -> None:
    assert all(isinstance(d, UsbSerialDevice) for d in list_usb_serial_devices())
