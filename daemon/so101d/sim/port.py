"""The virtual USB serial device: a pty behind a stable symlink, unpluggable like the real one.

Clients open ``link`` exactly like udev's ``/dev/so101_follower``. The simulator keeps its own
slave fd open so the master never sees EIO between client sessions. Unplugging removes the
symlink and closes both the master and that slave fd, so an open client gets the same pyserial
``SerialException`` a real unplug gives and a reopen fails with ENOENT.
"""

from __future__ import annotations

import array
import fcntl
import os
import pty
import termios
import tty
from pathlib import Path

from so101d.feetech.registers import BAUD_RATES

_DEVICE_MODE = 0o666  # a simulator: let any user (the daemon's service user) open it
_SPEEDS = {
    getattr(termios, f"B{baud}"): baud
    for baud in BAUD_RATES.values()
    if hasattr(termios, f"B{baud}")
}
# Linux TCGETS2 (asm-generic, as on x86 and ARM): struct termios2 carries the exact speeds, which
# tcgetattr cannot report for rates without a Bnnn constant (128000).
_TCGETS2 = 0x802C542A
_TERMIOS2_OSPEED = 10  # index of c_ospeed when struct termios2 is read as 32-bit ints


class VirtualPort:
    def __init__(self, link: str | os.PathLike[str]) -> None:
        self.link = Path(link)
        self._master: int | None = None
        self._slave: int | None = None
        self._device: str | None = None

    @property
    def master(self) -> int | None:
        return self._master

    @property
    def device(self) -> str | None:
        """The pty slave the link points to while plugged."""
        return self._device

    def plug(self) -> int:
        """Create the pty and point the link at it; return the master fd (non-blocking)."""
        if self._master is not None:
            return self._master
        self._refuse_foreign_file()
        master, slave = pty.openpty()
        tty.setraw(slave)  # a fresh pty echoes and buffers lines until a client configures it
        os.set_blocking(master, False)
        device = os.ttyname(slave)
        try:
            os.chmod(device, _DEVICE_MODE)
            self._point_link_at(device)
        except OSError:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave, self._device = master, slave, device
        return master

    def unplug(self) -> None:
        if self._master is None:
            return
        self._remove_link()
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = self._device = None

    def client_baudrate(self) -> int | None:
        """The speed the client configured on its end, or None when it cannot be told."""
        if self._master is None:
            return None
        speed = termios.tcgetattr(self._master)[5]
        if speed in _SPEEDS:
            return _SPEEDS[speed]
        settings = array.array("i", [0] * 64)
        try:
            fcntl.ioctl(self._master, _TCGETS2, settings)
        except OSError:
            return None
        return settings[_TERMIOS2_OSPEED]

    def _refuse_foreign_file(self) -> None:
        if os.path.lexists(self.link) and not self.link.is_symlink():
            raise FileExistsError(
                f"{self.link} exists and is not a symlink; refusing to replace it"
            )

    def _point_link_at(self, device: str) -> None:
        """Create or atomically replace the symlink."""
        self.link.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
        if temporary.is_symlink():
            temporary.unlink()
        temporary.symlink_to(device)
        os.replace(temporary, self.link)

    def _remove_link(self) -> None:
        """Remove the link only if it still points at this pty (someone may have replaced it)."""
        try:
            if os.readlink(self.link) == self._device:
                self.link.unlink()
        except OSError:
            pass  # already gone or no longer a symlink: nothing of ours to remove
