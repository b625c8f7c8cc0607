"""Benchmark: one teleop bus cycle, import time and peak memory, so101d versus LeRobot.

    LEROBOT_PYTHON=.venv-lerobot/bin/python .venv/bin/python -m tests.benchmarks.cycle

A cycle is one leader sync read of the six positions plus one follower sync write of six
goals, on the simulator at 1 Mbaud (wire time included), through so101d's driver and then
through LeRobot's FeetechMotorsBus against the same virtual arms in the same run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from so101d.feetech import FeetechBus
from so101d.sim import VirtualPair

CYCLES = 2000
IDS = [1, 2, 3, 4, 5, 6]
SCRIPTS = Path(__file__).parent.parent / "lerobot_scripts"

IMPORT_PROBE = """
import resource, sys, time
start = time.perf_counter()
exec(sys.argv[1])
elapsed = time.perf_counter() - start
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def configure_like_lerobot(*ports: str) -> None:
    """Return_Delay_Time 0, as LeRobot's and so101d's arm setup write it (factory: 500 µs)."""
    for port in ports:
        with FeetechBus(port) as bus:
            bus.sync_write("Return_Delay_Time", dict.fromkeys(IDS, 0))


def so101d_cycles(leader_port: str, follower_port: str) -> list[float]:
    times = []
    with FeetechBus(leader_port) as leader, FeetechBus(follower_port) as follower:
        for _ in range(CYCLES):
            start = time.perf_counter()
            positions = leader.sync_read("Present_Position", IDS)
            follower.sync_write("Goal_Position", positions)
            times.append(time.perf_counter() - start)
    return times


def cycles_in_subprocess(command: list[str]) -> list[float]:
    """Run one side in its own process: it must not share the simulator's GIL."""
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("@@ "))
    times: list[float] = json.loads(line[3:])["times"]
    return times


def import_cost(python: str, statement: str) -> tuple[float, float]:
    """Seconds to run ``statement`` in a fresh interpreter, and its peak RSS in MB."""
    out = subprocess.run(
        [python, "-c", IMPORT_PROBE, statement], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), int(out[1]) / 1024


def summary(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p99 = ms[int(len(ms) * 0.99)]
    return f"median {statistics.median(ms):.3f} ms, p99 {p99:.3f} ms, n={len(ms)}"


def main() -> None:
    lerobot = os.environ["LEROBOT_PYTHON"]
    with (
        tempfile.TemporaryDirectory() as tmp,
        VirtualPair(f"{tmp}/leader", f"{tmp}/follower", motion="wave") as pair,
    ):
        ports = [pair.leader.link, pair.follower.link]
        configure_like_lerobot(*ports)
        ours = cycles_in_subprocess([sys.executable, "-m", "tests.benchmarks.cycle", *ports])
        theirs = cycles_in_subprocess(
            [lerobot, str(SCRIPTS / "bench_cycle.py"), *ports, str(CYCLES)]
        )
    print(f"cycle, so101d FeetechBus:       {summary(ours)}")
    print(f"cycle, LeRobot FeetechMotorsBus: {summary(theirs)}")
    for label, python, statement in (
        ("so101d.feetech", sys.executable, "import so101d.feetech"),
        ("so101d (cli, sim)", sys.executable, "import so101d.cli"),
        (
            "LeRobot FeetechMotorsBus",
            lerobot,
            "from lerobot.motors.feetech import FeetechMotorsBus",
        ),
    ):
        seconds, rss = import_cost(python, statement)
        print(f"import {label:<26} {seconds * 1000:7.0f} ms, peak RSS {rss:6.1f} MB")


if __name__ == "__main__":
    if len(sys.argv) == 3:  # the so101d side, run by main() in its own process
        print("@@ " + json.dumps({"times": so101d_cycles(sys.argv[1], sys.argv[2])}))
    else:
        main()
