"""What became of a resumed pair: it reached teleop, or it faulted again (and why).

The daemon answers ``resume`` at once (the control socket never waits on a bus); the command
then follows each resumed pair's status until it settles, so the person learns the result:
teleop, or a latched fault. A transient fault is followed on, as the daemon retries it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from so101d.pair import CHECKING, NOT_RESUMED, RESUMED

Status = Callable[[], Mapping[str, Any]]  # the daemon's status reply: {"pairs": {...}}
POLL_S = 0.1


def settle(
    status: Status,
    outcomes: Mapping[str, Mapping[str, str]],
    before: Mapping[str, Mapping[str, Any]],
    wait_s: float,
) -> dict[str, dict[str, str]]:
    """Each pair's final outcome: resumed pairs are followed for up to ``wait_s``."""
    final = {name: dict(outcome) for name, outcome in outcomes.items()}
    pending = {name for name, o in outcomes.items() if o["outcome"] in (RESUMED, CHECKING)}
    deadline = time.monotonic() + wait_s
    while pending:
        pairs = status()["pairs"]
        for name in sorted(pending):
            if (result := _settled(pairs[name], before[name])) is not None:
                final[name] = result
                pending.discard(name)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    for name in pending:
        pair = status()["pairs"][name]
        if pair["state"] == "fault":  # a transient fault the daemon keeps retrying
            final[name] = {"outcome": NOT_RESUMED, "detail": f"still retrying: {pair['reason']}"}
        else:
            final[name] = {
                "outcome": outcomes[name]["outcome"],
                "detail": f"not settled yet: {pair['state']} ({pair['reason']})",
            }
    return final


def _settled(pair: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, str] | None:
    if pair["state"] == "teleop":
        return {"outcome": RESUMED, "detail": "teleop"}
    if pair["state"] == "fault" and pair["restarts"] > before["restarts"] and pair["latched"]:
        return {"outcome": NOT_RESUMED, "detail": pair["reason"]}  # transient ones are retried
    checked, checked_before = (p.get("cooling") or {"checks": 0} for p in (pair, before))
    if checked["checks"] > checked_before["checks"] and not checked.get("cooled"):
        return {"outcome": NOT_RESUMED, "detail": f"still too hot: {pair['reason']}"}
    if pair["state"] == "waiting" and not all(pair[r]["present"] for r in ("leader", "follower")):
        if before["state"] == "paused":  # the pause is lifted; the board is another matter
            return {"outcome": RESUMED, "detail": f"pause lifted, now {pair['reason']}"}
        return {"outcome": NOT_RESUMED, "detail": f"still missing: {pair['reason']}"}
    return None
