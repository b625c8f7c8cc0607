"""Random bytes on the wire never crash or wedge the driver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from so101d.feetech import BusError, FeetechBus, Instruction, Packet
from tests.pty_peer import PtyPeer

MIDDLE = 2048


def honest_reply(request: Packet) -> bytes:
    """What healthy servos answer: positions read as 2048, writes and pings acked."""
    value = MIDDLE.to_bytes(2, "little")
    if request.code == Instruction.SYNC_READ:
        length, ids = request.params[1], request.params[2:]
        return b"".join(Packet(i, 0, value[:length]).encode() for i in ids)
    if request.code == Instruction.READ:
        return Packet(request.ident, 0, value[: request.params[1]]).encode()
    return Packet(request.ident, 0).encode()


OPERATIONS: list[Callable[[FeetechBus], object]] = [
    lambda bus: bus.ping(1),
    lambda bus: bus.read("Present_Position", 1),
    lambda bus: bus.read("Present_Load", 2),
    lambda bus: bus.sync_read("Present_Position", [1, 2, 3, 4, 5, 6]),
    lambda bus: bus.write("Goal_Position", 2, -100),
    lambda bus: bus.broadcast_ping(window=0.002),
]


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PtyPeer]:
    link = Path(tmp_path_factory.mktemp("fuzz")) / "ttyFUZZ"
    peer = PtyPeer(link, honest_reply)
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def bus(peer: PtyPeer) -> Iterator[FeetechBus]:
    with FeetechBus(peer.link, timeout=0.005) as bus:
        yield bus


def frames_and_noise() -> st.SearchStrategy[bytes]:
    """Pure noise, plus near-valid frames (real headers, wrong lengths, IDs and checksums)."""
    frame = st.builds(
        lambda ident, code, params: Packet(ident, code, params).encode(),
        st.integers(0, 0xFD),
        st.integers(0, 0xFF),
        st.binary(max_size=8),
    )
    chunk = st.one_of(st.binary(max_size=24), frame, frame.map(lambda b: b[:-1] + b"\x00"))
    return st.lists(chunk, max_size=5).map(b"".join)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(wire=frames_and_noise(), operation=st.sampled_from(OPERATIONS))
def test_random_replies_raise_only_bus_errors_and_never_wedge(
    peer: PtyPeer, bus: FeetechBus, wire: bytes, operation: Callable[[FeetechBus], object]
) -> None:
    peer.respond = lambda request: wire
    try:
        operation(bus)
    except BusError:
        pass
    finally:
        peer.respond = honest_reply
    assert bus.sync_read("Present_Position", [1, 2, 3]) == {1: MIDDLE, 2: MIDDLE, 3: MIDDLE}
