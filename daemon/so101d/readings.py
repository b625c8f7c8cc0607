"""What a pair last knew about its follower's readings, and how old that knowledge is.

Status shows a reading as current only while what took it is still running (the teleop
loop, or the cooling check of a cooling fault); otherwise it is the last known value, with
its age, so an unplugged or recovered follower never shows old numbers as if they were now.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from so101d.arm import Telemetry


@dataclass(frozen=True)
class Health:
    """Follower temperatures (and voltages, when read) by joint, taken at ``taken_at``."""

    source: str  # what read them: "teleop" or "cooling check"
    temperatures: Mapping[str, int]
    voltages: Mapping[str, float] = field(default_factory=dict)
    taken_at: float = field(default_factory=time.monotonic)  # the oldest reading's time

    def age_s(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.taken_at

    def hottest(self) -> tuple[str, int]:
        joint = max(self.temperatures, key=self.temperatures.__getitem__)
        return joint, self.temperatures[joint]

    def summary(self) -> str:
        """``35-41 °C, 12.0 V`` (median voltage), for the status and the stats line."""
        temps = self.temperatures.values()
        text = f"{min(temps)}-{max(temps)} °C"
        if self.voltages:
            volts = sorted(self.voltages.values())
            text += f", {volts[len(volts) // 2]:.1f} V"
        return text

    def as_dict(self, current: bool) -> dict[str, Any]:
        age = self.age_s()
        return {
            "current": current,
            "source": self.source,
            "age_s": round(age, 1),
            "read_at": clock_time(time.time() - age),
            "temperatures": dict(self.temperatures),
            "voltages": dict(self.voltages),
        }


@dataclass(frozen=True)
class CoolingCheck:
    """The latest reading of a cooling fault's check, and how many checks it has had."""

    fault_since: float  # the pair's ``since`` when the fault began: which fault it belongs to
    health: Health
    cooled: bool
    count: int


def from_telemetry(readings: Mapping[str, Telemetry]) -> Health | None:
    """The teleop loop's latest reading of each joint, dated by the oldest of them."""
    if not readings:
        return None
    return Health(
        "teleop",
        {joint: r.temperature_c for joint, r in readings.items()},
        {joint: r.voltage_v for joint, r in readings.items()},
        min(r.taken_at for r in readings.values()),
    )


def clock_time(timestamp: float) -> str:
    """``10:21:03`` (UTC, as the status's ``since``): a time that does not go stale."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%H:%M:%S")
