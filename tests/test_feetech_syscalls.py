"""System calls per transaction of our driver on a real pty, counted by wrapping the calls.

The budget is what a half-duplex exchange needs: one write per request; for replies one
poll and one read per chunk, plus one sleep while the rest of a sync read is on the wire.
No flush before a request, no select, no ioctl, unless something may be stale.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from so101d.bench.measuring import SyscallCounter
from so101d.feetech import BusTimeout, FeetechBus
from so101d.sim import Fault, VirtualArm
from tests.arms import bus_on
from tests.test_sim_cli import run_sim, stop_sim

IDS = (1, 2, 3, 4, 5, 6)
TRANSACTIONS = 50
# Waiting for replies, per transaction on average: a single reply is one poll and one read;
# a sync read adds a sleep while the other replies are on the wire and one more read. A
# busy machine may split them further: some headroom, well below the old driver's seven.
WAITING_BUDGET = {"sync read": 5.0, "read": 3.0}


@pytest.fixture
def remote_bus(tmp_path: Path) -> Iterator[FeetechBus]:
    """Our driver on a follower simulated in another process: its replies come as the wire
    times them, not as this process's GIL lets a simulator thread write them."""
    sim = run_sim(tmp_path, "--usb-latency", "none")
    try:
        with bus_on(str(tmp_path / "follower")) as bus:
            bus.sync_write("Return_Delay_Time", dict.fromkeys(IDS, 0))  # as LeRobot sets it
            yield bus
    finally:
        stop_sim(sim)


def counted(bus: FeetechBus, transact: Callable[[], object]) -> Counter[str]:
    transact()  # the request is encoded on first use
    with SyscallCounter([bus]) as counter:
        for _ in range(TRANSACTIONS):
            transact()
    return counter.counts


def test_a_sync_write_is_one_write(remote_bus: FeetechBus) -> None:
    bus = remote_bus
    counts = counted(bus, lambda: bus.sync_write("Goal_Time", dict.fromkeys(IDS, 0)))
    assert counts == {"write": TRANSACTIONS}


@pytest.mark.parametrize(
    ("kind", "transact"),
    [
        ("sync read", lambda bus: bus.sync_read("Present_Position", IDS)),
        ("read", lambda bus: bus.read_bytes(3, 56, 10, "telemetry")),
    ],
)
def test_a_read_is_one_write_then_a_poll_and_a_read_per_chunk(
    remote_bus: FeetechBus, kind: str, transact: Callable[[FeetechBus], object]
) -> None:
    counts = counted(remote_bus, lambda: transact(remote_bus))
    assert counts["write"] == TRANSACTIONS
    assert set(counts) <= {"write", "poll", "readv", "sleep"}, counts  # no flush, no select
    waiting = (counts["poll"] + counts["readv"] + counts["sleep"]) / TRANSACTIONS
    assert waiting <= WAITING_BUDGET[kind], counts


def test_input_is_flushed_once_after_a_failed_transaction(
    follower: VirtualArm, bus: FeetechBus
) -> None:
    follower.inject(Fault.SILENCE)
    with pytest.raises(BusTimeout):
        bus.read("Present_Position", 2)
    follower.clear()
    with SyscallCounter([bus]) as counter:
        for _ in range(3):
            bus.read("Present_Position", 2)
    assert counter.counts["tcflush"] == 1
