"""Opening a serial port from another process, the ways other programs open one.

Root passes ``TIOCEXCL``, so as root the other process runs without CAP_SYS_ADMIN
(``setpriv``), as an ordinary user (the Pi's ``pi``, a notebook's LeRobot) would.
"""

from __future__ import annotations

import os
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
