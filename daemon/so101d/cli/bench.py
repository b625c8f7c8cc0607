"""``so101d bench``: CPU and cycle times of the daemon's teleop loop, beside LeRobot's."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from so101d.bench import BenchError, BenchPlan, Side, run_bench
from so101d.bench.report import plot, table


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure the teleop loop's CPU per cycle, beside LeRobot's",
        description="Run the daemon's own leader-to-follower loop on simulated arms (or with "
        "--port, read-only, on a real leader) and print CPU µs per cycle, system calls per "
        "cycle, cycle p50/p99/max, the rate held and peak RSS. --against-lerobot runs "
        "LeRobot's own teleop loop on the same kind of virtual arms in the same run.",
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="timed seconds per run (default: 10)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        nargs="+",
        default=[100.0],
        metavar="HZ",
        help="loop rates, e.g. 100 200 0 (0: unthrottled; default: 100)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="median of this many (default: 3)")
    parser.add_argument(
        "--against-lerobot", action="store_true", help="also run LeRobot's loop, side by side"
    )
    parser.add_argument(
        "--lerobot-python",
        metavar="PATH",
        default=os.environ.get("LEROBOT_PYTHON"),
        help="the Python with LeRobot installed (default: $LEROBOT_PYTHON)",
    )
    parser.add_argument(
        "--compare-tree",
        type=Path,
        metavar="DIR",
        action="append",
        default=[],
        help="also run so101d's loop from another checkout (e.g. a worktree of main)",
    )
    parser.add_argument(
        "--port", metavar="PATH", help="a real leader arm, only read (the follower stays virtual)"
    )
    parser.add_argument(
        "--leader-calibration",
        type=Path,
        metavar="FILE",
        help="with --port: the leader's LeRobot calibration file",
    )
    parser.add_argument(
        "--plot", type=Path, metavar="FILE.png", help="draw the cycle-time distributions"
    )
    parser.set_defaults(handler=_bench)


def _sides(args: argparse.Namespace) -> list[Side]:
    sides = [Side("so101d")]
    for tree in args.compare_tree:
        if not (tree / "daemon" / "so101d").is_dir():
            raise BenchError(f"--compare-tree {tree}: no daemon/so101d in it (a checkout?)")
        sides.append(Side(f"so101d@{tree.name}", tree=tree.resolve()))
    if args.against_lerobot:
        if not args.lerobot_python:
            raise BenchError("--against-lerobot needs --lerobot-python PATH (or $LEROBOT_PYTHON)")
        sides.append(Side("LeRobot", lerobot_python=args.lerobot_python))
    return sides


def _bench(args: argparse.Namespace) -> int:
    if args.seconds <= 0 or args.rounds < 1 or any(rate < 0 for rate in args.rate):
        print("so101d bench: --seconds and --rounds must be positive, rates >= 0", file=sys.stderr)
        return 2
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(
                "so101d bench: --plot needs matplotlib: pip install 'so101d[plot]'",
                file=sys.stderr,
            )
            return 2
    try:
        sides = _sides(args)
        plan = BenchPlan(
            sides,
            args.rate,
            seconds=args.seconds,
            rounds=args.rounds,
            leader_port=args.port,
            leader_calibration=args.leader_calibration,
        )
        results = run_bench(plan, lambda line: print(line, file=sys.stderr, flush=True))
    except BenchError as exc:
        print(f"so101d bench: {exc}", file=sys.stderr)
        return 1
    print(table(results, sides, args.seconds, args.rounds))
    if args.plot:
        plot(results, args.plot)
        print(f"cycle-time distributions drawn to {args.plot}")
    return 0
