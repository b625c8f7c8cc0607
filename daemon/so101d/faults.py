"""Why a pair left (or could not reach) teleop, and what clears it.

A transient fault is retried after a capped exponential backoff. A latched fault waits for
the one thing that can fix it; its reason tells the person what to do.
"""

from __future__ import annotations

import enum


class Latch(enum.StrEnum):
    CALIBRATION = "calibration"  # cleared when a calibration file changes
    DEVICES = "devices"  # cleared when a board is unplugged/replugged (or by resume)
    COOLING = "cooling"  # cleared when the follower has cooled down (or by resume)
    OPERATOR = "operator"  # cleared only by `so101d resume`


class PairFault(Exception):
    """A reason to stop the pair. ``latch`` is None for transient faults."""

    def __init__(self, reason: str, latch: Latch | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.latch = latch

    @property
    def latched(self) -> bool:
        return self.latch is not None


class SafetyFault(PairFault):
    """A fault of the follower itself (heat, supply, overload, error bits): whatever the stop
    policy, the follower's torque goes off."""
