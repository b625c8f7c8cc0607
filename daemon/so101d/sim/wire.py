"""The bus side of a virtual arm: what the servos answer, and when the answer reaches the host.

``dispatch`` gives the servos' replies to one instruction (pure protocol semantics);
``spoil_replies`` applies injected reply faults; ``WireServer`` is the thread that serves a pty:
it frames requests with ``FrameReader``, asks the arm for replies, and writes each reply no
earlier than a real bus could deliver it: request bytes, then per reply the servo's
Return_Delay_Time and the reply bytes, all at the configured baud rate, queued behind whatever
the bus is still busy with, after the USB adapter's latency (``so101d.sim.usb``). A reply that
is not yet due is not yet in the client's input: a client that flushes its input and sends
again before then still gets it, late, as from a real adapter.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from so101d.feetech.bus import wire_time
from so101d.feetech.protocol import (
    BROADCAST_ID,
    MAX_ID,
    MAX_LENGTH,
    FrameReader,
    Instruction,
    Packet,
)
from so101d.sim.faults import Fault, FaultBook
from so101d.sim.servo import MEMORY_SIZE, ServoModel

_MAX_READ = MAX_LENGTH - 2  # data bytes that fit in one status packet
_READ_CHUNK = 4096
_SLEEP_INSTEAD_OF_POLL = 0.002  # seconds: below this, sleep precisely rather than poll (ms ticks)


@dataclass(frozen=True)
class Reply:
    """One status packet ready for the wire and the silence that precedes it."""

    data: bytes
    delay: float  # seconds between the end of the previous bytes and this reply


Replies = list[tuple[ServoModel, Packet]]


def dispatch(request: Packet, servos: Sequence[ServoModel]) -> Replies:
    """Carry out one instruction on the servos that hear it; return their status packets."""
    handler = _HANDLERS.get(request.code)
    return handler(request, servos) if handler is not None else []


_STATIC_AREA = 40  # addresses below Torque_Enable hold settings, nothing the physics changes


def is_static_request(request: Packet) -> bool:
    """True for a request whose answer the joint's motion cannot change (a ping, a read of
    settings), so the physics need not catch up first."""
    if request.code == Instruction.PING:
        return True
    if request.code in (Instruction.READ, Instruction.SYNC_READ) and len(request.params) >= 2:
        address, length = request.params[0], request.params[1]
        return address + length <= _STATIC_AREA
    return False


def _status(servo: ServoModel, data: bytes = b"", ident: int | None = None) -> Packet:
    return Packet(servo.ident if ident is None else ident, int(servo.error_bits()), data)


def _addressed(request: Packet, servos: Sequence[ServoModel]) -> list[ServoModel]:
    if request.ident == BROADCAST_ID:
        return sorted(servos, key=lambda s: s.ident)
    return [s for s in servos if s.ident == request.ident]


def _ping(request: Packet, servos: Sequence[ServoModel]) -> Replies:
    return [(s, _status(s)) for s in _addressed(request, servos)]


def _read(request: Packet, servos: Sequence[ServoModel]) -> Replies:
    if request.ident == BROADCAST_ID or len(request.params) != 2:
        return []
    address, length = request.params
    if not _readable(address, length):
        return []
    return [(s, _status(s, s.read(address, length))) for s in _addressed(request, servos)]


def _readable(address: int, length: int) -> bool:
    return 1 <= length <= _MAX_READ and address + length <= MEMORY_SIZE


def _write(request: Packet, servos: Sequence[ServoModel]) -> Replies:
    return _store(request, servos, ServoModel.write)


def _reg_write(request: Packet, servos: Sequence[ServoModel]) -> Replies:
    return _store(request, servos, ServoModel.stage)


def _store(
    request: Packet,
    servos: Sequence[ServoModel],
    apply: Callable[[ServoModel, int, bytes], None],
) -> Replies:
    if len(request.params) < 2:
        return []
    address, data = request.params[0], request.params[1:]
    replies: Replies = []
    for servo in _addressed(request, servos):
        ident = servo.ident  # a servo whose ID is rewritten still answers from its old ID
        apply(servo, address, data)
        if request.ident != BROADCAST_ID and servo.acknowledges_writes:
            replies.append((servo, _status(servo, ident=ident)))
    return replies


def _action(request: Packet, servos: Sequence[ServoModel]) -> Replies:
    replies: Replies = []
    for servo in _addressed(request, servos):
        servo.commit()
        if request.ident != BROADCAST_ID and servo.acknowledges_writes:
            replies.append((servo, _status(servo)))
    return replies


def _sync_read(request: Packet, servos: Sequence[ServoModel]) -> Replies:
    if request.ident != BROADCAST_ID or len(request.params) < 3:
        return []
    address, length, *wanted = request.params
    if not _readable(address, length):
        return []
    by_ident = {s.ident: s for s in servos}
    listed = [by_ident[i] for i in dict.fromkeys(wanted) if i in by_ident]
    return [(s, _status(s, s.read(address, length))) for s in listed]


def _sync_write(request: Packet, servos: Sequence[ServoModel]) -> Replies:
    if request.ident != BROADCAST_ID or len(request.params) < 2:
        return []
    address, length = request.params[0], request.params[1]
    body = request.params[2:]
    stride = length + 1
    if length == 0 or len(body) % stride:
        return []
    by_ident = {s.ident: s for s in servos}
    for start in range(0, len(body), stride):
        servo = by_ident.get(body[start])
        if servo is not None:
            servo.write(address, body[start + 1 : start + stride])
    return []


_HANDLERS: dict[int, Callable[[Packet, Sequence[ServoModel]], Replies]] = {
    Instruction.PING: _ping,
    Instruction.READ: _read,
    Instruction.WRITE: _write,
    Instruction.REG_WRITE: _reg_write,
    Instruction.ACTION: _action,
    Instruction.SYNC_READ: _sync_read,
    Instruction.SYNC_WRITE: _sync_write,
}


def spoil_replies(replies: Replies, faults: FaultBook) -> list[Reply]:
    """Apply the active reply faults, each using up one count per reply it spoils."""
    out: list[Reply] = []
    for servo, packet in replies:
        motor = servo.slot
        if faults.fire(Fault.SILENCE, motor):
            continue
        if faults.fire(Fault.WRONG_ID, motor):
            packet = Packet(packet.ident % MAX_ID + 1, packet.code, packet.params)
        data = packet.encode()
        if faults.fire(Fault.CORRUPT_CHECKSUM, motor):
            data = data[:-1] + bytes((data[-1] ^ 0xFF,))
        delay = servo.return_delay
        late = faults.fire(Fault.LATE_REPLY, motor)
        if late is not None and late.value is not None:
            delay += late.value
        out.append(Reply(data, delay))
    return out


# The arm's side of the wire: given a request and the client's baud rate, the replies to send.
Handler = Callable[[Packet, int | None], list[Reply]]


class WireServer:
    """Serves one plugged-in pty master in a thread until stopped."""

    def __init__(
        self,
        master: int,
        handler: Handler,
        client_baudrate: Callable[[], int | None],
        default_baudrate: int,
        name: str,
        latency: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self._master = master
        self._latency = latency
        self._last_delivery = 0.0  # when the adapter handed the last request to the bus
        self._handler = handler
        self._client_baudrate = client_baudrate
        self._default_baudrate = default_baudrate
        self._reader = FrameReader()
        self._outbox: deque[tuple[float, bytes]] = deque()
        self._bus_free_at = 0.0
        self._wake_read, self._wake_write = os.pipe()
        self._poller = select.poll()
        self._poller.register(master, select.POLLIN)
        self._poller.register(self._wake_read, select.POLLIN)
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Wake the thread, wait for it, release the wake pipe. The master stays open."""
        os.write(self._wake_write, b"x")
        self._thread.join()
        os.close(self._wake_read)
        os.close(self._wake_write)

    def _serve(self) -> None:
        while True:
            events = dict(self._poller.poll(self._poll_timeout_ms()))
            if self._wake_read in events:
                return
            if self._master in events and not self._receive():
                return
            self._send_due()

    def _poll_timeout_ms(self) -> int | None:
        """Block until input, or until the next reply is nearly due (then sleep precisely)."""
        if not self._outbox:
            return None
        wait = self._outbox[0][0] - time.monotonic()
        if wait <= _SLEEP_INSTEAD_OF_POLL:
            time.sleep(max(wait, 0.0))
            return 0
        return int((wait - _SLEEP_INSTEAD_OF_POLL) * 1000)

    def _receive(self) -> bool:
        try:
            data = os.read(self._master, _READ_CHUNK)
        except BlockingIOError:
            return True
        except OSError:
            return False
        arrival = time.monotonic()
        self._reader.feed(data)
        while (request := self._reader.next_packet()) is not None:
            self._schedule(request, arrival)
        return True

    def _schedule(self, request: Packet, arrival: float) -> None:
        client_baud = self._client_baudrate()
        baud = client_baud or self._default_baudrate
        replies = self._handler(request, client_baud)
        delivered = max(arrival + self._latency(), self._last_delivery)  # USB keeps order
        self._last_delivery = delivered
        due = max(delivered, self._bus_free_at) + wire_time(request.wire_size, baud)
        for reply in replies:
            due += reply.delay + wire_time(len(reply.data), baud)
            self._outbox.append((due, reply.data))
        self._bus_free_at = due

    def _send_due(self) -> None:
        now = time.monotonic()
        while self._outbox and self._outbox[0][0] <= now:
            _, data = self._outbox.popleft()
            with contextlib.suppress(BlockingIOError):  # pty full, nobody reading: bytes lost
                os.write(self._master, data)
