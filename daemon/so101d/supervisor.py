"""The daemon process: one thread per pair, device events, the control socket, systemd.

The main thread only keeps time: it publishes ``STATUS=`` when a pair changes, and restarts
on its own a pair that shows no progress for its ``stall_timeout_s`` (a bus call that never
returns): the runner is asked to stop, then its buses are closed under it, and a fresh
runner takes the pair over, while every other pair carries on. ``WATCHDOG=1`` goes out on
every tick unless a pair cannot be restarted (its thread holds on to its bus), so systemd
restarts the process only when the main loop itself is stuck or a restart failed. Signals
arrive through a wakeup pipe.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from so101d import __version__
from so101d.api import ApiError, ApiServer
from so101d.calibrate.desk import CalibrationDesk, auto_settings, session_settings
from so101d.checking import arm_file_state
from so101d.config import Config
from so101d.devices import DeviceWatcher
from so101d.frames import Frame
from so101d.pair import REST_MOVE_TIMEOUT_S, PairRunner
from so101d.service import Notifier, watchdog_interval

log = logging.getLogger("so101d")

DEFAULT_TICK_S = 1.0
STOP_TIMEOUT_S = REST_MOVE_TIMEOUT_S + 4.0  # the longest stop move, its torque off, and slack
STALL_GRACE_S = 2.0  # a stalled runner may stop by itself (stop policy and all) this long
RELEASE_TIMEOUT_S = 10.0  # then, its buses closed under it, it must be gone within this
FIRST_RESTART_DELAY_S = 0.5
MAX_RESTART_DELAY_S = 30.0
STABLE_RUN_S = 60.0  # a runner that lasted this long starts the restart delays over
HEARTBEATS_PER_STALL = 4  # a waiting pair beats this often within its stall timeout


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
                heartbeat_s=min(self.tick_s / 2, pair.stall_timeout_s / HEARTBEATS_PER_STALL),
            )
            for name, pair in config.pairs.items()
        }
        self._runners_lock = threading.Lock()  # runner swaps against control requests
        self._restarts: dict[str, PairRestart] = {}
        self._restart_level = dict.fromkeys(self.runners, 0)
        self._started_at: dict[str, float] = {}
        ports = [arm.port for pair in config.pairs.values() for arm in (pair.leader, pair.follower)]
        self.watcher = DeviceWatcher(ports, self._devices_changed)
        self.calibration = CalibrationDesk(
            config.pairs, self.runners, session_settings(config), auto_settings(config)
        )
        self.api = ApiServer(
            config.socket,
            {
                "status": self._status,
                "pause": self._pause,
                "resume": self._resume,
                "estop": self._estop,
                "calibration.files": self._calibration_files,
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
            self._start(runner)
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
        self._look_after_pairs()
        line = self._status_line()
        if line != self._last_status:
            self._last_status = line
            self.notifier.status(line)
        if self.watchdog_s is not None and not self._unrestartable():
            self.notifier.watchdog()

    # -- restarting a pair that stopped making progress ------------------------------------

    def _look_after_pairs(self) -> None:
        for name, runner in list(self.runners.items()):
            restart = self._restarts.get(name)
            if restart is None:
                if (reason := stall_reason(runner)) is not None:
                    self._begin_restart(name, runner, reason)
            elif restart.finished:
                del self._restarts[name]

    def _begin_restart(self, name: str, runner: PairRunner, reason: str) -> None:
        if time.monotonic() - self._started_at.get(name, 0.0) >= STABLE_RUN_S:
            self._restart_level[name] = 0
        level = self._restart_level[name]
        self._restart_level[name] = level + 1
        delay = min(MAX_RESTART_DELAY_S, FIRST_RESTART_DELAY_S * 2**level)
        log.warning("%s: %s; restarting the pair (its thread and its buses)", name, reason)
        restart = PairRestart(runner, reason, delay, self._install)
        self._restarts[name] = restart
        restart.start()

    def _install(self, old: PairRunner, reason: str) -> None:
        """Put a fresh runner in ``old``'s place and start it (from the restart's thread)."""
        with self._runners_lock:
            if self._stopping:
                return
            fresh = old.successor()
            self.runners[old.config.name] = fresh
            self._start(fresh)
        log.info(
            "%s: restarted after %s (%d restarts so far)", old.config.name, reason, fresh.restarts
        )

    def _start(self, runner: PairRunner) -> None:
        self._started_at[runner.config.name] = time.monotonic()
        runner.start()

    def _unrestartable(self) -> bool:
        """True while a pair could not be restarted: then the watchdog must fire."""
        stuck = [restart for restart in self._restarts.values() if restart.stuck]
        for restart in stuck:
            if not restart.reported:
                restart.reported = True
                log.error(
                    "%s cannot be restarted: its thread still holds on %.0f s after its buses "
                    "were closed; %s",
                    restart.old.config.name,
                    RELEASE_TIMEOUT_S,
                    "withholding the watchdog ping, so systemd restarts so101d"
                    if self.watchdog_s is not None
                    else "restart so101d (systemctl restart lerobot)",
                )
        return bool(stuck)

    def _shutdown(self) -> None:
        self.notifier.stopping()
        self.calibration.abort_all("the daemon is stopping", resume=False)
        with self._runners_lock:
            self._stopping = True
        for restart in self._restarts.values():
            restart.cancel()
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
        frame = _frame(str(params.get("frame", "raw")))
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started, 1),
            "config": str(self.config.path),
            "pairs": {name: runner.snapshot(frame) for name, runner in self.runners.items()},
            "calibration": self.calibration.summary(),
        }

    def _calibration_files(self, params: dict[str, Any]) -> dict[str, Any]:
        """Per pair and arm, the calibration file's state (read-only; for the dashboard)."""
        return {
            name: {
                str(arm.role): arm_file_state(self.config.calibration_dir, arm) for arm in r.arms
            }
            for name, r in self.runners.items()
        }

    def _pause(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._runners_lock:
            chosen = self._chosen(params)
            self.calibration.refuse_if_held([r.config.name for r in chosen], "pause")
            for runner in chosen:
                runner.pause()
        return {"paused": [r.config.name for r in chosen]}

    def _resume(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._runners_lock:
            chosen = self._chosen(params)
            self.calibration.refuse_if_held([r.config.name for r in chosen], "resume")
            return {"pairs": {r.config.name: r.resume() for r in chosen}}

    def _estop(self, params: dict[str, Any]) -> dict[str, Any]:
        """Torque off on every follower from this thread, read back before the reply.

        The runners are copied under the lock, and released outside it: a restart that
        swaps a runner meanwhile shares its gate, so the e-stop stays latched."""
        with self._runners_lock:
            runners = dict(self.runners)
        log.warning("emergency stop requested: every follower's torque goes off")
        self.calibration.abort_all("emergency stop", resume=False)
        states = {name: runner.state for name, runner in runners.items()}
        released = {name: runner.emergency_stop() for name, runner in runners.items()}
        for name, release in released.items():
            level = logging.WARNING if release.ok else logging.ERROR
            log.log(
                level, "%s: emergency stop while %s: %s", name, states[name], release.describe()
            )
        return {
            "stopped": list(runners),
            "pairs": {name: release.as_dict() for name, release in released.items()},
        }

    def _chosen(self, params: dict[str, Any]) -> list[PairRunner]:
        name = params.get("pair")
        if name is None:
            return list(self.runners.values())
        if name not in self.runners:
            raise ApiError(f"no pair named {name!r}; pairs: {', '.join(self.runners)}")
        return [self.runners[name]]


def _frame(name: str) -> Frame:
    try:
        return Frame(name)
    except ValueError:
        known = ", ".join(frame.value for frame in Frame)
        raise ApiError(f"unknown frame {name!r}; frames: {known}") from None


def stall_reason(runner: PairRunner) -> str | None:
    """Why ``runner`` needs restarting (its thread ended, or shows no progress), or None."""
    if not runner.is_alive():
        return f"its thread ended ({runner.state}: {runner.reason})"
    age = runner.heartbeat_age()
    if age > runner.config.stall_timeout_s:
        return f"no progress for {age:.1f} s while {runner.state} ({runner.reason})"
    return None


class PairRestart:
    """Replacing one stalled runner, in a thread of its own so the main loop never waits.

    The runner is asked to stop (its stop policy applies if it can); after ``grace_s`` its
    buses are closed under it, and it must be gone within ``release_s`` more. Only then,
    after ``delay_s``, does ``install(old, reason)`` start a fresh runner, so two threads
    never drive one pair. :attr:`stuck` turns True when the old runner would not let go.
    """

    def __init__(
        self,
        old: PairRunner,
        reason: str,
        delay_s: float,
        install: Callable[[PairRunner, str], None],
        *,
        grace_s: float = STALL_GRACE_S,
        release_s: float = RELEASE_TIMEOUT_S,
    ) -> None:
        self.old, self.reason = old, reason
        self.reported = False  # the supervisor said it is stuck
        self._delay_s, self._install = delay_s, install
        self._grace_s, self._release_s = grace_s, release_s
        self._deadline = time.monotonic() + grace_s + release_s
        self._released = threading.Event()
        self._cancelled = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"restart-{old.config.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        """Do not start a fresh runner (the daemon is stopping)."""
        self._cancelled.set()

    @property
    def finished(self) -> bool:
        return not self._thread.is_alive()

    @property
    def stuck(self) -> bool:
        return not self._released.is_set() and time.monotonic() > self._deadline

    def _run(self) -> None:
        old = self.old
        old.stop(f"restarting: {self.reason}")
        old.join(self._grace_s)
        if old.is_alive():
            log.warning(
                "%s: still stuck after %.0f s; closing its buses under it",
                old.config.name,
                self._grace_s,
            )
            old.abandon()  # waits for a transaction already on the wire
            old.join(max(0.0, self._deadline - time.monotonic()))
        if old.is_alive():
            return
        self._released.set()
        if not self._cancelled.wait(self._delay_s):
            self._install(old, self.reason)


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
