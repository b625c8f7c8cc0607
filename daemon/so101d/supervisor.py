"""The daemon process: one thread per pair, device events, the control socket, systemd.

The main thread only keeps time: it publishes ``STATUS=`` when a pair changes and sends
``WATCHDOG=1`` only while it and every pair thread show recent progress (a pair stuck on its
bus stops the pings, so systemd restarts us). Signals arrive through a wakeup pipe.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from so101d import __version__
from so101d.api import ApiError, ApiServer
from so101d.calibrate.desk import CalibrationDesk, session_settings
from so101d.config import Config
from so101d.devices import DeviceWatcher
from so101d.pair import REST_MOVE_TIMEOUT_S, PairRunner
from so101d.service import Notifier, watchdog_interval

log = logging.getLogger("so101d")

DEFAULT_TICK_S = 1.0
STOP_TIMEOUT_S = REST_MOVE_TIMEOUT_S + 4.0  # the longest stop move, its torque off, and slack


class Supervisor:
    def __init__(self, config: Config, notifier: Notifier | None = None) -> None:
        self.config = config
        self.notifier = notifier or Notifier()
        self.watchdog_s = watchdog_interval()
        self.tick_s = min(DEFAULT_TICK_S, self.watchdog_s or DEFAULT_TICK_S)
        self.runners = {
            name: PairRunner(
                pair,
                config.calibration_dir,
                stats_interval_s=config.stats_interval_s,
                heartbeat_s=self.tick_s / 2,
            )
            for name, pair in config.pairs.items()
        }
        ports = [arm.port for pair in config.pairs.values() for arm in (pair.leader, pair.follower)]
        self.watcher = DeviceWatcher(ports, self._devices_changed)
        self.calibration = CalibrationDesk(config.pairs, self.runners, session_settings(config))
        self.api = ApiServer(
            config.socket,
            {
                "status": self._status,
                "pause": self._pause,
                "resume": self._resume,
                "estop": self._estop,
                **self.calibration.handlers(),
            },
        )
        self.started = time.monotonic()
        self._stopping = False
        self._last_status = ""

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; return the exit code."""
        with _signal_pipe() as wakeup:
            self.api.start()
            try:
                self._serve(wakeup)
            finally:
                self.api.close()
        log.info("stopped")
        return 0

    def _serve(self, wakeup: int) -> None:
        log.info(
            "so101d %s starting with %s: %s",
            __version__,
            self.config.path,
            ", ".join(
                f"{r.config.name} ({r.config.leader.port} -> {r.config.follower.port})"
                for r in self.runners.values()
            ),
        )
        self.watcher.start()
        for runner in self.runners.values():
            runner.start()
        self._last_status = self._status_line()
        self.notifier.ready(self._last_status)
        try:
            while not self._stopping:
                readable, _, _ = select.select([wakeup], [], [], self.tick_s)
                if readable:
                    self._on_signal(wakeup)
                self._tick()
        finally:
            self._shutdown()

    def _on_signal(self, wakeup: int) -> None:
        received = os.read(wakeup, 64)
        if received:
            names = ", ".join(signal.Signals(n).name for n in received)
            log.info("received %s, stopping", names)
            self._stopping = True

    def _tick(self) -> None:
        line = self._status_line()
        if line != self._last_status:
            self._last_status = line
            self.notifier.status(line)
        if self.watchdog_s is not None and self._all_progressing():
            self.notifier.watchdog()

    def _all_progressing(self) -> bool:
        stale_after = self.watchdog_s or DEFAULT_TICK_S
        for runner in self.runners.values():
            if not runner.is_alive() or runner.heartbeat_age() > stale_after:
                log.warning(
                    "%s: no progress for %.1f s; withholding the watchdog ping",
                    runner.config.name,
                    runner.heartbeat_age(),
                )
                return False
        return True

    def _shutdown(self) -> None:
        self.notifier.stopping()
        self.calibration.abort_all("the daemon is stopping", resume=False)
        for runner in self.runners.values():
            runner.stop()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for runner in self.runners.values():
            runner.join(timeout=max(0.0, deadline - time.monotonic()))
            if runner.is_alive():
                log.error("%s did not stop within %.0f s", runner.config.name, STOP_TIMEOUT_S)
        self.watcher.stop()

    def _devices_changed(self) -> None:
        for runner in self.runners.values():
            runner.devices_changed()

    def _status_line(self) -> str:
        return " | ".join(runner.status_line() for runner in self.runners.values())

    # -- control socket handlers (quick: they copy snapshots or set flags) -----------------

    def _status(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started, 1),
            "config": str(self.config.path),
            "pairs": {name: runner.snapshot() for name, runner in self.runners.items()},
            "calibration": self.calibration.summary(),
        }

    def _pause(self, params: dict[str, Any]) -> dict[str, Any]:
        chosen = self._chosen(params)
        self.calibration.refuse_if_held([r.config.name for r in chosen], "pause")
        for runner in chosen:
            runner.pause()
        return {"paused": [r.config.name for r in chosen]}

    def _resume(self, params: dict[str, Any]) -> dict[str, Any]:
        chosen = self._chosen(params)
        self.calibration.refuse_if_held([r.config.name for r in chosen], "resume")
        for runner in chosen:
            runner.resume()
        return {"resumed": [r.config.name for r in chosen]}

    def _estop(self, params: dict[str, Any]) -> dict[str, Any]:
        """Torque off on every follower from this thread, read back before the reply."""
        log.warning("emergency stop requested: every follower's torque goes off")
        self.calibration.abort_all("emergency stop", resume=False)
        released = {name: runner.emergency_stop() for name, runner in self.runners.items()}
        for name, release in released.items():
            level = logging.WARNING if release.ok else logging.ERROR
            log.log(level, "%s: emergency stop: %s", name, release.describe())
        return {
            "stopped": list(self.runners),
            "pairs": {name: release.as_dict() for name, release in released.items()},
        }

    def _chosen(self, params: dict[str, Any]) -> list[PairRunner]:
        name = params.get("pair")
        if name is None:
            return list(self.runners.values())
        if name not in self.runners:
            raise ApiError(f"no pair named {name!r}; pairs: {', '.join(self.runners)}")
        return [self.runners[name]]


@contextmanager
def _signal_pipe() -> Iterator[int]:
    """SIGTERM and SIGINT write their number to a pipe the main loop selects on."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous_fd = signal.set_wakeup_fd(write_fd)
    handlers = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield read_fd
    finally:
        signal.set_wakeup_fd(previous_fd)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        os.close(read_fd)
        os.close(write_fd)
