"""Stall detection for the automatic calibration: a joint pushed against something.

A joint has stalled when its position no longer advances while its goal is ahead of it,
confirmed over consecutive samples, with the servo's current or load well above the joint's
own baseline (measured first, holding still: a gravity joint holds part of the arm's weight
before it moves). Positions are continuous encoder ticks; ``direction`` is +1 or -1.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StallRule:
    lead_ticks: float = 30.0  # the goal at least this far ahead of the position
    advance_ticks: float = 2.0  # less than this per sample counts as not advancing
    confirm_samples: int = 3  # consecutive samples
    load_rise: float = 0.25  # of the headroom between the baseline load and the torque limit
    min_load_rise: float = 40.0  # Present_Load units (0.1 %), at least
    current_rise_ma: float = 100.0


@dataclass(frozen=True)
class Baseline:
    """A joint's effort while it holds still: |Present_Load| (0.1 %) and current (mA)."""

    load: float
    current_ma: float

    @classmethod
    def of(cls, loads: list[int], currents_ma: list[float]) -> Baseline:
        return cls(
            sum(abs(load) for load in loads) / len(loads), sum(currents_ma) / len(currents_ma)
        )


class StallDetector:
    """Fed one sample at a time; True once the stall is confirmed."""

    def __init__(
        self, direction: int, baseline: Baseline, torque_limit: int, rule: StallRule
    ) -> None:
        self.direction, self.rule = direction, rule
        rise = max(rule.min_load_rise, rule.load_rise * (torque_limit - baseline.load))
        self.load_threshold = min(baseline.load + rise, 0.9 * torque_limit)
        self.current_threshold_ma = baseline.current_ma + rule.current_rise_ma
        self._last: float | None = None
        self._count = 0

    def update(self, position: float, goal: float, load: int, current_ma: float) -> bool:
        advanced = 0.0 if self._last is None else self.direction * (position - self._last)
        self._last = position
        pushing = abs(load) >= self.load_threshold or current_ma >= self.current_threshold_ma
        held = (
            self.direction * (goal - position) >= self.rule.lead_ticks
            and advanced < self.rule.advance_ticks
            and pushing
        )
        self._count = self._count + 1 if held else 0
        return self._count >= self.rule.confirm_samples
