"""``so101d import-calibration``: copy a user's LeRobot calibration into the daemon's
directory, validating on the way; nothing is written when any file has an error."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from so101d.calibration.locate import (
    Layout,
    LocatedCalibration,
    calibration_path,
    check_arm_id,
    find_calibrations,
    lerobot_calibration_root,
    locate_calibration,
)
from so101d.calibration.model import Role
from so101d.calibration.report import render_report
from so101d.calibration.store import save_calibration
from so101d.calibration.validate import FileReport, validate_file
from so101d.cli.config import add_config_option, config_or_report
from so101d.config import DEFAULT_CONFIG_PATH

DEFAULT_DESTINATION = Path("/var/lib/so101d/calibration")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "import-calibration",
        help="copy a LeRobot calibration into the daemon's calibration directory",
        description="Copy LeRobot calibration files (either directory layout) into the "
        "daemon's calibration directory, in LeRobot's 0.4.3+ layout, after validating them. "
        "Nothing is written when any file has an error.",
    )
    parser.add_argument("--role", type=Role, choices=list(Role), help="the arm's role")
    parser.add_argument("--id", dest="arm_id", metavar="ID", help="the LeRobot calibration id")
    parser.add_argument(
        "--all", action="store_true", help="import every file found (of --role, if given)"
    )
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        metavar="DIR",
        help="a LeRobot calibration root (default: where LeRobot itself looks, "
        "e.g. ~/.cache/huggingface/lerobot/calibration)",
    )
    parser.add_argument(
        "--to",
        dest="destination",
        type=Path,
        metavar="DIR",
        help="the daemon's calibration directory (default: the calibration_dir of --config, "
        f"or {DEFAULT_DESTINATION} when there is no configuration file)",
    )
    add_config_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    problem = _usage_problem(args)
    if problem:
        print(f"so101d import-calibration: error: {problem}", file=sys.stderr)
        return 2
    destination = _destination(args)
    if destination is None:
        return 1
    source: Path = args.source or lerobot_calibration_root()
    arms = _arms_to_import(args.role, args.arm_id, source)
    if not arms:
        return 1
    reports = [_validate(arm) for arm in arms]
    if not all(report.usable for report in reports):
        print("nothing imported: fix or recalibrate the files with errors above", file=sys.stderr)
        return 1
    return _save_all(arms, reports, destination)


def _destination(args: argparse.Namespace) -> Path | None:
    """--to, else the configured calibration_dir; None after reporting a broken config."""
    if args.destination is not None:
        return Path(args.destination)
    if args.config == DEFAULT_CONFIG_PATH and not args.config.exists():
        return DEFAULT_DESTINATION
    config = config_or_report(args.config, "import-calibration")
    return config.calibration_dir if config else None


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.all:
        return "give either --id or --all, not both" if args.arm_id else None
    if args.role is None or args.arm_id is None:
        return "give --role and --id, or --all"
    try:
        check_arm_id(args.arm_id)
    except ValueError as exc:
        return str(exc)
    return None


def _arms_to_import(
    role: Role | None, arm_id: str | None, source: Path
) -> list[LocatedCalibration]:
    """The arm named by role and id, or with no id every arm found (of ``role``, if given)."""
    if arm_id is None:
        arms = [arm for arm in find_calibrations(source) if role in (None, arm.role)]
        if not arms:
            print(f"no calibration files found under {source}", file=sys.stderr)
        return arms
    assert role is not None  # _usage_problem requires a role with an id
    arm = locate_calibration(source, role, arm_id)
    if arm.path is None:
        looked = " and ".join(str(p) for p in arm.searched)
        print(
            f"no calibration for {role} {arm_id!r}: looked for {looked}; "
            "pass --from with your LeRobot calibration directory",
            file=sys.stderr,
        )
        return []
    return [arm]


def _validate(arm: LocatedCalibration) -> FileReport:
    assert arm.path is not None
    if arm.conflict:
        (newer_layout, newer), (older_layout, older) = arm.paths.items()
        print(
            f"warning: {arm.role} {arm.arm_id!r} has different calibrations in the two LeRobot "
            f"layouts: {newer} ({newer_layout.versions}) and {older} ({older_layout.versions}); "
            "importing the first, which current LeRobot uses"
        )
    report = validate_file(arm.path, arm.role)
    print(render_report(report), end="\n\n")
    return report


def _save_all(arms: list[LocatedCalibration], reports: list[FileReport], destination: Path) -> int:
    for arm, report in zip(arms, reports, strict=True):
        assert report.calibration is not None
        target = calibration_path(destination, arm.role, arm.arm_id, Layout.SO)
        try:
            saved = save_calibration(target, report.calibration)
        except OSError as exc:
            print(
                f"cannot write {target}: {exc.strerror or exc}; run as root or pass --to",
                file=sys.stderr,
            )
            return 1
        for result in saved:
            kept = f" (previous file kept as {result.backup})" if result.backup else ""
            state = "imported" if result.changed else "already up to date:"
            print(f"{state} {report.path} -> {result.path}{kept}")
    return 0
