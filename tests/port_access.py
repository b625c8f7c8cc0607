"""Other programs and serial ports: opening one from another process, the ways other
programs do, and watching who opens one.

Root passes ``TIOCEXCL``, so as root the other process runs without CAP_SYS_ADMIN
(``setpriv``), as an ordinary user (the Pi's ``pi``, a notebook's LeRobot) would.
"""

from __future__ import annotations

import ctypes
import os
import struct
import subprocess
import sys

OPENERS = {
    # os.open, as any program that does not lock (screen, minicom, a 3D printer host)
    "plain": "os.close(os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK))",
    # LeRobot and scservo_sdk: pyserial without its flock
    "pyserial": "serial.Serial(port, 1_000_000).close()",
    "pyserial-flock": "serial.Serial(port, 1_000_000, exclusive=True).close()",
    "so101d": "FeetechBus(port).open()",
}

_SCRIPT = """
import os, sys, serial
from so101d.feetech import FeetechBus
port = sys.argv[1]
try:
    {opener}
except Exception as exc:
    print(f"{{type(exc).__name__}}: {{exc}}")
else:
    print("opened")
"""


def open_elsewhere(port: str, how: str) -> str:
    """``opened``, or the error another (unprivileged) process gets opening ``port``."""
    command = [sys.executable, "-c", _SCRIPT.format(opener=OPENERS[how]), port]
    if os.geteuid() == 0:
        drop = ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", "--"]
        command = drop + command
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
    return result.stdout.strip()


def busy(outcome: str, how: str) -> bool:
    """Whether ``outcome`` of :func:`open_elsewhere` is the clear "busy" refusal."""
    if how == "so101d":
        return outcome.startswith("PortBusy: ") and "another process holds this port" in outcome
    return "[Errno 16]" in outcome and "Device or resource busy" in outcome


class OpenWatch:
    """Counts every open of a device node, by any process (inotify ``IN_OPEN``)."""

    _IN_OPEN = 0x00000020
    _EVENT = struct.Struct("iIII")  # wd, mask, cookie, len: then len bytes of name

    def __init__(self, path: str) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if (
            self._fd < 0
            or self._libc.inotify_add_watch(
                self._fd, os.fsencode(os.path.realpath(path)), self._IN_OPEN
            )
            < 0
        ):
            raise OSError(ctypes.get_errno(), f"cannot watch {path}")
        self.count = 0

    def opens(self) -> int:
        """Opens seen so far."""
        while True:
            try:
                data = os.read(self._fd, 4096)
            except BlockingIOError:
                return self.count
            offset = 0
            while offset < len(data):
                *_, length = self._EVENT.unpack_from(data, offset)
                offset += self._EVENT.size + length
                self.count += 1

    def close(self) -> None:
        os.close(self._fd)
