"""``so101d demo``: try the daemon on a virtual pair, no hardware and no root needed."""

from __future__ import annotations

import argparse
import sys

from so101d.demo import run_demo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the daemon on a virtual leader/follower pair for a few seconds",
        description="Start a simulated leader and follower arm on pseudo-terminals, write "
        "calibration files that match them, and run the real daemon (so101d run) on them "
        "while the virtual leader waves: its log and a live status line are shown. No arms "
        "and no root needed. Exits 0 when the follower mirrored the leader within the "
        "tolerance; otherwise 1, saying which check failed and its limit.",
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="how long to run (default: %(default)s)"
    )
    parser.set_defaults(handler=demo)


def demo(args: argparse.Namespace) -> int:
    if args.seconds <= 0:
        print("so101d demo: --seconds must be positive", file=sys.stderr)
        return 2
    return run_demo(args.seconds, sys.stdout)
