"""Running the real ``so101d`` command, as a person or a script runs it."""

from __future__ import annotations

import os
import subprocess
import sys


def so101d(
    *args: str, env: dict[str, str] | None = None, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The command with ``stdin`` on a pipe (never a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "so101d", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=timeout,
    )
