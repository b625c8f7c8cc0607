"""``so101d demo``: the real daemon on a virtual pair, with a live status view.

The demo hosts the virtual arms itself and runs ``so101d run`` as a subprocess on a config
made for them, exactly as systemd would run it on a Pi, then watches it over the control
socket while the virtual leader waves.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from so101d.api import ApiClient, ApiError
from so101d.sim import JOINTS, VirtualArm, VirtualPair
from so101d.sim.calibration_files import calibrate_like_lerobot

CONFIG = """\
calibration_dir = "{root}/calibration"
socket = "{root}/api.sock"
stats_interval_s = 2.0

[pair.demo]
leader.port = "{root}/so101_leader"
leader.id = "demo_leader"
follower.port = "{root}/so101_follower"
follower.id = "demo_follower"
"""
TRACKING_TOLERANCE_DEG = 8.0


def run_demo(seconds: float, out: IO[str]) -> int:
    """Run for ``seconds``; 0 if the follower mirrored the leader, 1 otherwise."""
    with tempfile.TemporaryDirectory(prefix="so101d-demo-", dir="/tmp") as tmp:
        root = Path(tmp)
        with VirtualPair(root / "so101_leader", root / "so101_follower", motion="wave") as pair:
            config = _prepare(root, pair)
            out.write(
                f"virtual leader   {pair.leader.link} (5 V, moved by a scripted hand)\n"
                f"virtual follower {pair.follower.link} (12 V)\n"
                f"daemon           so101d run --config {config}\n\n"
            )
            daemon = subprocess.Popen(
                [sys.executable, "-m", "so101d", "run", "--config", str(config)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            relay = threading.Thread(target=_relay, args=(daemon.stdout, out), daemon=True)
            relay.start()
            try:
                worst = _watch(ApiClient(root / "api.sock"), pair, seconds, out)
            finally:
                daemon.send_signal(signal.SIGTERM)
                code = daemon.wait(timeout=15)
                relay.join(timeout=5)
    return _verdict(worst, code, out)


def _prepare(root: Path, pair: VirtualPair) -> Path:
    calibrate_like_lerobot(pair.leader, root / "calibration", "demo_leader")
    calibrate_like_lerobot(pair.follower, root / "calibration", "demo_follower")
    config = root / "config.toml"
    config.write_text(CONFIG.format(root=root))
    return config


def _relay(stream: IO[str] | None, out: IO[str]) -> None:
    assert stream is not None
    for line in stream:
        out.write(f"  daemon | {line}")
        out.flush()


def _watch(client: ApiClient, pair: VirtualPair, seconds: float, out: IO[str]) -> float | None:
    """Print a status line twice a second; return the worst deviation seen in teleop."""
    start = time.monotonic()
    worst: float | None = None
    while (elapsed := time.monotonic() - start) < seconds:
        time.sleep(0.5)
        status = _status(client)
        deviation = _deviation(pair.leader, pair.follower)
        if status.get("state") == "teleop":
            worst = max(worst or 0.0, deviation)
        out.write(_status_line(elapsed, status, deviation))
        out.flush()
    return worst


def _status(client: ApiClient) -> dict[str, Any]:
    try:
        pair: dict[str, Any] = client.call("status")["pairs"]["demo"]
    except ApiError:
        return {"state": "starting", "reason": "daemon not answering yet"}
    return pair


def _status_line(elapsed: float, status: dict[str, Any], deviation: float) -> str:
    if status["state"] == "teleop":
        detail = (
            f"{status['rate_hz']:5.1f} Hz  p99 {status['cycle_p99_ms']:.2f} ms  "
            f"|follower - leader| {deviation:4.1f}°"
        )
    else:
        detail = status["reason"]
    return f"{elapsed:5.1f} s  {status['state']:<11} {detail}\n"


def _deviation(leader: VirtualArm, follower: VirtualArm) -> float:
    lead, follow = leader.joint_angles(), follower.joint_angles()
    return max(abs(lead[j] - follow[j]) for j in JOINTS[:5])


def _verdict(worst: float | None, code: int, out: IO[str]) -> int:
    """0 when the follower tracked and the daemon stopped cleanly; else 1, saying why."""
    failed = []
    if worst is None:
        failed.append("teleop: the pair never reached teleop; see the daemon's log above")
    else:
        out.write(
            f"\nThe follower stayed within {worst:.1f}° of the moving leader "
            f"(limit {TRACKING_TOLERANCE_DEG:g}°); the daemon stopped with exit code {code}.\n"
        )
        if worst > TRACKING_TOLERANCE_DEG:
            failed.append(
                f"tracking: the follower lagged {worst:.1f}° behind the leader, more than "
                f"the {TRACKING_TOLERANCE_DEG:g}° limit (a busy CPU slows the loop)"
            )
    if code != 0:
        failed.append(f"daemon: so101d run stopped with exit code {code}, expected 0")
    for failure in failed:
        out.write(f"FAIL: {failure}\n")
    if not failed:
        out.write("OK: the follower mirrored the leader\n")
    return 1 if failed else 0
