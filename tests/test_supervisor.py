"""Replacing a pair runner that stopped making progress (the supervisor's PairRestart).

The runner here is a thread blocked the way a stalled pair is: in a call that returns only
when the runner is asked to stop, when its buses are closed under it, or never.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from so101d.config import parse_config
from so101d.pair import PairRunner
from so101d.supervisor import PairRestart
from tests.waiting import wait_for


class BlockedRunner(threading.Thread):
    """Blocked until ``lets_go_on`` happens: "stop", "abandon" (its buses closed), "never"."""

    def __init__(self, lets_go_on: str, teardown: threading.Event) -> None:
        super().__init__(daemon=True)
        self.config = SimpleNamespace(name="main")
        self.lets_go_on = lets_go_on
        self.stop_reasons: list[str] = []
        self.abandoned = False
        self._free = threading.Event()
        self._teardown = teardown

    def run(self) -> None:
        self._free.wait()

    def stop(self, reason: str = "daemon stopping") -> None:
        self.stop_reasons.append(reason)
        if self.lets_go_on == "stop":
            self._free.set()

    def abandon(self) -> None:
        self.abandoned = True
        if self.lets_go_on == "abandon":
            self._free.set()
        else:  # a close() behind a transaction that never returns
            self._teardown.wait()


@pytest.fixture
def teardown() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def restart_of(
    runner: BlockedRunner, delay_s: float = 0.0
) -> tuple[PairRestart, list[tuple[Any, str]]]:
    installed: list[tuple[Any, str]] = []
    runner.start()
    restart = PairRestart(
        runner,  # type: ignore[arg-type]
        "no progress for 6.0 s while teleop",
        delay_s,
        lambda old, reason: installed.append((old, reason)),
        grace_s=0.05,
        release_s=0.5,
    )
    restart.start()
    return restart, installed


@pytest.mark.parametrize("lets_go_on", ["stop", "abandon"])
def test_a_stalled_runner_is_replaced_once_it_has_let_go(
    teardown: threading.Event, lets_go_on: str
) -> None:
    runner = BlockedRunner(lets_go_on, teardown)
    restart, installed = restart_of(runner)
    wait_for(lambda: restart.finished)
    assert installed == [(runner, "no progress for 6.0 s while teleop")]
    assert not runner.is_alive() and not restart.stuck
    assert runner.stop_reasons[0] == "restarting: no progress for 6.0 s while teleop"
    assert runner.abandoned == (lets_go_on == "abandon")  # buses closed only when needed


def test_a_runner_that_never_lets_go_is_stuck_and_never_replaced(
    teardown: threading.Event,
) -> None:
    runner = BlockedRunner("never", teardown)
    restart, installed = restart_of(runner)
    wait_for(lambda: restart.stuck, timeout=10)
    assert runner.abandoned and runner.is_alive()
    assert installed == []  # two threads must never drive one pair
    teardown.set()


def test_a_cancelled_restart_starts_no_runner(teardown: threading.Event) -> None:
    runner = BlockedRunner("stop", teardown)
    restart, installed = restart_of(runner, delay_s=30.0)
    wait_for(lambda: not runner.is_alive())
    restart.cancel()
    wait_for(lambda: restart.finished)
    assert installed == [] and not restart.stuck


# -- the fresh runner ---------------------------------------------------------------------


def test_the_fresh_runner_keeps_an_emergency_stop_in_force(tmp_path: Path) -> None:
    config = parse_config(
        f'[pair.main]\nleader.port = "{tmp_path / "l"}"\nleader.id = "l"\n'
        f'follower.port = "{tmp_path / "f"}"\nfollower.id = "f"\n',
        tmp_path / "config.toml",
    ).pairs["main"]
    stalled = PairRunner(config, tmp_path, heartbeat_s=0.01)
    stalled.emergency_stop()
    fresh = stalled.successor()
    assert fresh.restarts == stalled.restarts + 1
    fresh.start()
    try:
        wait_for(lambda: fresh.snapshot()["state"] == "paused")
        assert fresh.snapshot()["reason"].startswith("emergency stop")
    finally:
        fresh.stop()
        fresh.join(timeout=10)
