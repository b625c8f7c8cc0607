"""What `so101d resume` reports per pair, from the daemon's answer and the status after it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from so101d.pair import CHECKING, NOT_RESUMED, RESUMED
from so101d.resuming import settle


def pair(
    state: str, reason: str = "", restarts: int = 1, latched: str | None = None, **extra: Any
) -> dict[str, Any]:
    present = extra.pop("present", True)
    return {
        "state": state,
        "reason": reason,
        "restarts": restarts,
        "latched": latched,
        "leader": {"present": True},
        "follower": {"present": present},
        **extra,
    }


def statuses(*pairs: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The daemon's status replies in turn; the last one repeats."""
    for state in pairs:
        yield {"pairs": {"main": state}}
    while True:
        yield {"pairs": {"main": pairs[-1]}}


def outcome(before: Mapping[str, Any], answer: dict[str, str], *after: Mapping[str, Any]):  # type: ignore[no-untyped-def]
    replies = statuses(*after)
    return settle(lambda: next(replies), {"main": answer}, {"main": before}, 5.0)["main"]


def test_a_paused_pair_that_reaches_teleop_resumed() -> None:
    result = outcome(
        pair("paused"),
        {"outcome": RESUMED, "detail": "was paused: paused by request"},
        pair("prechecking"),
        pair("teleop"),
    )
    assert result == {"outcome": RESUMED, "detail": "teleop"}


def test_a_fault_that_comes_back_is_not_resumed_and_says_why() -> None:
    missing = "follower motor(s) 3 (elbow_flex) do not answer"
    result = outcome(
        pair("fault", missing, latched="devices"),
        {"outcome": RESUMED, "detail": "retrying now"},
        pair("prechecking", restarts=1),
        pair("fault", missing, restarts=2, latched="devices"),
    )
    assert result == {"outcome": NOT_RESUMED, "detail": missing}


def test_a_transient_fault_on_the_way_is_followed_through_to_teleop() -> None:
    late = "follower: register I_Coefficient: no reply within 25 ms"
    result = outcome(
        pair("fault", "missing", latched="devices"),
        {"outcome": RESUMED, "detail": "retrying now"},
        pair("fault", late, restarts=2),  # the daemon retries it after its backoff
        pair("teleop", restarts=2),
    )
    assert result == {"outcome": RESUMED, "detail": "teleop"}


def test_a_transient_fault_that_lasts_the_whole_wait_is_not_a_resume() -> None:
    late = "follower: register I_Coefficient: no reply within 25 ms"
    replies = statuses(pair("fault", late, restarts=2))
    answer = {"outcome": RESUMED, "detail": "retrying now"}
    result = settle(lambda: next(replies), {"main": answer}, {"main": pair("fault")}, 0.0)
    assert result["main"] == {"outcome": NOT_RESUMED, "detail": f"still retrying: {late}"}


def test_cooling_still_too_hot_after_the_check() -> None:
    hot = "follower shoulder_lift now at 58 °C (read 10:00:01), resumes below 50 °C"
    result = outcome(
        pair("fault", "tripped", cooling={"checks": 1, "cooled": False}),
        {"outcome": CHECKING, "detail": "cooling: ...; checking now"},
        pair("fault", hot, cooling={"checks": 2, "cooled": False}),
    )
    assert result == {"outcome": NOT_RESUMED, "detail": f"still too hot: {hot}"}


def test_lifting_a_pause_while_a_board_is_missing_is_a_resume() -> None:
    waiting = "waiting for /dev/so101_follower"
    result = outcome(
        pair("paused", "emergency stop"),
        {"outcome": RESUMED, "detail": "was paused: emergency stop"},
        pair("waiting", waiting, present=False),
    )
    assert result == {"outcome": RESUMED, "detail": f"pause lifted, now {waiting}"}


def test_a_pair_not_resumed_by_the_daemon_is_not_followed() -> None:
    answer = {"outcome": NOT_RESUMED, "detail": "still missing: /dev/so101_follower"}
    assert outcome(pair("waiting", present=False), answer, pair("waiting")) == answer
