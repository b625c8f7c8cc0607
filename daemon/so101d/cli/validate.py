"""``so101d validate PATH...``: is each calibration file safe to drive an arm with?

Exit status: 0 when every file is usable (warnings allowed), 1 when any file has an error
(including a file that cannot be read), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from so101d.calibration.locate import infer_role
from so101d.calibration.model import Role
from so101d.calibration.report import render_report, report_to_json
from so101d.calibration.validate import validate_file, with_pair_checks


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check LeRobot calibration files",
        description="Check LeRobot calibration files: errors (the daemon refuses to move an "
        "arm) for impossible values and known failure signatures, warnings for what is merely "
        "unusual. Given one leader and one follower file, also checks them as a pair. "
        "Exits 0 when every file is usable, 1 when any has an error.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="calibration file")
    parser.add_argument(
        "--role",
        type=Role,
        choices=list(Role),
        help="the arm's role (default: from the path, e.g. .../so_leader/x.json)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON, one object per file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    reports = with_pair_checks(
        [validate_file(path, args.role or infer_role(path)) for path in args.paths]
    )
    if args.json:
        print(json.dumps([report_to_json(report) for report in reports], indent=2))
    else:
        print("\n\n".join(render_report(report) for report in reports))
    return 0 if all(report.usable for report in reports) else 1
