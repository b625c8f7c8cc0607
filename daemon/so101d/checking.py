"""The ``checking`` state: find and validate the two calibration files of a pair.

An unusable file latches the pair until a file changes; :func:`calibration_fingerprint`
is how the supervisor notices that change.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from so101d.calibration.locate import calibration_path, locate_calibration
from so101d.calibration.model import ArmCalibration, Role
from so101d.calibration.validate import FileReport, Level, check_pair, validate_file
from so101d.faults import Latch, PairFault

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArmFiles:
    role: Role
    arm_id: str
    motor_ids: Mapping[str, int]


@dataclass(frozen=True)
class PairCalibration:
    leader: ArmCalibration
    follower: ArmCalibration
    warnings: tuple[str, ...]


def load_pair_calibration(root: Path, leader: ArmFiles, follower: ArmFiles) -> PairCalibration:
    """Both arms' calibrations, validated; PairFault (latched) naming what to fix."""
    reports = [_validated(root, arm) for arm in (leader, follower)]
    warnings = [
        report.explain(f) for report in reports for f in report.findings if f.level is Level.WARNING
    ]
    warnings += [f"{reports[1].path}: {f.message}" for f in check_pair(*reports)]
    lead, follow = (report.calibration for report in reports)
    assert lead is not None and follow is not None  # usable reports carry a calibration
    return PairCalibration(lead, follow, tuple(warnings))


def calibration_fingerprint(root: Path, arms: tuple[ArmFiles, ...]) -> tuple[object, ...]:
    """Changes whenever one of the arms' calibration files is created, changed or removed."""
    prints: list[object] = []
    for arm in arms:
        located = locate_calibration(root, arm.role, arm.arm_id)
        for path in located.searched:
            try:
                stat = os.stat(path)
            except OSError:
                prints.append((str(path), None))
            else:
                prints.append((str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return tuple(prints)


def arm_file_state(root: Path, arm: ArmFiles) -> dict[str, Any]:
    """The arm's calibration file for a front end: ``state`` ok | missing | invalid, its path,
    modification time (UTC), and the validator's errors and warnings."""
    located = locate_calibration(root, arm.role, arm.arm_id)
    state: dict[str, Any] = {
        "role": str(arm.role),
        "id": arm.arm_id,
        "state": "missing",
        "path": str(located.path or calibration_path(root, arm.role, arm.arm_id)),
        "modified": None,
        "errors": [],
        "warnings": [],
    }
    if located.path is None:
        return state
    report = validate_file(located.path, arm.role, arm.motor_ids)
    with contextlib.suppress(OSError):
        mtime = located.path.stat().st_mtime
        state["modified"] = dt.datetime.fromtimestamp(mtime, dt.UTC).isoformat(timespec="seconds")
    state["state"] = "ok" if report.usable else "invalid"
    for level, key in ((Level.ERROR, "errors"), (Level.WARNING, "warnings")):
        state[key] = [f.message for f in report.findings if f.level is level]
    return state


def _validated(root: Path, arm: ArmFiles) -> FileReport:
    located = locate_calibration(root, arm.role, arm.arm_id)
    if located.path is None:
        expected = calibration_path(root, arm.role, arm.arm_id)
        raise PairFault(
            f"no calibration for the {arm.role} '{arm.arm_id}': expected {expected}. "
            f"Calibrate the arm with `so101d calibrate --arm {arm.role}` (add --pair NAME "
            f"with several pairs), or import a file with `so101d import-calibration --role "
            f"{arm.role} --id {arm.arm_id} --to {root}`",
            Latch.CALIBRATION,
        )
    if located.conflict:
        log.warning(
            "%s: both LeRobot layouts hold a calibration for '%s' and they differ; using %s",
            arm.role,
            arm.arm_id,
            located.path,
        )
    report = validate_file(located.path, arm.role, arm.motor_ids)
    if not report.usable:
        errors = [report.explain(f) for f in report.findings if f.level is Level.ERROR]
        raise PairFault(
            "calibration unusable, teleop refused until the file changes: " + "; ".join(errors),
            Latch.CALIBRATION,
        )
    return report
