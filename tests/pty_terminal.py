"""A command running in a pseudo-terminal, as a person runs it: what it draws, keys typed."""

from __future__ import annotations

import os
import pty
import re
import signal
import sys
import threading
import time
from collections.abc import Mapping

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    def __init__(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        argv = [sys.executable, "-m", "so101d", *args]
        full_env = {**os.environ, **(env or {}), "TERM": "xterm"}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its controlling terminal (Ctrl-C works)
            os.execve(sys.executable, argv, full_env)
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.returncode: int | None = None

    @property
    def output(self) -> str:
        with self._lock:
            return self._output.decode(errors="replace")

    def screen(self) -> str:
        """The last frame drawn (text after the last clear), without escape codes."""
        text = self.output
        return ANSI.sub("", text[text.rfind("\x1b[H") :]).replace("\r", "")

    def wait_for(self, text: str, timeout: float = 60.0, *, since: int = 0) -> int:
        """Wait until ``text`` appears after offset ``since``; returns the offset after it."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.output.find(text, since)
            if found >= 0:
                return found + len(text)
            if time.monotonic() > deadline or not self._reader.is_alive():
                raise AssertionError(f"no {text!r} within {timeout} s; screen:\n{self.screen()}")
            time.sleep(0.02)

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def wait(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s:\n{self.screen()}")
            else:
                time.sleep(0.05)
        self._reader.join(timeout=5)
        return self.returncode

    def kill(self) -> None:
        """The terminal goes away without a word (a closed ssh session, a kill -9)."""
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)
            self.wait()

    def close(self) -> None:
        self.kill()
        os.close(self.fd)

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            with self._lock:
                self._output += chunk
