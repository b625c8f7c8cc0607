"""The real ``so101d run`` as a subprocess, with a fake systemd notify socket.

The virtual arms live in the test process; the daemon finds them through their symlinks,
exactly as it finds udev's links on a Pi. That does not skew the wire's timing: the arms'
wire threads wait in ``poll``/``sleep`` without the GIL, a request pays for at most 25
substeps of physics (~0.2-0.4 ms per arm per 10 ms of motion) and pings or settings reads for
none, and the test thread only polls with sleeps in between. ``tests/benchmarks/sim_timing.py``
measures the replies with the simulator here and in its own process, idle and under load.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from so101d.api import ApiClient, ApiError
from so101d.calibration.locate import calibration_path
from so101d.calibration.model import MotorCalibration, Role
from so101d.calibration.store import save_calibration
from so101d.sim import Fidelity, VirtualArm
from so101d.sim.calibration_files import save_matching_calibration
from tests.waiting import wait_for

# How long a state may take to come: only a bound on a hung test. A loaded CPU (every core
# busy, tests/under_load) slows the engage ramp several fold, so it is generous.
STATE_TIMEOUT_S = 60.0


def save_arm_calibration(
    root: Path, role: Role, arm_id: str, calibration: Mapping[str, Mapping[str, int]]
) -> Path:
    """Write any calibration (good or deliberately broken) where the daemon looks for it."""
    path = calibration_path(root, role, arm_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_calibration(
        path, {joint: MotorCalibration(**values) for joint, values in calibration.items()}
    )
    return path


StartDaemon = Callable[..., "Daemon"]


@dataclass
class PairSetup:
    name: str
    leader: VirtualArm
    follower: VirtualArm

    def toml(self, **settings: object) -> str:
        lines = [f"[pair.{self.name}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
        lines += [
            f'leader.port = "{self.leader.link}"',
            f'leader.id = "{self.name}_leader"',
            f'follower.port = "{self.follower.link}"',
            f'follower.id = "{self.name}_follower"',
        ]
        return "\n".join(lines)

    def save_calibrations(self, root: Path) -> None:
        save_matching_calibration(self.leader, root, f"{self.name}_leader")
        save_matching_calibration(self.follower, root, f"{self.name}_follower")


@contextmanager
def virtual_pair(
    work: Path, name: str, links: str, seed: int, fidelity: Fidelity | None = None
) -> Iterator[PairSetup]:
    """A leader and a follower at ``work/<links>_leader`` and ``_follower``, calibrated."""
    with (
        VirtualArm("leader", work / f"{links}_leader", seed=seed, fidelity=fidelity) as leader,
        VirtualArm(
            "follower", work / f"{links}_follower", seed=seed + 1, fidelity=fidelity
        ) as follower,
    ):
        setup = PairSetup(name, leader, follower)
        setup.save_calibrations(work / "calibration")
        yield setup


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


class Notifications:
    """A fake ``NOTIFY_SOCKET``: every datagram the daemon sends, with its arrival time."""

    def __init__(self, directory: Path) -> None:
        self.path = str(directory / "notify")
        with contextlib.suppress(FileNotFoundError):  # a previous daemon's, in the same dir
            os.unlink(self.path)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(self.path)
        self._socket.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed:
            try:
                data = self._socket.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode()))

    def all(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self.messages)

    def texts(self) -> list[str]:
        return [text for _, text in self.all()]

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 10.0) -> str:
        return wait_for(lambda: next((t for t in self.texts() if predicate(t)), None), timeout)

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=2)
        self._socket.close()


class Daemon:
    """``python -m so101d run --config FILE`` with captured stderr and a notify socket."""

    def __init__(self, config_text: str, work: Path, env: Mapping[str, str] | None = None):
        self.work = work
        self.config = work / "config.toml"
        self.config.write_text(config_text)
        self.socket_path = work / "api.sock"
        self.log_path = work / "daemon.log"
        self.notifications = Notifications(work)
        full_env = dict(os.environ, NOTIFY_SOCKET=self.notifications.path, **(env or {}))
        full_env.pop("JOURNAL_STREAM", None)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "so101d", "run", "--config", str(self.config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = ApiClient(self.socket_path).call("status")
        return result

    def pair(self, name: str = "main") -> dict[str, Any]:
        pair: dict[str, Any] = self.status()["pairs"][name]
        return pair

    def wait_state(
        self, state: str, name: str = "main", timeout: float = STATE_TIMEOUT_S
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            try:
                pair = self.pair(name)
            except ApiError:
                return None
            return pair if pair["state"] == state else None

        try:
            return wait_for(reached, timeout=timeout, interval=0.02)
        except AssertionError:
            raise AssertionError(
                f"{name} never reached {state}; last status "
                f"{self._last_status(name)}\n--- log ---\n{self.log}"
            ) from None

    def _last_status(self, name: str) -> object:
        try:
            return self.pair(name)
        except ApiError as exc:
            return exc

    def call(self, method: str, **params: Any) -> Any:
        return ApiClient(self.socket_path).call(method, **params)

    def terminate(self, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()
        self.notifications.close()


@contextmanager
def short_tmpdir() -> Iterator[Path]:
    """A directory with a short path: AF_UNIX socket paths are limited to 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="so101d-", dir="/tmp") as path:
        yield Path(path)


def torque_enabled(arm: VirtualArm) -> list[int]:
    return [arm.servo(motor).get("Torque_Enable") for motor in arm.motor_ids]


def max_deviation(leader: VirtualArm, follower: VirtualArm) -> float:
    """Largest joint angle difference (degrees) between the arms, gripper excluded."""
    lead, follow = leader.joint_angles(), follower.joint_angles()
    return max(abs(lead[j] - follow[j]) for j in list(lead)[:5])
