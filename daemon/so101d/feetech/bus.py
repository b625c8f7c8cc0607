"""A Feetech servo bus over pyserial: ping, read, write, sync read and sync write.

Every transaction discards stale input, sends one request and waits for its replies with a
deadline (``poll``, never a busy loop). Replies must come from the addressed motor and have
the exact expected length. After a timeout the bus waits out the missing replies' wire time
(plus half the slack, for the USB adapter) and discards whatever came, so a reply that was
merely late is never taken for the answer to the next request. A timeout, a corrupt reply or
servo error bits raise a typed error and leave the bus ready for the next transaction; a
vanished device raises :class:`PortGone` now and on every later call, until the bus is
reopened.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import select
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
        self._lock = threading.Lock()
        self._late = b""  # what the last timed-out transaction's late replies brought

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
            poller.register(ser.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
            self._serial, self._poller = ser, poller

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
        _check_motor_id(motor)
        request = Packet(motor, Instruction.PING)
        (reply,) = self._transact(request, [motor], reply_size=0, register=None).values()
        return ServoFault(reply.code)

    def broadcast_ping(self, window: float | None = None) -> dict[int, ServoFault]:
        """Ping every motor at once; return ``{id: error bits}`` of those that answered."""
        listen = window if window is not None else wire_time(OVERHEAD * 253, self.baudrate)
        request = Packet(BROADCAST_ID, Instruction.PING)
        replies = self._collect_broadcast(request, listen + self.timeout)
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
        raw = self.sync_read_bytes(motors, reg.address, reg.size, reg.name)
        return {ident: reg.decode(data) for ident, data in raw.items()}

    def sync_write(self, name: str, values: Mapping[int, int]) -> None:
        """Write one register on several motors in one transaction (no replies)."""
        reg = register(name)
        self.sync_write_bytes({m: reg.encode(v) for m, v in values.items()}, reg.address, reg.name)

    # -- address-level access ------------------------------------------------------------

    def read_bytes(self, motor: int, address: int, length: int, label: str | None = None) -> bytes:
        _check_motor_id(motor)
        request = Packet(motor, Instruction.READ, bytes((address, length)))
        replies = self._transact(request, [motor], reply_size=length, register=label)
        return self._payloads(replies, label)[motor]

    def write_bytes(self, motor: int, address: int, data: bytes, label: str | None = None) -> None:
        _check_motor_id(motor)
        request = Packet(motor, Instruction.WRITE, bytes((address,)) + data)
        replies = self._transact(request, [motor], reply_size=0, register=label)
        self._payloads(replies, label)

    def sync_read_bytes(
        self, motors: Sequence[int], address: int, length: int, label: str | None = None
    ) -> dict[int, bytes]:
        ids = _unique_ids(motors)
        request = Packet(BROADCAST_ID, Instruction.SYNC_READ, bytes((address, length, *ids)))
        replies = self._transact(request, ids, reply_size=length, register=label)
        return self._payloads(replies, label)

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
            self._send(Packet(BROADCAST_ID, Instruction.SYNC_WRITE, params), label)

    def resync(self, quiet: float | None = None, limit: float = 0.25) -> bytes:
        """Discard input until the line stays quiet for ``quiet`` s (default: twice the
        timeout), at most ``limit`` s; return the bytes discarded.

        After a timeout a late reply may still be on its way. Waiting it out keeps it from
        being taken for the answer to the next request, and its bytes tell a late motor
        from an absent one (and a late reply from late garbage).
        """
        quiet = 2 * self.timeout if quiet is None else quiet
        with self._lock:
            ser = self._require_open(None)
            assert self._poller is not None
            discarded = bytearray(self._late)  # already waited out after the timeout
            self._late = b""
            end = time.monotonic() + limit
            while (wait := min(quiet, end - time.monotonic())) > 0:
                if not self._poller.poll(math.ceil(wait * 1000)):
                    break
                try:
                    chunk = ser.read(_READ_CHUNK)
                except (OSError, termios.error) as exc:
                    raise self._lost(exc, None) from exc
                if not chunk:  # readable yet empty: the device hung up
                    break
                discarded += chunk
            return bytes(discarded)

    # -- transactions --------------------------------------------------------------------

    def _transact(
        self, request: Packet, motors: Sequence[int], reply_size: int, register: str | None
    ) -> dict[int, Packet]:
        """Send ``request`` and gather one reply of ``reply_size`` data bytes per motor."""
        expected = list(motors)
        budget = request.wire_size + len(expected) * (reply_size + OVERHEAD)
        with self._lock:
            self._send(request, register)
            deadline = time.monotonic() + wire_time(budget, self.baudrate) + self.timeout
            reader = FrameReader()
            replies: dict[int, Packet] = {}
            while len(replies) < len(expected):
                packet = reader.next_packet()
                if packet is None:
                    if not self._receive_into(reader, deadline, register):
                        error = self._incomplete(expected, replies, reader, register)
                        missing = len(expected) - len(replies)
                        self._discard_late_replies(missing * (reply_size + OVERHEAD), register)
                        raise error
                    continue
                self._check_reply(packet, expected, replies, reply_size, register)
                replies[packet.ident] = packet
            return replies

    def _collect_broadcast(self, request: Packet, listen: float) -> dict[int, Packet]:
        with self._lock:
            self._send(request, None)
            deadline = time.monotonic() + listen
            reader = FrameReader()
            replies: dict[int, Packet] = {}
            while True:
                packet = reader.next_packet()
                if packet is not None:
                    if packet.params == b"" and packet.ident <= MAX_ID:
                        replies[packet.ident] = packet
                    continue
                if not self._receive_into(reader, deadline, None):
                    return replies

    def _send(self, request: Packet, register: str | None) -> None:
        ser = self._require_open(register)
        self._late = b""
        try:
            # A late reply to an earlier request must not be taken for ours.
            ser.reset_input_buffer()
            ser.write(request.encode())
        except serial.SerialTimeoutException as exc:
            raise BusTimeout(
                self.port, "the adapter did not accept the request in time", register=register
            ) from exc
        except (OSError, termios.error) as exc:
            raise self._lost(exc, register) from exc

    def _discard_late_replies(self, reply_bytes: int, register: str | None) -> None:
        """Let replies still on their way arrive, then throw them away (kept for
        :meth:`resync`, which tells a late motor from an absent one by them)."""
        time.sleep(wire_time(reply_bytes, self.baudrate) + self.timeout / 2)
        ser = self._require_open(register)
        try:
            self._late = ser.read(_READ_CHUNK)
            ser.reset_input_buffer()
        except (OSError, termios.error) as exc:
            raise self._lost(exc, register) from exc

    def _receive_into(self, reader: FrameReader, deadline: float, register: str | None) -> bool:
        """Wait until bytes arrive (fed to ``reader``) or the deadline passes (False).

        Bytes already waiting are taken even past the deadline: on a busy CPU this thread
        may only run again after it, with the reply long in."""
        now = time.monotonic()
        if now > deadline + self.timeout:  # input that never stops is no reply either
            return False
        remaining = max(deadline - now, 0.0)
        assert self._poller is not None and self._serial is not None
        if not self._poller.poll(math.ceil(remaining * 1000)):
            return False
        try:
            reader.feed(self._serial.read(_READ_CHUNK))
        except (OSError, termios.error) as exc:
            raise self._lost(exc, register) from exc
        return True

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

    def _payloads(self, replies: Mapping[int, Packet], register: str | None) -> dict[int, bytes]:
        """The data of each reply; ServoError (carrying the data) if any has error bits."""
        payloads = {ident: p.params for ident, p in replies.items()}
        faults = {ident: ServoFault(p.code) for ident, p in replies.items() if p.code}
        if faults:
            reg = _register_or_none(register)
            values = {
                i: reg.decode(data)
                for i, data in payloads.items()
                if reg is not None and len(data) == reg.size
            }
            raise ServoError(self.port, faults, payloads, values, register=register)
        return payloads

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
        ser, self._serial, self._poller = self._serial, None, None
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
