"""The ``so101d`` command: argument parsing and human output only.

Each subcommand lives in its own module with a ``register(subparsers)`` function that adds
its parser and sets ``handler`` (a function taking the parsed arguments and returning the
exit code: 0 success, 1 failure, 2 usage error).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from so101d import __version__
from so101d.cli import (
    bench,
    calibrate,
    config,
    demo,
    frames,
    import_calibration,
    install,
    precheck,
    run,
    sim,
    status,
    validate,
    web,
)

COMMANDS = (
    run,
    status,
    precheck,
    validate,
    import_calibration,
    calibrate,
    config,
    install,
    sim,
    demo,
    frames,
    bench,
    web,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="so101d",
        description="Boot-time teleoperation for LeRobot SO-101 arms: leader to follower, "
        "surviving unplugs, with a built-in simulator.",
    )
    parser.add_argument("--version", action="version", version=f"so101d {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = handler(args)
    except KeyboardInterrupt:
        return 130
    return code
