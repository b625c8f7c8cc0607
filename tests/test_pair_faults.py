"""A pair thread turns bus trouble that no check caught into a transient fault, not a crash."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from so101d.config import parse_config
from so101d.feetech import BusTimeout
from so101d.pair import PairRunner

CONFIG = """
[pair.main]
leader.port = "/dev/so101_leader"
leader.id = "l"
follower.port = "/dev/so101_follower"
follower.id = "f"
"""


def test_a_bus_error_outside_the_checks_is_retried_not_an_internal_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = parse_config(CONFIG, tmp_path / "config.toml").pairs["main"]
    runner = PairRunner(config, tmp_path)
    sessions = []

    def session() -> None:  # a session whose bus times out once, e.g. while configuring
        sessions.append(runner.state)
        if len(sessions) == 1:
            raise BusTimeout("/dev/so101_follower", "no reply from motor(s) 2 within 25 ms")
        runner.stop()

    runner._session = session  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, "so101d.pair.main"):
        runner.run()
    assert len(sessions) == 2 and runner.restarts == 1  # retried after the backoff
    messages = [r.getMessage() for r in caplog.records]
    assert (
        "fault: bus error: port /dev/so101_follower: no reply from motor(s) 2 within 25 ms; "
        "retrying" in messages
    )
    assert "retry 1 in 0.5 s" in messages
    assert not any(r.exc_info for r in caplog.records)  # no traceback: not a bug
