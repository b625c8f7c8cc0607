"""Benchmark: the automatic calibration over 20 virtual arms, leader and follower.

    .venv/bin/python -m tests.benchmarks.autocal [--seeds N]

Each arm runs on a virtual clock through the real driver and wire codec
(``tests.autocal_runs``). Prints per role the worst error of every joint's saved stops
against the arm's true stops (ticks), the time per joint (mean and worst, simulated
seconds), the whole arm's time, the peak temperature rise, and the joints not saved.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from so101d.calibration.model import JOINTS
from tests.autocal_runs import ArmResult, calibrate_virtual_arm


def table(role: str, results: list[ArmResult]) -> list[str]:
    lines = [f"{role}: {len(results)} arms", "joint           worst error  time mean  time max"]
    for joint in JOINTS:
        errors = [r.errors[joint] for r in results if joint in r.errors]
        times = [r.outcomes[joint].seconds for r in results]
        worst = f"{max(errors):>5} ticks" if errors else "  (full turn)"
        if joint == "wrist_roll":
            worst = "  (full turn)"
        lines.append(
            f"{joint:<14}  {worst:>11}  {statistics.mean(times):>7.1f} s  {max(times):>6.1f} s"
        )
    totals = [r.sim_seconds for r in results]
    lines.append(f"whole arm: mean {statistics.mean(totals):.1f} s, worst {max(totals):.1f} s")
    lines.append(f"peak temperature rise: {max(r.peak_rise_c for r in results)} °C")
    failed = [(r.arm_seed, j, why) for r in results for j, why in r.failed.items()]
    saved = sum(1 for r in results if not r.failed)
    lines.append(f"saved: {saved}/{len(results)} arms")
    lines += [f"  arm {seed}: {joint} not saved: {why}" for seed, joint, why in failed]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="arm seeds 0..N-1")
    args = parser.parse_args()
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as directory:
        for role in ("follower", "leader"):
            results = [
                calibrate_virtual_arm(Path(directory), role, seed) for seed in range(args.seeds)
            ]
            print("\n".join(table(role, results)), end="\n\n")
    print(f"wall time: {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
