"""Benchmark: how late the simulator's replies are, with the simulator in the test process or
in its own, idle or beside CPU hogs.

    .venv/bin/python -m tests.benchmarks.sim_timing [--load N] [--usb ch343|none]

A client in its own process runs a 100 Hz teleop-like cycle (leader sync read, follower sync
write) with so101d's driver and records each sync read's round trip. ``in-process``: the
virtual pair lives here, beside a thread that polls it the way the daemon tests do;
``own process``: ``so101d sim``. ``--load N`` starts N busy loops for the run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from so101d.sim import Fidelity, UsbLatency, VirtualPair
from tests.waiting import wait_for

CYCLES = 1500
CLIENT = """
import json, sys, time
from so101d.feetech import FeetechBus, BusTimeout
ids = [1, 2, 3, 4, 5, 6]
times, timeouts = [], 0
with FeetechBus(sys.argv[1]) as leader, FeetechBus(sys.argv[2]) as follower:
    follower.sync_write("Torque_Enable", dict.fromkeys(ids, 0))
    next_at = time.monotonic()
    for _ in range(int(sys.argv[3])):
        start = time.perf_counter()
        try:
            positions = leader.sync_read("Present_Position", ids)
        except BusTimeout:
            timeouts += 1
            continue
        times.append(time.perf_counter() - start)
        follower.sync_write("Return_Delay_Time", dict.fromkeys(ids, 0))
        next_at += 0.01
        time.sleep(max(next_at - time.monotonic(), 0))
print("@@ " + json.dumps({"times": times, "timeouts": timeouts}))
"""


def run_client(leader: str, follower: str) -> tuple[list[float], int]:
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, leader, follower, str(CYCLES)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("@@ "))
    result = json.loads(line[3:])
    return result["times"], result["timeouts"]


def in_process(root: Path, usb: UsbLatency) -> tuple[list[float], int]:
    pair = VirtualPair(root / "l", root / "f", fidelity=Fidelity(usb=usb))
    stop = threading.Event()

    def poll_like_a_test() -> None:
        while not stop.is_set():
            pair.follower.joint_angles()
            pair.leader.joint_angles()
            time.sleep(0.01)

    with pair:
        poller = threading.Thread(target=poll_like_a_test, daemon=True)
        poller.start()
        try:
            return run_client(pair.leader.link, pair.follower.link)
        finally:
            stop.set()
            poller.join()


def own_process(root: Path, usb: str) -> tuple[list[float], int]:
    leader, follower = root / "l2", root / "f2"
    links = ["--leader", str(leader), "--follower", str(follower)]
    sim = subprocess.Popen(
        [sys.executable, "-m", "so101d", "sim", *links, "--usb-latency", usb],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: leader.is_symlink() and follower.is_symlink(), timeout=30)
        return run_client(str(leader), str(follower))
    finally:
        sim.terminate()
        sim.wait(timeout=30)


def summary(name: str, times: list[float], timeouts: int) -> str:
    ms = sorted(t * 1000 for t in times)
    p99 = ms[int(len(ms) * 0.99)]
    late = sum(t > 25 for t in ms)
    return (
        f"{name:<12} sync read round trip: median {statistics.median(ms):.2f} ms, "
        f"p99 {p99:.2f} ms, max {ms[-1]:.1f} ms, over 25 ms: {late}, timeouts: {timeouts}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--load", type=int, default=0, help="busy loops to run meanwhile")
    parser.add_argument("--usb", default="ch343", help="the simulator's USB latency model")
    args = parser.parse_args()
    hogs = [  # time-limited, in case this process dies without killing them
        subprocess.Popen(["timeout", "120", "sh", "-c", "while :; do :; done"])
        for _ in range(args.load)
    ]
    try:
        with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
            root = Path(tmp)
            print(summary("in-process", *in_process(root, UsbLatency.parse(args.usb))))
            print(summary("own process", *own_process(root, args.usb)))
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


if __name__ == "__main__":
    main()
