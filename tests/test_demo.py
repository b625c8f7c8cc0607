"""``so101d demo``: its verdict names the check that failed and its limit."""

from __future__ import annotations

import io
import re

import pytest

from so101d.demo import TRACKING_TOLERANCE_DEG, _verdict
from tests.commands import so101d


def verdict(worst: float | None, code: int) -> tuple[int, str]:
    out = io.StringIO()
    return _verdict(worst, code, out), out.getvalue()


def test_tracking_within_the_limit_passes() -> None:
    code, text = verdict(3.2, 0)
    assert code == 0
    assert f"within 3.2° of the moving leader (limit {TRACKING_TOLERANCE_DEG:g}°)" in text
    assert text.endswith("OK: the follower mirrored the leader\n")


def test_tracking_beyond_the_limit_fails_saying_so() -> None:
    code, text = verdict(9.7, 0)
    assert code == 1
    assert (
        f"FAIL: tracking: the follower lagged 9.7° behind the leader, more than the "
        f"{TRACKING_TOLERANCE_DEG:g}° limit" in text
    )


@pytest.mark.parametrize(
    ("worst", "code", "failure"),
    [
        (None, 0, "FAIL: teleop: the pair never reached teleop"),
        (2.0, 1, "FAIL: daemon: so101d run stopped with exit code 1, expected 0"),
    ],
)
def test_every_failure_is_named(worst: float | None, code: int, failure: str) -> None:
    result, text = verdict(worst, code)
    assert result == 1 and failure in text


def test_the_demo_exits_non_zero_only_with_a_failed_check_named() -> None:
    result = so101d("demo", "--seconds", "4")
    failures = re.findall(r"^FAIL: .*$", result.stdout, re.MULTILINE)
    if result.returncode == 0:
        assert not failures and "OK: the follower mirrored the leader" in result.stdout
    else:
        assert result.returncode == 1 and failures, result.stdout[-2000:]
