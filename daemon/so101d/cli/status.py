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
from so101d.config import DEFAULT_SOCKET_PATH, ConfigError, load_config, socket_despite_errors
from so101d.frames import Frame
from so101d.pair import NOT_RESUMED
from so101d.resuming import settle
from so101d.wording import counted

EXIT_NOT_RUNNING = 3  # as `systemctl status` for a stopped unit
# Commands that only read or stop still try the socket when the config has an error (an
# emergency stop must not wait for a config fix); `resume` could start motion, so it refuses.
_DESPITE_CONFIG_ERRORS = ("status", "pause", "estop")

Parsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def register(subparsers: Parsers) -> None:
    status = _add(subparsers, "status", "show each pair's state, rates, temperatures and faults")
    status.add_argument("--json", action="store_true", help="print the daemon's JSON reply")
    status.add_argument(
        "--frame",
        choices=[frame.value for frame in Frame],
        default=Frame.RAW.value,
        help="joint positions in this coordinate frame (see `so101d frames list`; default raw)",
    )
    status.set_defaults(handler=show_status)
    for name, help_text, handler in (
        ("pause", "stop teleop on a pair (stop policy applies)", _command("pause")),
        ("resume", "resume a paused pair or retry a fault; says per pair why not", resume),
    ):
        parser = _add(subparsers, name, help_text)
        parser.add_argument("pair", nargs="?", help="pair name (default: every pair)")
        parser.set_defaults(handler=handler)
    parser.add_argument(
        "--wait",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="follow each resumed pair this long to report how it ended (default: %(default)s)",
    )
    estop = _add(subparsers, "estop", "emergency stop: every follower's torque off, latched")
    estop.set_defaults(handler=emergency_stop)


def _add(subparsers: Parsers, name: str, help_text: str) -> argparse.ArgumentParser:
    description = f"{help_text[0].upper()}{help_text[1:]}, over the running daemon's socket."
    parser = subparsers.add_parser(name, help=help_text, description=description)
    add_config_option(parser)
    parser.add_argument(
        "--socket",
        type=Path,
        metavar="PATH",
        help="the daemon's control socket: reach it directly, without reading the config "
        "(default: the config's socket)",
    )
    return parser


def socket_path(args: argparse.Namespace, command: str) -> Path | None:
    """The socket to call: ``--socket``, else the config's. On a config error, say so with the
    socket it names (or the default, as a guess), and return that socket only for commands
    that merely read or stop (None for ``resume``, which could start motion)."""
    if args.socket:
        return Path(args.socket)
    try:
        return load_config(args.config).socket
    except ConfigError as exc:
        print(f"so101d {command}: {exc}", file=sys.stderr)
        named = socket_despite_errors(args.config)
        socket = named or DEFAULT_SOCKET_PATH
        where = (
            f"the config's control socket is {socket}"
            if named
            else f"the config's control socket cannot be read; the default is {socket}"
        )
        if command in _DESPITE_CONFIG_ERRORS:
            print(
                f"so101d {command}: {where}: trying it anyway "
                "(another one? --socket PATH reaches it directly)",
                file=sys.stderr,
            )
            return socket
        print(
            f"so101d {command}: {where}; fix the config (so101d config check), or reach "
            f"the daemon directly: so101d {command} --socket {socket}",
            file=sys.stderr,
        )
        return None


def ask_daemon(args: argparse.Namespace, method: str, **params: Any) -> tuple[int, Any]:
    """The daemon's reply as ``(0, result)``, or an exit code after printing why not."""
    socket = socket_path(args, method)
    if socket is None:
        return 1, None
    return _call(socket, method, **params)


def _call(socket: Path, method: str, **params: Any) -> tuple[int, Any]:
    try:
        return 0, ApiClient(socket).call(method, **params)
    except DaemonNotRunning as exc:
        print(exc, file=sys.stderr)
        return EXIT_NOT_RUNNING, None
    except ApiError as exc:
        print(f"so101d {method}: {exc}", file=sys.stderr)
        return 1, None


def show_status(args: argparse.Namespace) -> int:
    code, status = ask_daemon(args, "status", frame=args.frame)
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


def resume(args: argparse.Namespace) -> int:
    """Per pair: resumed (and into what), or why not; exit 1 when any pair did not resume."""
    socket = socket_path(args, "resume")
    if socket is None:
        return 1
    code, before = _call(socket, "status")
    if code == 0:
        params = {"pair": args.pair} if args.pair else {}
        code, result = _call(socket, "resume", **params)
    if code:
        return int(code)
    client = ApiClient(socket)
    final = settle(lambda: client.call("status"), result["pairs"], before["pairs"], args.wait)
    for name, outcome in final.items():
        print(f"{name}: {outcome['outcome']}: {outcome['detail']}")
    return 1 if any(o["outcome"] == NOT_RESUMED for o in final.values()) else 0


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
                f" ms, p99 {pair['cycle_p99_ms']:.2f} ms, {counted(pair['errors'], 'bus error')}"
            )
        if retry := pair.get("retry"):
            lines.append(f"  retry    attempt {retry['attempt']} at {retry['at']}")
        lines.append(f"  restarts {pair['restarts']}")
        for role, pose in pair.get("positions", {}).items():
            shown = "  ".join(f"{joint} {value:.4g}" for joint, value in pose.items())
            lines.append(f"  {role:<8} {shown} ({pair['frame']})")
        if pair.get("telemetry"):
            lines.append(f"  follower {_telemetry_text(pair['telemetry'])}")
    return "\n".join(lines)


def _telemetry_text(telemetry: dict[str, Any]) -> str:
    """The follower's latest health with its age; marked when it is not a current reading."""
    temps = telemetry["temperatures"].values()
    text = f"{min(temps)}-{max(temps)} °C"
    if telemetry["voltages"]:
        volts = sorted(telemetry["voltages"].values())
        text += f", {volts[len(volts) // 2]:.1f} V"
    when = f"read at {telemetry['read_at']}, {telemetry['age_s']:.1f} s ago"
    if telemetry["current"]:
        return f"{text} ({telemetry['source']}, {when})"
    return f"last known {text} ({when}; not current)"
