"""The loop's cycle statistics: a sliding window whose percentiles are kept as it slides."""

from __future__ import annotations

import math
import random

from so101d.teleop import CycleStats

WINDOW = 50


def test_the_percentiles_are_those_of_the_last_window_of_cycles() -> None:
    rng = random.Random(3)
    # Whole tenths of a millisecond: many equal durations, each evicted exactly once.
    durations = [rng.randint(1, 40) / 10_000 for _ in range(500)]
    stats = CycleStats(window=WINDOW)
    for i, duration in enumerate(durations):
        stats.record(i * 0.01, duration)
        window = sorted(durations[max(0, i + 1 - WINDOW) : i + 1])
        snapshot = stats.snapshot()
        p99 = window[min(len(window) - 1, math.floor(0.99 * len(window)))]
        assert snapshot["cycle_p50_ms"] == round(window[len(window) // 2] * 1000, 3)
        assert snapshot["cycle_p99_ms"] == round(p99 * 1000, 3)
    assert snapshot["cycles"] == 500
    assert snapshot["rate_hz"] == 100.0
