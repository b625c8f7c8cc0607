"""Benchmark: CPU per teleop cycle of the real daemon, this tree against another checkout.

    .venv/bin/python -m tests.benchmarks.daemon_cpu [--other DIR] [--seconds 10] [--rate 100]

Each daemon (`python -m so101d run` with ``PYTHONPATH`` set to a checkout's ``daemon/``)
mirrors the same virtual pair, the simulator in this process; after teleop starts, its CPU
time (utime + stime from /proc) over ``--seconds`` is divided by the cycles it ran (its own
reported rate times the time). Rounds alternate between the checkouts; medians are printed.
``--other`` is typically a worktree of main before a change (`git worktree add /tmp/old main`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from so101d.api import ApiClient, ApiError
from so101d.sim import VirtualPair
from so101d.sim.calibration_files import save_matching_calibration

ROUNDS = 3
HERE = Path(__file__).resolve().parents[2]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_teleop(client: ApiClient, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.call("status")["pairs"]["main"]["state"] == "teleop":
                return
        except ApiError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the daemon never reached teleop")


def measure(source: Path, work: Path, seconds: float, rate: float) -> dict[str, float]:
    with VirtualPair(work / "leader", work / "follower") as pair:
        calibration = work / "calibration"
        save_matching_calibration(pair.leader, calibration, "main_leader")
        save_matching_calibration(pair.follower, calibration, "main_follower")
        config = work / "config.toml"
        config.write_text(
            f'calibration_dir = "{calibration}"\nsocket = "{work / "api.sock"}"\n'
            f'[pair.main]\nrate_hz = {rate}\nleader.port = "{pair.leader.link}"\n'
            f'leader.id = "main_leader"\nfollower.port = "{pair.follower.link}"\n'
            f'follower.id = "main_follower"\n'
        )
        env = dict(os.environ, PYTHONPATH=str(source / "daemon"))
        daemon = subprocess.Popen(
            [sys.executable, "-m", "so101d", "run", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client = ApiClient(work / "api.sock")
            _wait_teleop(client)
            time.sleep(1.0)  # past the engage ramp
            cpu0, t0 = _cpu_seconds(daemon.pid), time.monotonic()
            time.sleep(seconds)
            cpu1, t1 = _cpu_seconds(daemon.pid), time.monotonic()
            status = client.call("status")["pairs"]["main"]
        finally:
            daemon.terminate()
            daemon.wait(timeout=20)
    cycles = status["rate_hz"] * (t1 - t0)
    return {
        "cpu_us_per_cycle": (cpu1 - cpu0) / cycles * 1e6,
        "rate_hz": status["rate_hz"],
        "cycle_p50_ms": status["cycle_p50_ms"],
        "cycle_p99_ms": status["cycle_p99_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", type=Path, help="another checkout to compare against")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    sources = {"this tree": HERE} | ({"other": args.other.resolve()} if args.other else {})
    results: dict[str, list[dict[str, float]]] = {name: [] for name in sources}
    for _ in range(ROUNDS):
        for name, source in sources.items():
            with tempfile.TemporaryDirectory(prefix="so101d-bench-", dir="/tmp") as work:
                results[name].append(measure(source, Path(work), args.seconds, args.rate))
    print(f"daemon CPU per cycle at {args.rate:g} Hz, median of {ROUNDS} rounds")
    print(f"{'source':<12}{'CPU µs/cycle':>14}{'rate Hz':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for name, rounds in results.items():
        row = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        print(
            f"{name:<12}{row['cpu_us_per_cycle']:>14.0f}{row['rate_hz']:>10.1f}"
            f"{row['cycle_p50_ms']:>9.2f}{row['cycle_p99_ms']:>9.2f}"
        )


if __name__ == "__main__":
    main()
