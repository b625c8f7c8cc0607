"""A bare pty peer that answers each request with whatever bytes a test chooses.

Used where a test needs exact control of the bytes on the wire (garbage, partial frames),
which the servo simulator deliberately never produces on its own.
"""

from __future__ import annotations

import os
import pty
import select
import threading
import tty
from collections.abc import Callable
from pathlib import Path

from so101d.feetech import FrameReader, Packet

Responder = Callable[[Packet], bytes]


class PtyPeer:
    def __init__(self, link: Path, respond: Responder) -> None:
        self.respond = respond
        self.link = str(link)
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        os.symlink(os.ttyname(self._slave), self.link)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=5)
        for fd in (self._master, self._slave, self._stop_r, self._stop_w):
            os.close(fd)
        os.unlink(self.link)

    def _serve(self) -> None:
        reader = FrameReader()
        while True:
            ready, _, _ = select.select([self._master, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            reader.feed(os.read(self._master, 4096))
            while (request := reader.next_packet()) is not None:
                reply = self.respond(request)
                if reply:
                    os.write(self._master, reply)
