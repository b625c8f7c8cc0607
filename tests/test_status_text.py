"""``so101d status`` text: counts read right, old telemetry is marked old, retries say when."""

from __future__ import annotations

from typing import Any

from so101d.cli.status import format_status
from so101d.wording import counted


def status(**pair: Any) -> dict[str, Any]:
    base = {
        "state": "teleop",
        "reason": "mirroring the leader",
        "latched": None,
        "since": "2026-12-01T10:00:00+00:00",
        "restarts": 0,
        "leader": {"port": "/dev/so101_leader", "id": "l", "present": True},
        "follower": {"port": "/dev/so101_follower", "id": "f", "present": True},
        "rate_hz": 100.0,
        "cycle_p50_ms": 0.6,
        "cycle_p99_ms": 1.2,
        "errors": 0,
        "temperatures": {},
        "voltages": {},
        "telemetry": None,
    }
    return {
        "version": "0",
        "pid": 1,
        "uptime_s": 5.0,
        "config": "/etc/so101d/config.toml",
        "pairs": {"main": base | pair},
    }


TELEMETRY = {
    "source": "teleop",
    "age_s": 0.2,
    "read_at": "10:00:05",
    "temperatures": {"shoulder_pan": 35, "gripper": 41},
    "voltages": {"shoulder_pan": 12.0, "gripper": 12.1},
}


def test_counts_take_the_right_number() -> None:
    assert counted(1, "bus error") == "1 bus error"
    assert counted(0, "bus error") == "0 bus errors"
    assert "1.20 ms, 1 bus error\n" in format_status(status(errors=1)) + "\n"


def test_current_telemetry_carries_its_age() -> None:
    shown = format_status(status(telemetry=TELEMETRY | {"current": True}))
    assert "  follower 35-41 °C, 12.1 V (teleop, read at 10:00:05, 0.2 s ago)" in shown


def test_old_telemetry_is_never_shown_as_current() -> None:
    old = TELEMETRY | {"current": False, "age_s": 63.0}
    shown = format_status(status(state="waiting", telemetry=old))
    assert "  follower last known 35-41 °C, 12.1 V (read at 10:00:05, 63.0 s ago; not current)" in (
        shown
    )


def test_a_backoff_fault_shows_its_next_attempt() -> None:
    shown = format_status(status(state="fault", retry={"attempt": 3, "at": "10:00:09"}))
    assert "  retry    attempt 3 at 10:00:09" in shown
