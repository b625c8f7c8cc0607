"""The simulator's wire behaviour, seen byte by byte through its pty with raw pyserial."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from so101d.feetech import FrameReader, Instruction, Packet, wire_time
from so101d.feetech.protocol import BROADCAST_ID, checksum
from so101d.feetech.registers import REGISTERS
from so101d.sim import Fidelity, UsbLatency, VirtualArm
from tests.arms import bus_on
from tests.waiting import wait_for

IDS = [1, 2, 3, 4, 5, 6]
QUIET = 0.15  # seconds of listening that count as "no reply" (replies take ~1 ms)


class RawPort:
    """Exact bytes in, exact packets out: what a careful client sees on the wire."""

    def __init__(self, link: str, baudrate: int = 1_000_000) -> None:
        self.serial = serial.Serial(link, baudrate, timeout=0)

    def close(self) -> None:
        self.serial.close()

    def send(self, request: Packet | bytes) -> None:
        self.serial.reset_input_buffer()
        self.serial.write(request.encode() if isinstance(request, Packet) else request)

    def receive(self, size: int, timeout: float = 1.0) -> bytes:
        """Up to ``size`` bytes, whatever arrives before the timeout."""
        data = b""
        deadline = time.monotonic() + timeout
        while len(data) < size and time.monotonic() < deadline:
            self.serial.timeout = max(deadline - time.monotonic(), 0)
            data += self.serial.read(size - len(data))
        return data

    def replies(self, count: int, timeout: float = 1.0) -> list[Packet]:
        reader = FrameReader()
        packets: list[Packet] = []
        deadline = time.monotonic() + timeout
        while len(packets) < count and time.monotonic() < deadline:
            reader.feed(self.receive(1, timeout=deadline - time.monotonic()))
            while (packet := reader.next_packet()) is not None:
                packets.append(packet)
        return packets

    def transact(self, request: Packet, count: int = 1) -> list[Packet]:
        self.send(request)
        return self.replies(count)

    def assert_silent(self) -> None:
        assert self.receive(1, timeout=QUIET) == b""


def read(motor: int, name: str) -> Packet:
    reg = REGISTERS[name]
    return Packet(motor, Instruction.READ, bytes((reg.address, reg.size)))


def write(motor: int, name: str, value: int) -> Packet:
    reg = REGISTERS[name]
    return Packet(motor, Instruction.WRITE, bytes((reg.address,)) + reg.encode(value))


def sync_read(ids: list[int], address: int = 56, length: int = 2) -> Packet:
    return Packet(BROADCAST_ID, Instruction.SYNC_READ, bytes((address, length, *ids)))


@pytest.fixture
def arm(tmp_path: Path) -> Iterator[VirtualArm]:
    with VirtualArm("follower", tmp_path / "dev" / "so101_follower") as arm:
        yield arm


@pytest.fixture
def port(arm: VirtualArm) -> Iterator[RawPort]:
    raw = RawPort(arm.link)
    yield raw
    raw.close()


def test_handshake_like_lerobot(arm: VirtualArm) -> None:
    with bus_on(arm.link) as bus:
        for motor in IDS:
            assert bus.ping(motor) == 0
            assert bus.read("Model_Number", motor) == 777
        versions = {
            (bus.read("Firmware_Major_Version", m), bus.read("Firmware_Minor_Version", m))
            for m in IDS
        }
    assert versions == {(3, 10)}


def test_broadcast_ping_answers_once_per_servo_in_id_order(port: RawPort) -> None:
    port.send(Packet(BROADCAST_ID, Instruction.PING))
    data = port.receive(6 * 7, timeout=QUIET * 2)
    assert len(data) == 6 * 6  # six plain 6-byte statuses and nothing else
    assert [data[i + 2] for i in range(0, 36, 6)] == IDS
    assert data[:6] == Packet(1, 0).encode()


def test_unicast_ping_is_a_bare_status_and_never_an_echo(port: RawPort) -> None:
    port.send(Packet(3, Instruction.PING))
    assert port.receive(16, timeout=QUIET) == bytes.fromhex("ffff030200fa")


def test_sync_read_replies_follow_the_request_order_and_skip_absent_ids(port: RawPort) -> None:
    replies = port.transact(sync_read([4, 1, 9, 6, 2]), count=4)
    assert [p.ident for p in replies] == [4, 1, 6, 2]
    assert all(len(p.params) == 2 for p in replies)
    port.assert_silent()


def test_sync_read_returns_exactly_the_requested_length(port: RawPort) -> None:
    (reply,) = port.transact(sync_read([5], address=0, length=5))
    assert reply.params == bytes((3, 10, 0)) + (777).to_bytes(2, "little")


def test_read_any_span_up_to_the_end_of_memory(port: RawPort) -> None:
    (reply,) = port.transact(Packet(2, Instruction.READ, bytes((250, 6))))
    assert len(reply.params) == 6
    port.send(Packet(2, Instruction.READ, bytes((251, 6))))
    port.assert_silent()


@pytest.mark.parametrize(
    "request_",
    [
        Packet(BROADCAST_ID, Instruction.READ, bytes((56, 2))),
        Packet(BROADCAST_ID, Instruction.WRITE, bytes((41, 10))),
        Packet(BROADCAST_ID, Instruction.SYNC_WRITE, bytes((41, 1, 1, 10, 2, 10))),
        Packet(1, 0x06),  # factory reset: not modelled, ignored
    ],
    ids=["broadcast-read", "broadcast-write", "sync-write", "unknown-instruction"],
)
def test_no_reply_to_broadcasts_or_unknown_instructions(port: RawPort, request_: Packet) -> None:
    port.send(request_)
    port.assert_silent()


def test_sync_write_and_broadcast_write_still_take_effect(arm: VirtualArm, port: RawPort) -> None:
    port.send(Packet(BROADCAST_ID, Instruction.SYNC_WRITE, bytes((41, 1, 1, 11, 2, 22))))
    port.send(Packet(BROADCAST_ID, Instruction.WRITE, bytes((46, 33, 0))))
    wait_for(lambda: arm.servo(6).get("Goal_Velocity") == 33)
    assert [arm.servo(m).get("Acceleration") for m in IDS] == [11, 22, 0, 0, 0, 0]


def test_request_with_a_bad_checksum_is_ignored(port: RawPort) -> None:
    good = Packet(1, Instruction.PING).encode()
    port.send(good[:-1] + bytes((good[-1] ^ 0x55,)))
    port.assert_silent()
    assert port.transact(Packet(1, Instruction.PING)) == [Packet(1, 0)]


def test_write_is_acked_and_read_only_registers_stay_put(port: RawPort) -> None:
    assert port.transact(write(2, "Model_Number", 1234)) == [Packet(2, 0)]
    (reply,) = port.transact(read(2, "Model_Number"))
    assert reply.params == (777).to_bytes(2, "little")


def test_write_to_id_is_acked_by_the_old_id(arm: VirtualArm, port: RawPort) -> None:
    assert port.transact(write(6, "ID", 9)) == [Packet(6, 0)]
    assert port.transact(Packet(9, Instruction.PING)) == [Packet(9, 0)]
    port.send(Packet(6, Instruction.PING))
    port.assert_silent()
    assert arm.motor_ids == (1, 2, 3, 4, 5, 9)


def test_response_status_level_0_silences_writes_but_not_reads(port: RawPort) -> None:
    port.send(write(4, "Response_Status_Level", 0))
    port.assert_silent()
    port.send(write(4, "Acceleration", 50))
    port.assert_silent()
    assert port.transact(Packet(4, Instruction.PING)) == [Packet(4, 0)]
    (reply,) = port.transact(read(4, "Acceleration"))
    assert reply.params == bytes((50,))


def test_reg_write_waits_for_action(arm: VirtualArm, port: RawPort) -> None:
    reg_write = Packet(3, Instruction.REG_WRITE, bytes((41, 77)))
    assert port.transact(reg_write) == [Packet(3, 0)]
    assert arm.servo(3).get("Acceleration") == 0
    port.send(Packet(BROADCAST_ID, Instruction.ACTION))
    port.assert_silent()
    assert arm.servo(3).get("Acceleration") == 77


def test_a_sync_read_takes_at_least_its_wire_time(arm: VirtualArm, port: RawPort) -> None:
    request = sync_read(IDS)
    reply_bytes = 6 * (2 + 6)
    return_delay = 250 * 2e-6  # factory Return_Delay_Time
    floor = wire_time(request.wire_size + reply_bytes, 1_000_000) + 6 * return_delay
    for _ in range(5):
        started = time.perf_counter()
        assert len(port.transact(request, count=6)) == 6
        assert time.perf_counter() - started >= floor


def test_back_to_back_requests_queue_on_the_bus(port: RawPort) -> None:
    requests = [sync_read(IDS) for _ in range(4)]
    started = time.perf_counter()
    port.send(b"".join(r.encode() for r in requests))
    assert len(port.replies(24)) == 24
    floor = 4 * (wire_time(requests[0].wire_size + 6 * 8, 1_000_000) + 6 * 500e-6)
    assert time.perf_counter() - started >= floor


def test_servos_ignore_a_client_at_another_baud_rate(arm: VirtualArm) -> None:
    other = RawPort(arm.link, baudrate=500_000)
    try:
        other.send(Packet(1, Instruction.PING))
        other.assert_silent()
    finally:
        other.close()


def test_changing_the_baud_rate_register_moves_the_servo(arm: VirtualArm, port: RawPort) -> None:
    assert port.transact(write(2, "Baud_Rate", 1)) == [Packet(2, 0)]  # acked at the old rate
    port.send(Packet(2, Instruction.PING))
    port.assert_silent()
    port.close()
    with bus_on(arm.link, baudrate=500_000) as bus:
        assert bus.ping(2) == 0


def test_status_checksum_and_framing_match_the_protocol(port: RawPort) -> None:
    port.send(read(1, "Present_Position"))
    data = port.receive(8)
    assert data[:2] == b"\xff\xff" and data[2] == 1 and data[3] == 4 and data[4] == 0
    assert data[-1] == checksum(data[2:-1])


# -- the USB adapter's timing -----------------------------------------------------------


def test_the_usb_model_delays_every_transaction(tmp_path: Path) -> None:
    slow = Fidelity(usb=UsbLatency(fixed=0.02, jitter=0.0, stall_rate=0.0))
    with VirtualArm("follower", tmp_path / "slow", fidelity=slow) as arm:
        raw = RawPort(arm.link)
        try:
            for _ in range(3):
                began = time.monotonic()
                assert raw.transact(read(1, "Present_Position"))
                assert time.monotonic() - began >= 0.02
        finally:
            raw.close()


def test_a_reply_still_in_the_adapter_lands_after_the_clients_flush(tmp_path: Path) -> None:
    slow = Fidelity(usb=UsbLatency(fixed=0.05, jitter=0.0, stall_rate=0.0))
    with VirtualArm("follower", tmp_path / "slow", fidelity=slow) as arm:
        raw = RawPort(arm.link)
        try:
            raw.send(read(2, "Model_Number"))
            raw.send(b"")  # a client that gives up at once and flushes its input
            (late,) = raw.replies(1)
            assert late.ident == 2 and int.from_bytes(late.params, "little") == 777
        finally:
            raw.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ch343", UsbLatency()),
        ("none", UsbLatency(0.0, 0.0, 0.0, 0.0, 0.0)),
        ("1,0.5,0.01,2,10", UsbLatency(0.001, 0.0005, 0.01, 0.002, 0.01)),
    ],
)
def test_usb_latency_models_parse(text: str, expected: UsbLatency) -> None:
    assert UsbLatency.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("fast", "not ch343, none or FIXED_MS"), ("1,1,2,1,1", "stall rate within 0..1")],
)
def test_bad_usb_latency_models_are_explained(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UsbLatency.parse(text)


def test_the_default_model_stays_near_the_measured_figures() -> None:
    sample = UsbLatency().sampler("figures")
    delays = sorted(sample() for _ in range(20_000))
    assert 0.0006 <= delays[len(delays) // 2] <= 0.0012  # ~1-2 ms with the wire time
    assert delays[int(len(delays) * 0.99)] <= 0.0013
    assert delays[-1] <= 0.0012 + 0.008  # the rare stalls
