"""``so101d calibrate``: calibrate an arm in a terminal, through the running daemon (the pair
pauses meanwhile) or, when none runs, directly on the port. The same session engine either
way (:mod:`so101d.calibrate`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from so101d.api import ApiClient, ApiError, DaemonNotRunning
from so101d.calibrate.local import LocalSessions
from so101d.cli.calibrate_auto import NO_TERMINAL_NO_YES, run_auto, save_telemetry
from so101d.cli.calibrate_wizard import Sessions, Wizard, elapsed, is_terminal, terminal_keys
from so101d.cli.config import add_config_option
from so101d.cli.status import Parsers, socket_path
from so101d.config import ConfigError, load_config

NOT_A_TERMINAL = (
    "so101d calibrate needs a terminal: it redraws a live table and reads single keys. "
    "From a script, drive a session with the control socket's calibrate.* methods "
    "(see `so101d.calibrate.desk`)."
)


def register(subparsers: Parsers) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="calibrate an arm: neutral pose, sweep, review, save (a terminal wizard)",
        description="Calibrate one arm on the Pi, as lerobot-calibrate does but across the "
        "encoder seam: capture the neutral pose, sweep every joint, review the new ranges, "
        "save the LeRobot file (with a backup) and the servos' EEPROM. Through the running "
        "daemon (which pauses the pair), or directly on the port when none runs.",
    )
    add_config_option(parser)
    parser.add_argument("--socket", help="control socket (default: from the config)")
    parser.add_argument("--pair", help="pair name (default: the only pair)")
    parser.add_argument(
        "--arm", choices=("leader", "follower"), help="the arm to calibrate (a new session)"
    )
    parser.add_argument(
        "--joint-by-joint",
        action="store_true",
        help="sweep one joint at a time: Enter moves to the next joint",
    )
    parser.add_argument(
        "--auto",
        action="store_true",
        help="automatic: the arm drives each joint gently to its end stops by itself "
        "(says what moves and asks first)",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="with --auto: move without asking (the space around the arm is clear); "
        "without a terminal, also save a review without errors",
    )
    parser.add_argument(
        "--save-telemetry",
        metavar="FILE",
        type=Path,
        help="with --auto: write every sample (time, joint, position, goal, current, load, "
        "temperature) to FILE as JSON",
    )
    parser.set_defaults(handler=calibrate)


def calibrate(args: argparse.Namespace) -> int:
    if not is_terminal() and not (args.auto and args.yes):
        print(NO_TERMINAL_NO_YES if args.auto else NOT_A_TERMINAL, file=sys.stderr)
        return 2
    path = socket_path(args, "calibrate")
    if path is None:
        return 1
    started = time.monotonic()
    local: LocalSessions | None = None
    try:
        sessions: Sessions = ApiClient(path)
        try:
            current = sessions.call("calibrate.state")
        except DaemonNotRunning:
            local = LocalSessions(load_config(args.config))
            sessions, current = local, {"session": None}
            print("no daemon running: calibrating directly on the port")
        state = _attach_or_start(sessions, current, args)
        run = _run_auto if args.auto else _run_wizard
        code = run(sessions, state, args)
    except (ApiError, ConfigError) as exc:
        print(f"so101d calibrate: {exc}", file=sys.stderr)
        return 1
    finally:
        if local is not None:
            local.close()
    if code == 0:
        print(f"saved {elapsed(started)} after `so101d calibrate` started")
    return code


def _attach_or_start(
    sessions: Sessions, current: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """Re-attach to the active session when it is the one asked for, else start one."""
    if current.get("active") and _matches(current, args):
        print(f"re-attaching to session {current['session']} at step {current['step']}")
        return current
    if args.arm is None:
        raise ApiError("no session to re-attach to: say which arm with --arm leader|follower")
    params = {"arm": args.arm, **({"pair": args.pair} if args.pair else {})}
    if args.auto:
        params["auto"] = True
    state: dict[str, Any] = sessions.call("calibrate.start", **params)
    return state


def _matches(state: dict[str, Any], args: argparse.Namespace) -> bool:
    return args.pair in (None, state["pair"]) and args.arm in (None, state["arm"])


def _run_auto(sessions: Sessions, state: dict[str, Any], args: argparse.Namespace) -> int:
    try:
        return run_auto(sessions, state, yes=args.yes, terminal=is_terminal(), out=sys.stdout)
    except KeyboardInterrupt:
        Wizard(sessions, sys.stdout).abort(state["session"])
        return 130
    finally:
        if args.save_telemetry is not None:
            count = save_telemetry(sessions, state["session"], args.save_telemetry)
            print(f"telemetry: {count} samples in {args.save_telemetry}")


def _run_wizard(sessions: Sessions, state: dict[str, Any], args: argparse.Namespace) -> int:
    wizard = Wizard(sessions, sys.stdout, joint_by_joint=args.joint_by_joint)
    try:
        with terminal_keys(sys.stdin) as keys:
            return wizard.run(state, keys)
    except KeyboardInterrupt:
        wizard.abort(state["session"])
        return 130
