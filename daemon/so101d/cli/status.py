"""``so101d status``, ``pause``, ``resume`` and ``estop``: talking to the running daemon."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from so101d.api import ApiClient, ApiError, DaemonNotRunning
from so101d.cli.config import add_config_option
from so101d.config import ConfigError, load_config

DEFAULT_SOCKET = Path("/run/so101d/api.sock")
EXIT_NOT_RUNNING = 3  # as `systemctl status` for a stopped unit

Parsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def register(subparsers: Parsers) -> None:
    status = _add(subparsers, "status", "show each pair's state, rates, temperatures and faults")
    status.add_argument("--json", action="store_true", help="print the daemon's JSON reply")
    status.set_defaults(handler=show_status)
    for name, help_text in (
        ("pause", "stop teleop on a pair (stop policy applies)"),
        ("resume", "resume a paused pair or clear a latched fault"),
    ):
        parser = _add(subparsers, name, help_text)
        parser.add_argument("pair", nargs="?", help="pair name (default: every pair)")
        parser.set_defaults(handler=_command(name))
    estop = _add(subparsers, "estop", "emergency stop: every follower's torque off, latched")
    estop.set_defaults(handler=emergency_stop)


def _add(subparsers: Parsers, name: str, help_text: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text)
    add_config_option(parser)
    parser.add_argument("--socket", help="control socket (default: from the config)")
    return parser


def socket_path(args: argparse.Namespace) -> Path:
    if args.socket:
        return Path(args.socket)
    try:
        return load_config(args.config).socket
    except ConfigError:
        return DEFAULT_SOCKET


def ask_daemon(args: argparse.Namespace, method: str, **params: Any) -> tuple[int, Any]:
    """The daemon's reply as ``(0, result)``, or an exit code after printing why not."""
    try:
        return 0, ApiClient(socket_path(args)).call(method, **params)
    except DaemonNotRunning as exc:
        print(exc, file=sys.stderr)
        return EXIT_NOT_RUNNING, None
    except ApiError as exc:
        print(f"so101d {method}: {exc}", file=sys.stderr)
        return 1, None


def show_status(args: argparse.Namespace) -> int:
    code, status = ask_daemon(args, "status")
    if code == 0:
        print(json.dumps(status, indent=2) if args.json else format_status(status))
    return code


def _command(method: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        params = {"pair": args.pair} if getattr(args, "pair", None) else {}
        code, result = ask_daemon(args, method, **params)
        for verb, pairs in (result or {}).items():
            print(f"{verb}: {', '.join(pairs) or 'no pairs'}")
        return code

    return handler


def emergency_stop(args: argparse.Namespace) -> int:
    """Exit 0 only when every follower read its torque back off."""
    code, result = ask_daemon(args, "estop")
    if code:
        return code
    released = result["pairs"]
    for name, release in released.items():
        print(f"{name}: {release['detail']}")
    print("latched: `so101d resume` to continue")
    return 0 if all(release["torque_off"] for release in released.values()) else 1


def format_status(status: dict[str, Any]) -> str:
    lines = [
        f"so101d {status['version']}, pid {status['pid']}, up {status['uptime_s']:.0f} s, "
        f"config {status['config']}"
    ]
    session = status.get("calibration")
    if session and session["step"] not in ("saved", "aborted"):
        lines.append(
            f"calibration session {session['session']}: pair {session['pair']}, "
            f"{session['arm']}, {session['step']} (`so101d calibrate` re-attaches)"
        )
    for name, pair in status["pairs"].items():
        latched = f" [latched: {pair['latched']}]" if pair.get("latched") else ""
        lines.append(f"\n{name}: {pair['state']} since {pair['since']}{latched}")
        lines.append(f"  {pair['reason']}")
        for role in ("leader", "follower"):
            arm = pair[role]
            present = "present" if arm["present"] else "absent"
            lines.append(f"  {role:<8} {arm['port']} (id {arm['id']}), {present}")
        if pair["state"] in ("engaging", "teleop", "resting"):
            lines.append(
                f"  loop     {pair['rate_hz']:.1f} Hz, cycle p50 {pair['cycle_p50_ms']:.2f}"
                f" ms, p99 {pair['cycle_p99_ms']:.2f} ms, {pair['errors']} bus errors"
            )
        lines.append(f"  restarts {pair['restarts']}")
        if pair["temperatures"]:
            temps = pair["temperatures"].values()
            volts = sorted(pair["voltages"].values())
            lines.append(f"  follower {min(temps)}-{max(temps)} °C, {volts[len(volts) // 2]:.1f} V")
    return "\n".join(lines)
