"""Validation reports for people (a table per file) and for programs (JSON-ready dicts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from so101d.calibration.model import MotorCalibration
from so101d.calibration.validate import (
    FileReport,
    Finding,
    Level,
    ReferenceBand,
    reference_band,
)

_COLUMNS = (
    "joint",
    "id",
    "homing",
    "min",
    "max",
    "range",
    "mid",
    "reference",
    "deviation",
    "verdict",
)
_SIGMA = "\N{GREEK SMALL LETTER SIGMA}"
_RIGHT_ALIGNED = {"id", "homing", "min", "max", "range", "mid", "deviation"}


@dataclass(frozen=True)
class JointRow:
    joint: str
    motor: MotorCalibration
    band: ReferenceBand | None
    verdict: str

    @property
    def deviation_sigma(self) -> float | None:
        return self.band.deviation(self.motor.span) if self.band is not None else None

    @property
    def outside_band_by(self) -> int:
        """Ticks below (negative) or above (positive) the band; 0 inside it or without one."""
        if self.band is None:
            return 0
        span = self.motor.span
        return min(0, span - self.band.low) + max(0, span - self.band.high)


def joint_rows(report: FileReport) -> list[JointRow]:
    calibration = report.calibration or {}
    return [
        JointRow(joint, motor, reference_band(report.role, joint), report.joint_verdict(joint))
        for joint, motor in calibration.items()
    ]


# -- for people ----------------------------------------------------------------------------


def render_report(report: FileReport) -> str:
    """A header, the joint table (when the file parsed) and every finding."""
    lines = [f"{report.path} ({report.role or 'role unknown'}): {_summary(report)}"]
    rows = joint_rows(report)
    if rows:
        lines += _table([_COLUMNS, *(_cells(row) for row in rows)])
    lines += render_findings(report.findings)
    return "\n".join(lines)


def render_findings(findings: Sequence[Finding]) -> list[str]:
    return [f"  {finding.level}: {finding.message}" for finding in findings]


def _summary(report: FileReport) -> str:
    errors, warnings = report.count(Level.ERROR), report.count(Level.WARNING)
    if errors:
        return f"NOT USABLE, {_plural(errors, 'error')}"
    return f"usable, {_plural(warnings, 'warning')}" if warnings else "usable"


def _cells(row: JointRow) -> tuple[str, ...]:
    motor = row.motor
    return (
        row.joint,
        str(motor.id),
        str(motor.homing_offset),
        str(motor.range_min),
        str(motor.range_max),
        str(motor.span),
        f"{motor.midpoint:g}",
        row.band.describe() if row.band is not None else "-",
        _deviation(row),
        row.verdict,
    )


def _deviation(row: JointRow) -> str:
    sigma = row.deviation_sigma
    if sigma is not None:
        return f"{sigma:+.1f}{_SIGMA}"
    return f"{row.outside_band_by:+d} ticks" if row.outside_band_by else ""


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return [
        "  ".join(
            cell.rjust(width) if name in _RIGHT_ALIGNED else cell.ljust(width)
            for name, cell, width in zip(_COLUMNS, row, widths, strict=True)
        ).rstrip()
        for row in rows
    ]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# -- for programs --------------------------------------------------------------------------


def report_to_json(report: FileReport) -> dict[str, object]:
    """One file's verdict, joints and every finding."""
    return {
        "path": str(report.path),
        "role": report.role.value if report.role is not None else None,
        "verdict": report.verdict,
        "usable": report.usable,
        "joints": [_row_json(row) for row in joint_rows(report)],
        "findings": [finding_to_json(f) for f in report.findings],
    }


def finding_to_json(finding: Finding) -> dict[str, object]:
    return {
        "joint": finding.joint,
        "level": finding.level.value,
        "code": finding.code,
        "message": finding.message,
    }


def _row_json(row: JointRow) -> dict[str, object]:
    return {
        "joint": row.joint,
        **row.motor.as_dict(),
        "range": row.motor.span,
        "midpoint": row.motor.midpoint,
        "reference": asdict(row.band) if row.band is not None else None,
        "deviation_sigma": row.deviation_sigma,
        "outside_band_by": row.outside_band_by,
        "verdict": row.verdict,
    }
