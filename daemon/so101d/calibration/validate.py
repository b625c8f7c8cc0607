"""Is a calibration safe to drive an arm with? Findings per file, per joint and per pair.

Errors are kept for what is impossible or a known failure signature, because teleop refuses
to run on an error and real, healthy arms vary a lot: a validator that rejects a healthy arm
is as wrong as one that passes a wrapped one. Everything merely unusual is a warning (teleop
runs, the journal says why the file looks odd); info findings are remarks.

Thresholds, all in encoder ticks (4096 per turn, 11.4 ticks per degree):

* ``WRAP_SPAN`` 3900 (343 degrees): no SO-101 joint but wrist_roll turns more than about 300
  degrees between its mechanical stops, so a recorded range this wide means the reading
  jumped across the 4095/0 wrap point during calibration (the classic shoulder_lift range of
  ~4050 instead of ~2350).
* ``MIN_SWEEP`` 200 (18 degrees): the smallest healthy travel of any SO-101 joint is the
  leader's handle at roughly 900 ticks; a range under 200 means the joint was hardly moved,
  and teleop would squeeze the other arm's whole motion into it.
* ``MIN_SWEEP_FRACTION`` 0.25: whatever the absolute number, a range under a quarter of the
  shortest travel that joint has on any SO-101 (the lower end of its widest band, leader or
  follower) was barely swept: a wrist_roll of a few hundred ticks is not a wrist_roll.
* Follower bands are NVIDIA's published SO-101 data (mean and 2 sigma band of
  range_max - range_min); a miss is reported with its deviation in sigma.
* Leader bands are our own and deliberately broad: the leader's joints 1-5 are the same
  mechanism as the follower's but swept by hand, so they get about +/-20% around the
  follower's mean; wrist_roll is a full turn (forced to 0..4095 since LeRobot 0.4.3, swept by
  hand before); the handle (gripper) travels roughly 900..1400 ticks, widened to 700..1700.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from so101d.calibration.files import (
    RECALIBRATE,
    CalibrationFileError,
    parse_document,
    read_bytes,
    serialize_calibration,
)
from so101d.calibration.model import (
    DEFAULT_MOTOR_MAP,
    GRIPPER,
    WRIST_ROLL,
    ArmCalibration,
    MotorCalibration,
    Role,
)
from so101d.feetech.protocol import MAX_ID
from so101d.feetech.registers import HALF_TURN, MAX_POSITION

WRAP_SPAN = 3900
MIN_SWEEP = 200
MIN_SWEEP_FRACTION = 0.25
ENCODER_END_MARGIN = 10  # a non-wrist_roll range ending this close to 0 or 4095 may have wrapped
HOMING_POSE_TOLERANCE = 50  # homing reads 2047 at the middle pose; ranges start from there
PAIR_MIDPOINT_TOLERANCE = 114  # ticks (10 degrees) of midpoint mismatch before we warn
TICKS_PER_DEGREE = (MAX_POSITION + 1) / 360


class Level(enum.StrEnum):
    ERROR = "error"  # impossible or a known failure signature: teleop refuses
    WARNING = "warning"  # unusual: teleop runs, the journal says why
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    level: Level
    code: str
    message: str  # names the joint when there is one; FileReport.explain adds the file
    joint: str | None = None


@dataclass(frozen=True)
class ReferenceBand:
    """Plausible ``range_max - range_min`` of one joint: ``low``..``high`` inclusive.

    With a published ``mean`` the band is mean +/- 2 sigma, and deviations are in sigma.
    """

    low: int
    high: int
    mean: int | None = None

    def contains(self, span: int) -> bool:
        return self.low <= span <= self.high

    def deviation(self, span: int) -> float | None:
        """How far ``span`` is from the mean in sigma; None for bands without a mean."""
        if self.mean is None:
            return None
        sigma = (self.high - self.low) / 4
        return (span - self.mean) / sigma

    def describe(self) -> str:
        band = f"{self.low}-{self.high}"
        return band if self.mean is None else f"{self.mean} ({band})"


FOLLOWER_REFERENCE: Mapping[str, ReferenceBand] = {
    "shoulder_pan": ReferenceBand(2661, 2789, mean=2725),
    "shoulder_lift": ReferenceBand(2196, 2504, mean=2350),
    "elbow_flex": ReferenceBand(2204, 2240, mean=2222),
    "wrist_flex": ReferenceBand(2295, 2363, mean=2329),
    "wrist_roll": ReferenceBand(3798, 4254, mean=4026),
    "gripper": ReferenceBand(1409, 1541, mean=1475),
}
LEADER_BANDS: Mapping[str, ReferenceBand] = {
    "shoulder_pan": ReferenceBand(2200, 3250),
    "shoulder_lift": ReferenceBand(1900, 2800),
    "elbow_flex": ReferenceBand(1800, 2650),
    "wrist_flex": ReferenceBand(1850, 2800),
    "wrist_roll": ReferenceBand(3000, 4095),
    "gripper": ReferenceBand(700, 1700),
}


def reference_band(role: Role | None, joint: str) -> ReferenceBand | None:
    if role is None:
        return None
    bands = FOLLOWER_REFERENCE if role is Role.FOLLOWER else LEADER_BANDS
    return bands.get(joint)


def shortest_travel(joint: str) -> int | None:
    """The least travel ``joint`` has on any SO-101, leader or follower (None: not a joint)."""
    lows = [bands[joint].low for bands in (FOLLOWER_REFERENCE, LEADER_BANDS) if joint in bands]
    return min(lows) if lows else None


def barely_swept(joint: str, span: int) -> bool:
    """A range too small to be a sweep of this joint: under MIN_SWEEP ticks, or under
    MIN_SWEEP_FRACTION of the joint's shortest travel on any SO-101."""
    travel = shortest_travel(joint)
    return span < MIN_SWEEP or (travel is not None and span < MIN_SWEEP_FRACTION * travel)


@dataclass(frozen=True)
class FileReport:
    """The verdict on one file. ``calibration`` is None when the file could not be parsed."""

    path: Path
    role: Role | None
    calibration: ArmCalibration | None
    findings: tuple[Finding, ...]

    @property
    def usable(self) -> bool:
        return not any(f.level is Level.ERROR for f in self.findings)

    @property
    def verdict(self) -> str:
        return _worst(self.findings)

    def joint_verdict(self, joint: str) -> str:
        return _worst(f for f in self.findings if f.joint == joint)

    def count(self, level: Level) -> int:
        return sum(f.level is level for f in self.findings)

    def with_findings(self, findings: Iterable[Finding]) -> FileReport:
        """This report with more findings about the file (pair checks, for instance)."""
        return replace(self, findings=(*self.findings, *findings))

    def explain(self, finding: Finding) -> str:
        """The finding's message with the file it is about, for logs and terminals."""
        return f"{self.path}: {finding.message}"


def validate_file(
    path: Path, role: Role | None = None, motor_map: Mapping[str, int] = DEFAULT_MOTOR_MAP
) -> FileReport:
    """Read and check one file; never raises for anything wrong with the file itself."""
    try:
        data = read_bytes(path)
    except CalibrationFileError as exc:
        return _unusable(path, role, exc)
    return validate_bytes(data, path, role, motor_map)


def validate_bytes(
    data: bytes,
    path: Path,
    role: Role | None = None,
    motor_map: Mapping[str, int] = DEFAULT_MOTOR_MAP,
) -> FileReport:
    try:
        calibration, ignored = parse_document(data, path)
    except CalibrationFileError as exc:
        return _unusable(path, role, exc)
    findings = check_calibration(calibration, role, motor_map)
    if ignored:
        findings.insert(0, _extra_sections(ignored))
    if serialize_calibration(calibration) != data:
        findings.append(_noncanonical())
    return FileReport(path, role, calibration, tuple(findings))


def check_calibration(
    calibration: ArmCalibration,
    role: Role | None,
    motor_map: Mapping[str, int] = DEFAULT_MOTOR_MAP,
) -> list[Finding]:
    """Every finding for a parsed calibration, file-wide ones first, then joint by joint."""
    _check_motor_map(motor_map)
    findings = list(_joint_set(calibration, motor_map))
    findings += _duplicate_ids(calibration)
    if role is None:
        findings.append(_role_unknown())
    for joint, motor in calibration.items():
        if joint in motor_map:
            findings += _check_joint(joint, motor, motor_map[joint], role)
    return findings


def check_pair(leader: FileReport, follower: FileReport) -> list[Finding]:
    """Warnings about a leader and a follower used together (both must have parsed)."""
    if leader.calibration is None or follower.calibration is None:
        return []
    findings = []
    for joint, lead in leader.calibration.items():
        follow = follower.calibration.get(joint)
        if joint == GRIPPER or follow is None:
            continue  # the gripper maps range to range (0..100), its midpoint does not matter
        mismatch = follow.midpoint - lead.midpoint
        if abs(mismatch) > PAIR_MIDPOINT_TOLERANCE:
            findings.append(_midpoint_mismatch(joint, mismatch, leader.path, follower.path))
    return findings


def with_pair_checks(reports: Sequence[FileReport]) -> list[FileReport]:
    """When ``reports`` are exactly one leader and one follower, add the pair's findings to
    the follower's report (the follower is where a mismatch shows)."""
    leaders = [r for r in reports if r.role is Role.LEADER]
    followers = [r for r in reports if r.role is Role.FOLLOWER]
    if len(leaders) != 1 or len(followers) != 1:
        return list(reports)
    pair = check_pair(leaders[0], followers[0])
    return [r.with_findings(pair) if r is followers[0] else r for r in reports]


# -- the checks ----------------------------------------------------------------------------


def _joint_set(calibration: ArmCalibration, motor_map: Mapping[str, int]) -> Iterator[Finding]:
    expected = ", ".join(motor_map)
    for joint in motor_map:
        if joint not in calibration:
            message = f"{joint} is missing: the file must hold every joint ({expected}); "
            yield Finding(Level.ERROR, "missing_joint", message + RECALIBRATE, joint)
    for joint in calibration:
        if joint not in motor_map:
            message = (
                f"{joint!r} is not a joint of this arm (expected {expected}); the file may "
                f"belong to another robot: {RECALIBRATE}"
            )
            yield Finding(Level.ERROR, "unknown_joint", message, joint)


def _duplicate_ids(calibration: ArmCalibration) -> Iterator[Finding]:
    counts = Counter(motor.id for motor in calibration.values())
    for motor_id, count in counts.items():
        if count > 1:
            joints = [j for j, m in calibration.items() if m.id == motor_id]
            message = (
                f"{' and '.join(joints)} share motor id {motor_id}; every joint needs its own "
                f"motor: fix the ids (lerobot-setup-motors) and {RECALIBRATE}"
            )
            yield Finding(Level.ERROR, "duplicate_id", message, joints[-1])


def _check_joint(
    joint: str, motor: MotorCalibration, expected_id: int, role: Role | None
) -> Iterator[Finding]:
    if motor.id != expected_id:
        message = f"{joint} has motor id {motor.id}, expected {expected_id}: {RECALIBRATE}"
        yield Finding(Level.ERROR, "bad_id", message, joint)
    yield from _check_drive_mode(joint, motor.drive_mode)
    if abs(motor.homing_offset) > HALF_TURN:
        message = (
            f"{joint} homing_offset {motor.homing_offset} cannot be written to the servo "
            f"(its register holds -{HALF_TURN}..{HALF_TURN}): {RECALIBRATE}"
        )
        yield Finding(Level.ERROR, "homing_unencodable", message, joint)
    yield from _check_range(joint, motor, role)


def _check_drive_mode(joint: str, drive_mode: int) -> Iterator[Finding]:
    if drive_mode not in (0, 1):
        message = f"{joint} drive_mode is {drive_mode}, but only 0 and 1 exist: {RECALIBRATE}"
        yield Finding(Level.ERROR, "bad_drive_mode", message, joint)
    elif drive_mode == 1:
        message = (
            f"{joint} drive_mode is 1: LeRobot's SO-101 calibration always writes 0, and 1 "
            "inverts this joint in the -100..100 and 0..100 modes (not in degrees); check "
            "that the file was edited on purpose"
        )
        yield Finding(Level.WARNING, "drive_mode_inverted", message, joint)


def _check_range(joint: str, motor: MotorCalibration, role: Role | None) -> Iterator[Finding]:
    """Range checks, most fundamental first: each later one assumes the earlier ones passed."""
    outside = [(name, v) for name, v in _limits(motor) if not 0 <= v <= MAX_POSITION]
    for name, value in outside:
        message = f"{joint} {name} is {value}, outside the encoder's 0..{MAX_POSITION}: "
        yield Finding(Level.ERROR, "out_of_encoder", message + RECALIBRATE, joint)
    if outside:
        return
    if motor.range_min >= motor.range_max:
        message = (
            f"{joint} range_min {motor.range_min} is not below range_max {motor.range_max}: "
            f"{RECALIBRATE}"
        )
        yield Finding(Level.ERROR, "min_not_below_max", message, joint)
    elif joint != WRIST_ROLL and motor.span >= WRAP_SPAN:
        yield _wrapped(joint, motor)
    elif barely_swept(joint, motor.span):
        travel = shortest_travel(joint)
        expected = f" (it travels at least {travel} on any SO-101)" if travel else ""
        message = (
            f"{joint} range is {motor.span} ticks{expected}: the joint was barely moved during "
            f"calibration; {RECALIBRATE} and move every joint through its full range"
        )
        yield Finding(Level.ERROR, "barely_swept", message, joint)
    else:
        yield from _unusual_range(joint, motor, role)


def _unusual_range(joint: str, motor: MotorCalibration, role: Role | None) -> Iterator[Finding]:
    if joint != WRIST_ROLL:
        yield from _at_encoder_end(joint, motor)
    low, high = motor.range_min - HOMING_POSE_TOLERANCE, motor.range_max + HOMING_POSE_TOLERANCE
    if not low <= HALF_TURN <= high:
        message = (
            f"{joint} range {motor.range_min}..{motor.range_max} does not include {HALF_TURN}, "
            "the reading calibration gives the middle pose; the file may have been edited or "
            "mixed from two calibrations: recalibrate if this joint moves oddly"
        )
        yield Finding(Level.WARNING, "homing_pose_outside_range", message, joint)
    band = reference_band(role, joint)
    if band is not None and not band.contains(motor.span):
        yield _outside_band(joint, motor.span, band, role)


def _at_encoder_end(joint: str, motor: MotorCalibration) -> Iterator[Finding]:
    for name, value in _limits(motor):
        if min(value, MAX_POSITION - value) <= ENCODER_END_MARGIN:
            message = (
                f"{joint} {name} is {value}, at the end of the encoder: the joint may have "
                "crossed the wrap point while calibrating; if it jumps or stops short in "
                f"teleop, {RECALIBRATE} starting from the middle pose"
            )
            yield Finding(Level.WARNING, "range_at_encoder_end", message, joint)


def _limits(motor: MotorCalibration) -> tuple[tuple[str, int], tuple[str, int]]:
    return ("range_min", motor.range_min), ("range_max", motor.range_max)


def _outside_band(joint: str, span: int, band: ReferenceBand, role: Role | None) -> Finding:
    deviation = band.deviation(span)
    if deviation is not None:
        compared = f"the published follower reference {band.describe()}, {deviation:+.1f} sigma"
    else:
        compared = f"the usual {band.low}-{band.high} for a {role} arm"
    if span < band.low:
        advice = (
            "if teleop cannot reach this joint's end stops, recalibrate and sweep it from stop "
            "to stop"
        )
    else:
        advice = "check that nothing slipped while calibrating"
    message = f"{joint} range is {span} ticks, outside {compared}: unusual but usable; {advice}"
    return Finding(Level.WARNING, "range_outside_reference", message, joint)


def _wrapped(joint: str, motor: MotorCalibration) -> Finding:
    message = (
        f"{joint} range {motor.range_min}..{motor.range_max} ({motor.span} ticks) spans nearly "
        f"the whole encoder: the reading wrapped past 4095/0 during calibration, which only "
        f"{WRIST_ROLL} may do; {RECALIBRATE}, starting with every joint in the middle of "
        "its travel"
    )
    return Finding(Level.ERROR, "encoder_wrap", message, joint)


def _midpoint_mismatch(joint: str, mismatch: float, leader: Path, follower: Path) -> Finding:
    degrees = abs(mismatch) / TICKS_PER_DEGREE
    message = (
        f"{joint} midpoints differ by {abs(mismatch):.0f} ticks ({degrees:.1f} degrees) between "
        f"leader {leader} and follower {follower}: in degrees mode (LeRobot's default since "
        f"0.4.4) the follower will hold {joint} that far from the leader; recalibrate both "
        "arms from the same middle pose"
    )
    return Finding(Level.WARNING, "pair_midpoint_mismatch", message, joint)


def _extra_sections(keys: Sequence[str]) -> Finding:
    names = ", ".join(repr(key) for key in keys)
    message = (
        f"ignored {names}: not a joint and not shaped like one (another tool's own section?); "
        "so101d uses only the joints, and a save by so101d drops it"
    )
    return Finding(Level.WARNING, "extra_section", message)


def _role_unknown() -> Finding:
    message = (
        "cannot tell from the path whether this is a leader or a follower, so ranges were not "
        "compared with a reference; give the role (--role) to compare them"
    )
    return Finding(Level.INFO, "role_unknown", message)


def _noncanonical() -> Finding:
    message = (
        "the bytes differ from what LeRobot writes for these values (layout, key order or a "
        "trailing newline); the values are used as they are and so101d saves LeRobot's format"
    )
    return Finding(Level.INFO, "noncanonical_format", message)


def _check_motor_map(motor_map: Mapping[str, int]) -> None:
    ids = list(motor_map.values())
    if len(set(ids)) != len(ids) or not all(0 <= i <= MAX_ID for i in ids):
        raise ValueError(f"invalid motor map {dict(motor_map)}: ids must be unique, 0..{MAX_ID}")


def _unusable(path: Path, role: Role | None, error: CalibrationFileError) -> FileReport:
    findings = tuple(Finding(Level.ERROR, p.code, p.message, p.joint) for p in error.problems)
    return FileReport(path, role, None, findings)


def _worst(findings: Iterable[Finding]) -> str:
    levels = {f.level for f in findings}
    if Level.ERROR in levels:
        return "error"
    return "warning" if Level.WARNING in levels else "ok"
