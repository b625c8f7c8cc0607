"""Benchmark: the daemon's teleop cycle p99 with no dashboard and with three live streams.

    .venv/bin/python -m tests.benchmarks.web_load [--seconds 30] [--clients 3] [--rounds 2]

One run: the real daemon mirrors a waving virtual pair (the simulator in this process), the
real ``so101d web`` beside it. ``--seconds`` with no client, then as long with ``--clients``
readers of ``/api/stream`` (in their own process, as browsers on other machines would be:
they parse every event), ``--rounds`` times in turn, so drift of a shared machine shows.
The daemon's cycle p99 is read from its status once per 10 s (its statistics window holds
the last 1000 cycles, 10 s at 100 Hz), printed per phase with the CPU of the daemon and of
the web process over each phase, and the web process's peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.benchmarks.daemon_cpu import _cpu_seconds
from tests.daemon_harness import Daemon, short_tmpdir, virtual_pair
from tests.web_harness import WebProcess, start_daemon_with_web, web_beside

WINDOW_S = 10.0
READERS = """
import http.client, json, sys, threading
port, cookie, clients = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def read():
    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.request("GET", "/api/stream", headers={"Cookie": cookie})
    response = connection.getresponse()
    assert response.status == 200, response.status
    for line in response:
        if line.startswith(b"data: "):
            json.loads(line[6:])
for _ in range(clients):
    threading.Thread(target=read, daemon=True).start()
sys.stdin.read()
"""


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def phase(daemon: Daemon, web: WebProcess, seconds: float) -> dict[str, float]:
    """The daemon's p99 per 10 s window and both processes' CPU (%) over ``seconds``."""
    pids = {"daemon": daemon.process.pid, "web": web.process.pid}
    before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    p99s = []
    for _ in range(max(1, round(seconds / WINDOW_S))):
        time.sleep(WINDOW_S)
        p99s.append(daemon.pair()["cycle_p99_ms"])
    elapsed = time.monotonic() - started
    cpu = {f"{n}_cpu_pct": 100 * (_cpu_seconds(p) - before[n]) / elapsed for n, p in pids.items()}
    return {"p99_median_ms": statistics.median(p99s), "p99_max_ms": max(p99s), **cpu}


def main(seconds: float, clients: int, rounds: int) -> None:
    with short_tmpdir() as work, virtual_pair(work, "main", "so101", seed=1) as pair:
        pair.leader.set_motion("wave")
        daemon, port = start_daemon_with_web(work, pair)
        try:
            daemon.wait_state("teleop")
            with web_beside(daemon, port) as web:
                time.sleep(WINDOW_S)  # the statistics window fills with teleop cycles
                results: list[tuple[str, dict[str, float]]] = []
                for _ in range(rounds):
                    results.append(("none", phase(daemon, web, seconds)))
                    readers = subprocess.Popen(
                        [sys.executable, "-c", READERS, str(port), web.cookie, str(clients)],
                        stdin=subprocess.PIPE,
                    )
                    try:
                        results.append((f"{clients} streams", phase(daemon, web, seconds)))
                    finally:
                        readers.kill()
                        readers.wait()
                rss = peak_rss_mb(web.process.pid)
        finally:
            daemon.close()
    print(f"{seconds:.0f} s per phase, {os.cpu_count()} cores")
    for name, result in results:
        print(
            f"{name:>10}: daemon cycle p99 {result['p99_median_ms']:.2f} ms median of windows "
            f"(max {result['p99_max_ms']:.2f}), daemon CPU {result['daemon_cpu_pct']:.1f} %, "
            f"web CPU {result['web_cpu_pct']:.1f} %"
        )
    medians = {
        name: statistics.median(r["p99_median_ms"] for n, r in results if n == name)
        for name in dict(results)
    }
    none, loaded = medians.values()
    print(
        f"p99 with {clients} streams / without (medians over rounds): {loaded / none:.2f}; "
        f"web peak RSS {rss:.1f} MB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    arguments = parser.parse_args()
    main(arguments.seconds, arguments.clients, arguments.rounds)
