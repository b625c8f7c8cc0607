"""Feetech protocol 0 framing: packets, checksums and an incremental frame reader.

Instruction (host to servo): ``FF FF ID LEN INSTR P1..Pn CHK``; status (servo to host):
``FF FF ID LEN ERR P1..Pn CHK``. ``LEN = n + 2`` and ``CHK`` is the inverted low byte of the
sum of every byte between the header and the checksum. The same frame shape serves both
directions, so the driver and the simulator share this module.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

HEADER = b"\xff\xff"
BROADCAST_ID = 0xFE
MAX_ID = 0xFD  # status packets with a larger ID are never valid
MIN_LENGTH = 2  # LEN of a packet without parameters
MAX_LENGTH = 250  # largest LEN the reference SDK accepts
OVERHEAD = 6  # header, ID, LEN, INSTR/ERR and CHK around the parameters


class Instruction(enum.IntEnum):
    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REG_WRITE = 0x04
    ACTION = 0x05
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83


def checksum(body: bytes | bytearray) -> int:
    """Checksum over ID, LEN, INSTR/ERR and the parameters."""
    return ~sum(body) & 0xFF


@dataclass(frozen=True)
class Packet:
    """One frame: ``code`` is the instruction (requests) or the error byte (replies)."""

    ident: int
    code: int
    params: bytes = b""

    def encode(self) -> bytes:
        body = bytes((self.ident, len(self.params) + 2, self.code)) + self.params
        return HEADER + body + bytes((checksum(body),))

    @property
    def wire_size(self) -> int:
        return len(self.params) + OVERHEAD


class FrameReader:
    """Turns a byte stream into packets, skipping garbage and frames with a bad checksum.

    ``corrupt`` counts frames that were complete but failed their checksum or shape;
    ``skipped`` counts bytes discarded while hunting for a header.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.corrupt = 0
        self.skipped = 0

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def next_packet(self) -> Packet | None:
        """The next complete valid packet, or None when more bytes are needed."""
        buf = self._buffer
        while True:
            start = buf.find(HEADER)
            if start < 0:
                keep = 1 if buf.endswith(b"\xff") else 0
                self._discard(len(buf) - keep)
                return None
            self._discard(start)
            if len(buf) < 4:
                return None
            ident, length = buf[2], buf[3]
            if ident == 0xFF:  # a third 0xFF: the real header may start one byte later
                self._discard(1)
                continue
            if not MIN_LENGTH <= length <= MAX_LENGTH:
                self._reject()
                continue
            total = length + 4
            if len(buf) < total:
                return None
            frame = bytes(buf[:total])
            if checksum(frame[2:-1]) != frame[-1]:
                self._reject()
                continue
            del buf[:total]
            return Packet(ident=frame[2], code=frame[4], params=frame[5:-1])

    def _discard(self, count: int) -> None:
        if count:
            del self._buffer[:count]
            self.skipped += count

    def _reject(self) -> None:
        """Drop one byte of a bad frame so the hunt for the next header goes on after it."""
        self.corrupt += 1
        self._discard(1)
