"""The web process's access rules on a fake clock: the token file, the backoff after wrong
tokens, the log once per interval, and the address ``so101d web-url`` prints."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from so101d.web.auth import (
    FAILURE_LOG_INTERVAL_S,
    FREE_FAILURES,
    MAX_BACKOFF_S,
    Gate,
    TokenError,
    ensure_token,
    read_token,
    web_url,
)

TOKEN = "t" * 43


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_file_is_made_once_with_mode_0640_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "web-token"
    previous = os.umask(0)
    try:
        token = ensure_token(path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert len(token) >= 40 and path.read_text() == token + "\n"
    assert ensure_token(path) == token == read_token(path)  # kept, not replaced


def test_a_missing_or_short_token_file_is_a_message_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "web-token"
    with pytest.raises(TokenError, match=f"no web token at {path}.*install.sh"):
        read_token(path)
    path.write_text("short\n")
    with pytest.raises(TokenError, match="too short; delete the file"):
        read_token(path)
    with pytest.raises(TokenError, match="cannot create the web token"):
        ensure_token(tmp_path / "no" / "such" / "dir" / "web-token")


def test_the_gate_compares_the_whole_token() -> None:
    gate = Gate(TOKEN)
    assert gate.valid(TOKEN)
    for wrong in (None, "", TOKEN[:-1], TOKEN + "t", "T" * 43):
        assert not gate.valid(wrong)


def test_wrong_tokens_back_off_per_address_doubling_up_to_the_limit() -> None:
    clock = FakeClock()
    gate = Gate(TOKEN, clock)
    for _ in range(FREE_FAILURES):
        gate.failed("10.0.0.9")
    assert gate.retry_after("10.0.0.9") == 0
    waits = []
    for _ in range(10):
        gate.failed("10.0.0.9")
        waits.append(gate.retry_after("10.0.0.9"))
        clock.now += waits[-1]
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0]
    assert waits[-1] == MAX_BACKOFF_S
    assert gate.retry_after("10.0.0.10") == 0  # another address is not slowed
    gate.failed("10.0.0.9")
    gate.succeeded("10.0.0.9")
    assert gate.retry_after("10.0.0.9") == 0


def test_failures_are_logged_once_per_interval_with_their_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    gate = Gate(TOKEN, clock)
    with caplog.at_level(logging.WARNING, logger="so101d.web"):
        for _ in range(5):
            gate.failed("10.0.0.9")
        clock.now += FAILURE_LOG_INTERVAL_S
        gate.failed("10.0.0.8")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "web: 1 request(s) with a wrong token since the last report (latest from 10.0.0.9)",
        "web: 5 request(s) with a wrong token since the last report (latest from 10.0.0.8)",
    ]


def test_the_url_uses_the_hosts_mdns_name() -> None:
    assert web_url("raspberrypi", 8101, TOKEN) == f"http://raspberrypi.local:8101/?token={TOKEN}"
    assert web_url("pi.local", 80, TOKEN) == f"http://pi.local:80/?token={TOKEN}"
