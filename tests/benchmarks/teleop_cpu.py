"""Benchmark: CPU per teleop cycle of so101d's loop, another checkout's and LeRobot's, side by side.

    LEROBOT_PYTHON=.venv-lerobot/bin/python .venv/bin/python -m tests.benchmarks.teleop_cpu \\
        [--other DIR] [--seconds 10]

``so101d bench`` at 100 Hz, 200 Hz and unthrottled, three rounds alternating the sides
(medians), on fresh virtual arms per run; ``--other`` is typically a worktree of main before
a change (`git worktree add /tmp/perf-base main`). The machine's load is printed before and
after: other work on it shows in the figures.
"""

from __future__ import annotations

import argparse
import os
import sys

from so101d.cli import main as so101d


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", help="another checkout to compare against")
    parser.add_argument("--seconds", default="10")
    args = parser.parse_args()
    lerobot = os.environ.get("LEROBOT_PYTHON")
    command = ["bench", "--rate", "100", "200", "0", "--seconds", args.seconds]
    command += ["--compare-tree", args.other] if args.other else []
    command += ["--against-lerobot", "--lerobot-python", lerobot] if lerobot else []
    print("load average before:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    code = so101d(command)
    print("load average after: ", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return code


if __name__ == "__main__":
    sys.exit(main())
