"""Running real LeRobot, in its own Python 3.12 environment, against our simulator.

``tests/run`` builds that environment and sets ``LEROBOT_PYTHON``. The scripts it runs live
in ``tests/lerobot_scripts/``; they import LeRobot only (never so101d) and report results
on stdout as lines starting with ``@@ `` followed by one JSON object.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).parent / "lerobot_scripts"
RESULT_PREFIX = "@@ "


def lerobot_python() -> str:
    """The LeRobot interpreter; missing is a failure in CI and a skip elsewhere."""
    path = os.environ.get("LEROBOT_PYTHON")
    if path and os.access(path, os.X_OK):
        return path
    reason = "LEROBOT_PYTHON is not set to a LeRobot environment (bash tests/run builds it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the LeRobot compatibility tests")
    pytest.skip(reason)


class LeRobotScript:
    """A LeRobot script running in a subprocess, with its output collected as it comes."""

    def __init__(self, script: str, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", **(env or {}))
        self.process = subprocess.Popen(
            [lerobot_python(), str(SCRIPTS / script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    @property
    def output(self) -> str:
        with self._lock:
            return self._output.decode(errors="replace")

    def wait_for_text(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.process.poll() is not None and text not in self.output:
                self._reader.join(timeout=5)
                if text in self.output:
                    return
                raise AssertionError(f"script ended before printing {text!r}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {timeout} s:\n{self.tail()}")
            time.sleep(0.02)

    def send_line(self, line: str = "") -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 120.0) -> list[dict[str, Any]]:
        """Wait for a clean exit and return the script's results."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(
                f"script still running after {timeout} s:\n{self.tail()}"
            ) from None
        self._reader.join(timeout=5)
        assert code == 0, f"script exited with {code}:\n{self.tail()}"
        return self.results()

    def results(self) -> list[dict[str, Any]]:
        """Every reported result. LeRobot leaves prompts and cursor moves without a newline,
        so a result may follow other text on its line."""
        lines = self.output.splitlines()
        return [
            json.loads(line[line.index(RESULT_PREFIX) + len(RESULT_PREFIX) :])
            for line in lines
            if RESULT_PREFIX in line
        ]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output.replace("\r", "\n").splitlines()[-lines:])

    def _collect(self) -> None:
        assert self.process.stdout is not None
        while chunk := self.process.stdout.read1(4096):
            with self._lock:
                self._output += chunk
