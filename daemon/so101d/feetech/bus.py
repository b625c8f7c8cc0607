"""A Feetech servo bus on a serial port: ping, read, write, sync read and sync write.

pyserial opens and configures the port; transactions then use the descriptor directly, as
few system calls as a half-duplex exchange needs: one ``write`` per request, then one
``poll`` and one ``read`` per chunk of replies. Requests are encoded once and reused; the
replies land in one buffer and are checked and decoded in place. Replies must come from
the addressed motor and have the exact expected length.

Input is flushed only when something may be stale: after a failed transaction, or when more
bytes came than were asked for. After a timeout the bus waits out the missing replies' wire
time (plus half the slack, for the USB adapter) and keeps whatever came for :meth:`resync`,
so a reply that was merely late is never taken for the answer to the next request. A
timeout, a corrupt reply or servo error bits raise a typed error and leave the bus ready for
the next transaction; a vanished device raises :class:`PortGone` now and on every later
call, until the bus is reopened.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import os
import select
import struct
import termios
import threading
import time
from collections.abc import Iterable, Mapping, Sequence

import serial

from so101d.feetech.errors import (
    BusError,
    BusTimeout,
    CorruptReply,
    PortBusy,
    PortGone,
    ServoError,
    ServoFault,
    motor_list,
)
from so101d.feetech.protocol import (
    BROADCAST_ID,
    HEADER,
    MAX_ID,
    OVERHEAD,
    FrameReader,
    Instruction,
    Packet,
)
from so101d.feetech.registers import BAUD_RATES, Register, register

DEFAULT_BAUDRATE = 1_000_000
DEFAULT_TIMEOUT = 0.025  # seconds of slack beyond the wire time of request and replies
_WRITE_TIMEOUT = 0.5
_READ_CHUNK = 4096
_BITS_PER_BYTE = 10  # 8N1: start, 8 data, stop
_INPUT = select.POLLIN | select.POLLERR | select.POLLHUP
# Reply layout: FF FF ID LEN ERR data.. CHK
_ID, _LEN, _ERR, _DATA = 2, 3, 4, 5
_HEADER_WORD = struct.unpack("<H", HEADER)[0]
_UNSIGNED = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I")}


def wire_time(n_bytes: int, baudrate: int) -> float:
    """Seconds that ``n_bytes`` occupy on the wire at ``baudrate``."""
    return n_bytes * _BITS_PER_BYTE / baudrate


class FeetechBus:
    """One half-duplex Feetech bus (protocol 0, little-endian) behind a serial port.

    Thread-safe: transactions are serialised by an internal lock. ``timeout`` is the
    slack allowed beyond the computed wire time before a reply counts as missing.
    """

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        timeout: float = DEFAULT_TIMEOUT,
        exclusive: bool = True,
        raise_dtr_rts: bool = True,
    ) -> None:
        if baudrate not in BAUD_RATES.values():
            raise ValueError(
                f"unsupported baud rate {baudrate}; use one of {sorted(BAUD_RATES.values())}"
            )
        self.port = port
        self.baudrate = baudrate
        self.timeout = timeout
        self.exclusive = exclusive
        self.raise_dtr_rts = raise_dtr_rts
        self._serial: serial.Serial | None = None
        self._poller: select.poll | None = None
        self._fd = -1
        self._lock = threading.Lock()
        self._late = b""  # what the last timed-out transaction's late replies brought
        self._stale = False  # input may hold bytes no request of ours is owed: flush first
        self._buffer = bytearray(_READ_CHUNK)  # the replies of the current transaction
        self._view = memoryview(self._buffer)
        self._requests: dict[tuple[int, ...], bytes] = {}  # encoded once, by what they ask
        self._sync_writes: dict[tuple[int, ...], bytearray] = {}  # packets refilled per write

    # -- lifecycle -----------------------------------------------------------------------

    def open(self) -> None:
        """Open the port; raise PortGone, or PortBusy when another process holds it.

        ``exclusive`` holds the port two ways: pyserial's ``flock`` (which cooperating tools
        honour) and ``TIOCEXCL``, with which the kernel refuses every other open with EBUSY
        (except by root), so LeRobot or a serial terminal cannot write to a running arm.
        ``raise_dtr_rts`` False keeps pyserial from raising DTR and RTS (it clears them
        instead): for probing boards that may not be servo buses at all.
        """
        with self._lock:
            if self._serial is not None:
                return
            ser = serial.Serial(
                None,
                baudrate=self.baudrate,
                timeout=0,
                write_timeout=_WRITE_TIMEOUT,
                exclusive=self.exclusive,
            )
            ser.dtr = ser.rts = self.raise_dtr_rts
            ser.port = self.port
            try:
                ser.open()
                if self.exclusive:
                    fcntl.ioctl(ser.fileno(), termios.TIOCEXCL)
            except (OSError, ValueError) as exc:
                ser.close()
                raise self._open_error(exc) from exc
            poller = select.poll()
            poller.register(ser.fileno(), _INPUT)
            self._serial, self._poller, self._fd = ser, poller, ser.fileno()
            self._stale = False

    def close(self) -> None:
        with self._lock:
            self._drop_serial()

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def __enter__(self) -> FeetechBus:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"FeetechBus({self.port!r}, {self.baudrate} baud, {state})"

    # -- instructions --------------------------------------------------------------------

    def ping(self, motor: int) -> ServoFault:
        """Ping one motor; return its error bits (0 when healthy)."""
        request = self._request(Instruction.PING, motor)
        with self._lock:
            self._exchange(request, (motor,), 0, None)
            return ServoFault(self._buffer[_ERR])

    def broadcast_ping(self, window: float | None = None) -> dict[int, ServoFault]:
        """Ping every motor at once; return ``{id: error bits}`` of those that answered."""
        listen = window if window is not None else wire_time(OVERHEAD * 253, self.baudrate)
        request = Packet(BROADCAST_ID, Instruction.PING)
        replies = self._collect_broadcast(request.encode(), listen + self.timeout)
        return {ident: ServoFault(p.code) for ident, p in sorted(replies.items())}

    def read(self, name: str, motor: int) -> int:
        reg = register(name)
        return reg.decode(self.read_bytes(motor, reg.address, reg.size, reg.name))

    def write(self, name: str, motor: int, value: int) -> None:
        reg = register(name)
        self.write_bytes(motor, reg.address, reg.encode(value), reg.name)

    def sync_read(self, name: str, motors: Sequence[int]) -> dict[int, int]:
        """Read one register from several motors in one transaction; ``{id: value}``."""
        reg = register(name)
        ids = motors if isinstance(motors, tuple) else tuple(motors)
        request = self._request(Instruction.SYNC_READ, BROADCAST_ID, reg.address, reg.size, *ids)
        unpack, frame, buf = _UNSIGNED[reg.size].unpack_from, reg.size + OVERHEAD, self._buffer
        with self._lock:
            self._exchange(request, ids, reg.size, reg.name)
            values = {m: reg.from_raw(unpack(buf, i * frame + _DATA)[0]) for i, m in enumerate(ids)}
            if any(buf[i * frame + _ERR] for i in range(len(ids))):
                raise self._servo_error(ids, reg.size, reg.name)
        return values

    def sync_write(self, name: str, values: Mapping[int, int]) -> None:
        """Write one register on several motors in one transaction (no replies)."""
        reg = register(name)
        ids = tuple(values)
        raw = [reg.to_raw(value) for value in values.values()]
        packet = self._sync_write_packet(ids, reg.address, reg.size)
        pack, step = _UNSIGNED[reg.size].pack_into, reg.size + 1
        with self._lock:  # the packet is refilled for every write
            for i, value in enumerate(raw):
                pack(packet, 8 + i * step, value)
            packet[-1] = ~(sum(packet) - 2 * 0xFF - packet[-1]) & 0xFF  # not header, nor CHK
            self._send(packet, reg.name)

    # -- address-level access ------------------------------------------------------------

    def read_bytes(self, motor: int, address: int, length: int, label: str | None = None) -> bytes:
        request = self._request(Instruction.READ, motor, address, length)
        with self._lock:
            self._exchange(request, (motor,), length, label)
            return self._payloads((motor,), length, label)[motor]

    def write_bytes(self, motor: int, address: int, data: bytes, label: str | None = None) -> None:
        _check_motor_id(motor)
        request = Packet(motor, Instruction.WRITE, bytes((address,)) + data).encode()
        with self._lock:
            self._exchange(request, (motor,), 0, label)
            self._payloads((motor,), 0, label)

    def sync_read_bytes(
        self, motors: Sequence[int], address: int, length: int, label: str | None = None
    ) -> dict[int, bytes]:
        ids = tuple(motors)
        request = self._request(Instruction.SYNC_READ, BROADCAST_ID, address, length, *ids)
        with self._lock:
            self._exchange(request, ids, length, label)
            return self._payloads(ids, length, label)

    def sync_write_bytes(
        self, data: Mapping[int, bytes], address: int, label: str | None = None
    ) -> None:
        ids = _unique_ids(data)
        sizes = {len(chunk) for chunk in data.values()}
        if len(sizes) != 1:
            raise ValueError("sync write needs the same number of bytes for every motor")
        (size,) = sizes
        params = bytes((address, size)) + b"".join(bytes((m,)) + data[m] for m in ids)
        with self._lock:
            self._send(Packet(BROADCAST_ID, Instruction.SYNC_WRITE, params).encode(), label)

    def resync(self, quiet: float | None = None, limit: float = 0.25) -> bytes:
        """Discard input until the line stays quiet for ``quiet`` s (default: twice the
        timeout), at most ``limit`` s; return the bytes discarded.

        After a timeout a late reply may still be on its way. Waiting it out keeps it from
        being taken for the answer to the next request, and its bytes tell a late motor
        from an absent one (and a late reply from late garbage).
        """
        quiet = 2 * self.timeout if quiet is None else quiet
        with self._lock:
            self._require_open(None)
            discarded = self._late + self._drain(quiet, limit, None)  # _late: waited out before
            self._late = b""
            return discarded

    # -- requests ------------------------------------------------------------------------

    def _request(self, instruction: int, ident: int, *params: int) -> bytes:
        """The encoded request, built (and its IDs checked) the first time it is asked for."""
        key = (instruction, ident, *params)
        request = self._requests.get(key)
        if request is None:
            if instruction == Instruction.SYNC_READ:
                _unique_ids(params[2:])
            else:
                _check_motor_id(ident)
            request = Packet(ident, instruction, bytes(params)).encode()
            self._requests[key] = request
        return request

    def _sync_write_packet(self, ids: tuple[int, ...], address: int, size: int) -> bytearray:
        """A sync write packet for ``ids`` with room for their data (filled by the caller)."""
        key = (address, size, *ids)
        packet = self._sync_writes.get(key)
        if packet is None:
            _unique_ids(ids)
            params = bytes((address, size)) + b"".join(bytes((m, *[0] * size)) for m in ids)
            packet = bytearray(Packet(BROADCAST_ID, Instruction.SYNC_WRITE, params).encode())
            self._sync_writes[key] = packet
        return packet

    # -- transactions (the lock held) ----------------------------------------------------

    def _exchange(
        self, request: bytes, motors: tuple[int, ...], reply_size: int, register: str | None
    ) -> None:
        """Send ``request``; leave one reply of ``reply_size`` data bytes per motor in the
        buffer, frame after frame in ``motors``' order, each checked."""
        frame = reply_size + OVERHEAD
        need = len(motors) * frame
        budget = len(request) + need
        self._send(request, register)
        deadline = time.monotonic() + wire_time(budget, self.baudrate) + self.timeout
        try:
            filled = self._fill(need, deadline, register)
            if filled != need or not self._in_place(motors, reply_size):
                self._reassemble(filled, motors, reply_size, register, deadline)
        except BusError:
            self._stale = True
            raise

    def _fill(self, need: int, deadline: float, register: str | None) -> int:
        """Read into the buffer until ``need`` bytes are in or the deadline passed.

        Once replies are coming, the rest is on the wire: sleeping its wire time, then
        reading once, takes in what would otherwise wake this thread reply by reply."""
        filled = self._read_chunk(0, deadline, register)
        while 0 < filled < need:
            time.sleep(wire_time(need - filled, self.baudrate))
            chunk = self._read_waiting(filled, register) or self._read_chunk(
                filled, deadline, register
            )
            if not chunk:
                break
            filled += chunk
        if filled > need:
            self._stale = True  # more than was asked for: whatever follows is suspect too
        return filled

    def _read_chunk(self, at: int, deadline: float, register: str | None) -> int:
        """Wait for input until the deadline and read it into the buffer at ``at``; the
        number of bytes read, 0 when none came.

        Bytes already waiting are taken even past the deadline: on a busy CPU this thread
        may only run again after it, with the reply long in."""
        assert self._poller is not None
        while True:
            now = time.monotonic()
            if now > deadline + self.timeout or at == len(self._buffer):
                return 0  # input that never stops is no reply either
            if not self._poller.poll(math.ceil(max(deadline - now, 0.0) * 1000)):
                return 0
            try:
                count = os.readv(self._fd, (self._view[at:],))
            except BlockingIOError:
                continue  # readable, then taken back (by whom?): wait on
            except OSError as exc:
                raise self._lost(exc, register) from exc
            if not count:
                raise self._lost(OSError("readable, yet no data: device disconnected?"), register)
            return count

    def _read_waiting(self, at: int, register: str | None) -> int:
        """Read what input is waiting into the buffer at ``at``, without waiting (0: none)."""
        try:
            return os.readv(self._fd, (self._view[at:],))
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise self._lost(exc, register) from exc

    def _in_place(self, motors: tuple[int, ...], reply_size: int) -> bool:
        """True when the buffer holds exactly the expected replies, in order and valid."""
        buf, frame = self._buffer, reply_size + OVERHEAD
        length = reply_size + 2
        for i, motor in enumerate(motors):
            at = i * frame
            if (
                _UNSIGNED[2].unpack_from(buf, at)[0] != _HEADER_WORD
                or buf[at + _ID] != motor
                or buf[at + _LEN] != length
                or buf[at + _ERR] > 0x7F
                or (~sum(self._view[at + _ID : at + frame - 1]) & 0xFF) != buf[at + frame - 1]
            ):
                return False
        return True

    def _reassemble(
        self,
        filled: int,
        motors: tuple[int, ...],
        reply_size: int,
        register: str | None,
        deadline: float,
    ) -> None:
        """The general case: hunt the replies in whatever came (garbage, out of order, cut
        short), keep reading until the deadline, then put them in place or raise."""
        reader = FrameReader()
        reader.feed(bytes(self._view[:filled]))
        replies: dict[int, Packet] = {}
        while len(replies) < len(motors):
            packet = reader.next_packet()
            if packet is None:
                count = self._read_chunk(0, deadline, register)
                if not count:
                    error = self._incomplete(motors, replies, reader, register)
                    missing = len(motors) - len(replies)
                    self._wait_out(missing * (reply_size + OVERHEAD), register)
                    raise error
                reader.feed(bytes(self._view[:count]))
                continue
            self._check_reply(packet, motors, replies, reply_size, register)
            replies[packet.ident] = packet
        if reader.pending:
            self._stale = True
        frame = reply_size + OVERHEAD
        for i, motor in enumerate(motors):
            self._buffer[i * frame : (i + 1) * frame] = replies[motor].encode()

    def _collect_broadcast(self, request: bytes, listen: float) -> dict[int, Packet]:
        with self._lock:
            self._send(request, None)
            self._stale = True  # whoever answers late is no one's reply
            deadline = time.monotonic() + listen
            reader = FrameReader()
            replies: dict[int, Packet] = {}
            while True:
                packet = reader.next_packet()
                if packet is not None:
                    if packet.params == b"" and packet.ident <= MAX_ID:
                        replies[packet.ident] = packet
                    continue
                count = self._read_chunk(0, deadline, None)
                if not count:
                    return replies
                reader.feed(bytes(self._view[:count]))

    def _send(self, request: bytes | bytearray, register: str | None) -> None:
        self._require_open(register)
        self._late = b""
        try:
            if self._stale:  # a late reply to an earlier request must not be taken for ours
                termios.tcflush(self._fd, termios.TCIFLUSH)
                self._stale = False
            try:
                written = os.write(self._fd, request)
            except BlockingIOError:
                written = 0
            if written < len(request):
                self._send_rest(memoryview(request)[written:], register)
        except (OSError, termios.error) as exc:
            raise self._lost(exc, register) from exc

    def _send_rest(self, rest: memoryview, register: str | None) -> None:
        """The part of a request the adapter did not take at once, within the write timeout."""
        writable = select.poll()
        writable.register(self._fd, select.POLLOUT)
        deadline = time.monotonic() + _WRITE_TIMEOUT
        while rest:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not writable.poll(math.ceil(remaining * 1000)):
                self._stale = True
                raise BusTimeout(
                    self.port, "the adapter did not accept the request in time", register=register
                )
            with contextlib.suppress(BlockingIOError):
                rest = rest[os.write(self._fd, rest) :]

    def _wait_out(self, reply_bytes: int, register: str | None) -> None:
        """Let replies still on their way arrive and keep them from the next request (and
        for :meth:`resync`, which tells a late motor from an absent one by them)."""
        quiet = wire_time(reply_bytes, self.baudrate) + self.timeout / 2
        self._late = self._drain(quiet, quiet + self.timeout, register)

    def _drain(self, quiet: float, limit: float, register: str | None) -> bytes:
        """Read and return input until the line stays quiet for ``quiet`` s, at most
        ``limit`` s."""
        assert self._poller is not None
        drained = bytearray()
        end = time.monotonic() + limit
        while (wait := min(quiet, end - time.monotonic())) > 0:
            if not self._poller.poll(math.ceil(wait * 1000)):
                break
            try:
                chunk = os.read(self._fd, _READ_CHUNK)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise self._lost(exc, register) from exc
            if not chunk:  # readable yet empty: the device hung up
                break
            drained += chunk
        return bytes(drained)

    def _check_reply(
        self,
        packet: Packet,
        expected: Sequence[int],
        replies: Mapping[int, Packet],
        reply_size: int,
        register: str | None,
    ) -> None:
        if packet.ident not in expected or packet.ident in replies:
            wanted = motor_list(expected)
            raise CorruptReply(
                self.port,
                f"reply from motor {packet.ident}, expected motor(s) {wanted}",
                motor=packet.ident,
                register=register,
            )
        if len(packet.params) != reply_size:
            raise CorruptReply(
                self.port,
                f"reply carries {len(packet.params)} data byte(s), expected {reply_size}",
                motor=packet.ident,
                register=register,
            )
        if packet.code > 0x7F:
            raise CorruptReply(
                self.port,
                f"invalid error byte 0x{packet.code:02x}",
                motor=packet.ident,
                register=register,
            )

    def _payloads(
        self, motors: tuple[int, ...], reply_size: int, register: str | None
    ) -> dict[int, bytes]:
        """The data of each reply in the buffer; ServoError (carrying the data) if any has
        error bits."""
        frame = reply_size + OVERHEAD
        if any(self._buffer[i * frame + _ERR] for i in range(len(motors))):
            raise self._servo_error(motors, reply_size, register)
        return {
            m: bytes(self._view[i * frame + _DATA : (i + 1) * frame - 1])
            for i, m in enumerate(motors)
        }

    def _servo_error(
        self, motors: tuple[int, ...], reply_size: int, register: str | None
    ) -> ServoError:
        frame = reply_size + OVERHEAD
        at = {m: i * frame for i, m in enumerate(motors)}
        payloads = {m: bytes(self._view[a + _DATA : a + frame - 1]) for m, a in at.items()}
        faults = {
            m: ServoFault(self._buffer[a + _ERR]) for m, a in at.items() if self._buffer[a + _ERR]
        }
        reg = _register_or_none(register)
        values = {
            i: reg.decode(data)
            for i, data in payloads.items()
            if reg is not None and len(data) == reg.size
        }
        return ServoError(self.port, faults, payloads, values, register=register)

    def _incomplete(
        self,
        expected: Sequence[int],
        replies: Mapping[int, Packet],
        reader: FrameReader,
        register: str | None,
    ) -> BusError:
        missing = [m for m in expected if m not in replies]
        motor = missing[0] if len(missing) == 1 else None
        if reader.corrupt or reader.pending:
            detail = f"corrupt or incomplete reply from motor(s) {motor_list(missing)}"
            return CorruptReply(self.port, detail, motor=motor, register=register)
        ms = self.timeout * 1000
        detail = f"no reply from motor(s) {motor_list(missing)} within {ms:.0f} ms"
        return BusTimeout(self.port, detail, motor=motor, register=register)

    # -- port state ----------------------------------------------------------------------

    def _require_open(self, register: str | None) -> serial.Serial:
        if self._serial is None:
            raise PortGone(
                self.port, "port is not open (unplugged? reopen the bus)", register=register
            )
        return self._serial

    def _lost(self, exc: BaseException, register: str | None) -> PortGone:
        self._drop_serial()
        return PortGone(self.port, f"device disconnected ({exc})", register=register)

    def _drop_serial(self) -> None:
        ser, self._serial, self._poller, self._fd = self._serial, None, None, -1
        if ser is None:
            return
        if self.exclusive:
            # The kernel keeps TIOCEXCL after our close while anyone else has the tty open.
            with contextlib.suppress(OSError, ValueError):
                fcntl.ioctl(ser.fileno(), termios.TIOCNXCL)
        with contextlib.suppress(OSError, termios.error):  # already gone: nothing to release
            ser.close()

    def _open_error(self, exc: BaseException) -> BusError:
        code = getattr(exc, "errno", None)
        text = str(exc)
        if code in (errno.EAGAIN, errno.EBUSY) or "exclusively lock" in text:
            return PortBusy(
                self.port,
                "another process holds this port (so101d's service, or lerobot-teleoperate?)",
            )
        if code == errno.EACCES or "Permission denied" in text:
            return PortGone(
                self.port,
                "permission denied: so101d's udev rules give the boards to the group "
                "'so101d': join it (sudo usermod -aG so101d $USER, then log in again)",
            )
        if code == errno.ENOENT or "No such file" in text:
            return PortGone(self.port, "no such device (is the board plugged in?)")
        return PortGone(self.port, f"cannot open: {text}")


def _check_motor_id(motor: int) -> None:
    if not 0 <= motor <= MAX_ID:
        raise ValueError(f"motor ID {motor} is outside 0..{MAX_ID}")


def _unique_ids(motors: Iterable[int]) -> list[int]:
    ids = list(motors)
    if not ids:
        raise ValueError("no motors given")
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate motor IDs in {ids}")
    for ident in ids:
        _check_motor_id(ident)
    return ids


def _register_or_none(name: str | None) -> Register | None:
    try:
        return register(name) if name else None
    except KeyError:
        return None
