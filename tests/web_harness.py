"""The real ``so101d web`` as a subprocess beside the real daemon, and plain HTTP to it."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.daemon_harness import Daemon, PairSetup, StartDaemon
from tests.waiting import wait_for

READY_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def web_table(work: Path, port: int) -> str:
    return f'[web]\nlisten = "127.0.0.1:{port}"\ntoken_file = "{work / "web-token"}"\n'


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


@dataclass
class WebProcess:
    """``python -m so101d web --config FILE`` on ``port``; its log in ``work/web.log``."""

    config: Path
    port: int
    work: Path
    process: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.work / "web.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "so101d", "web", "--config", str(self.config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._listening, timeout=READY_TIMEOUT_S, interval=0.05)

    def _listening(self) -> bool:
        assert self.process.poll() is None, f"so101d web exited:\n{self.log}"
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.work / "web-token").read_text().strip()

    @property
    def cookie(self) -> str:
        return f"so101d_token={self.token}"

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: object = None,
        authorized: bool = True,
    ) -> Reply:
        """One request; ``authorized``: with the cookie, and the Origin a browser sends."""
        sent = dict(headers or {})
        if authorized:
            sent.setdefault("Cookie", self.cookie)
            if method == "POST":
                sent.setdefault("Origin", self.origin)
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            sent["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            first = response.read(4096) if path == "/api/stream" else response.read()
            return Reply(response.status, dict(response.getheaders()), first)
        finally:
            connection.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


@contextmanager
def web_beside(daemon: Daemon, port: int) -> Iterator[WebProcess]:
    web = WebProcess(daemon.config, port, daemon.work)
    try:
        yield web
    finally:
        web.close()


def start_daemon_with_web(work: Path, pair: PairSetup) -> tuple[Daemon, int]:
    """The daemon on ``pair`` (not waited for), its config's [web] on a free port."""
    port = free_port()
    daemon = Daemon(
        f'calibration_dir = "{work / "calibration"}"\nsocket = "{work / "api.sock"}"\n'
        f"{web_table(work, port)}\n{pair.toml()}",
        work,
    )
    return daemon, port


@contextmanager
def daemon_and_web(
    pair: PairSetup, start_daemon: StartDaemon, work: Path
) -> Iterator[tuple[Daemon, WebProcess]]:
    """The daemon on ``pair`` mirroring, and the web process on its socket."""
    port = free_port()
    daemon = start_daemon(pair, top=web_table(work, port))
    daemon.wait_state("teleop")
    with web_beside(daemon, port) as web:
        yield daemon, web
