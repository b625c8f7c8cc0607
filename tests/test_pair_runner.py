"""One pair's thread: bus trouble no check caught is a transient fault, not a crash; a
retry's identical precheck table is not logged again."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from so101d.config import parse_config
from so101d.feetech import BusTimeout
from so101d.pair import PairRunner
from so101d.precheck import FAIL, OK, Cell, Check, PrecheckReport
from tests.test_config import MINIMAL as CONFIG


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


def test_a_retry_that_finds_the_same_precheck_table_logs_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runner = PairRunner(parse_config(CONFIG, tmp_path / "config.toml").pairs["main"], tmp_path)
    late = Cell(FAIL, "late replies", "leader on /dev/so101_leader: late (transient)")
    report = PrecheckReport([Check("motors answer", late, Cell(OK, "6/6"))])
    with caplog.at_level(logging.INFO, "so101d.pair.main"):
        for _ in range(3):
            runner._log_precheck(report)
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("precheck: check ") for m in messages) == 1  # the table once
    assert messages[-2:] == [
        "precheck run 2: the same as the last table",
        "precheck run 3: the same as the last table",
    ]
