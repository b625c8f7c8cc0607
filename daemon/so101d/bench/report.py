"""The bench's results as text (a table per rate, ratios to LeRobot) and as a plot."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path

from so101d.bench import Measurement, Side

# (label, attribute, format); the ratio column divides a side's figure by LeRobot's.
ROWS = (
    ("CPU µs/cycle", "cpu_us_per_cycle", "{:.0f}"),
    ("syscalls/cycle", "syscalls_per_cycle", "{:.1f}"),
    ("cycle p50 ms", "cycle_p50_ms", "{:.2f}"),
    ("cycle p99 ms", "cycle_p99_ms", "{:.2f}"),
    ("cycle max ms", "cycle_max_ms", "{:.2f}"),
    ("rate held Hz", "rate_hz", "{:.1f}"),
    ("peak RSS MB", "peak_rss_mb", "{:.0f}"),
)
_LABEL = 16


def machine() -> str:
    """What the figures were measured on, and how loaded it was."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load}"


def table(
    results: Mapping[float, Mapping[str, Measurement]],
    sides: Sequence[Side],
    seconds: float,
    rounds: int,
) -> str:
    lerobot = next((side.name for side in sides if side.is_lerobot), None)
    ratios = [side.name for side in sides if lerobot and side.name != lerobot]
    head = [side.name for side in sides] + [f"{name} ÷ LeRobot" for name in ratios]
    width = max(12, *(len(h) + 2 for h in head))
    lines = [f"{seconds:g} s per run, median of {rounds} round(s); {machine()}"]
    for rate, by_side in results.items():
        title = "unthrottled" if rate == 0 else f"{rate:g} Hz"
        lines += ["", f"{title:<{_LABEL}}" + "".join(f"{h:>{width}}" for h in head)]
        for label, attribute, form in ROWS:
            values = [getattr(by_side[side.name], attribute) for side in sides]
            cells = [_cell(form, v) for v in values]
            if lerobot:
                base = getattr(by_side[lerobot], attribute)
                cells += [_ratio(getattr(by_side[n], attribute), base) for n in ratios]
            lines.append(f"{label:<{_LABEL}}" + "".join(f"{c:>{width}}" for c in cells))
    return "\n".join(lines)


def _cell(form: str, value: float | None) -> str:
    return "n/a" if value is None else form.format(value)


def _ratio(value: float | None, base: float | None) -> str:
    return "n/a" if value is None or not base else f"{value / base:.2f}"


def plot(results: Mapping[float, Mapping[str, Measurement]], path: Path) -> None:
    """Cycle-time distributions (one panel per rate, one curve per side) to ``path``.

    Needs matplotlib (the ``plot`` extra): ImportError otherwise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), squeeze=False)
    for ax, (rate, by_side) in zip(axes[0], results.items(), strict=True):
        for name, measured in by_side.items():
            ms = sorted(d * 1000 for d in measured.durations)
            share = [(i + 1) / len(ms) for i in range(len(ms))]
            ax.plot(ms, share, label=name)
        ax.set_xscale("log")
        ax.set_title("unthrottled" if rate == 0 else f"{rate:g} Hz")
        ax.set_xlabel("cycle time, ms (log)")
        ax.set_ylabel("share of cycles at most this long")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    figure.suptitle(f"so101d bench: cycle times ({machine()})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
