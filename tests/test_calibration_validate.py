"""Validation: every error and warning, with messages naming the file and the joint; pair
checks; and arbitrary input never crashes the validator."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from so101d.calibration.files import serialize_calibration
from so101d.calibration.model import FIELDS, JOINTS, ArmCalibration, Role
from so101d.calibration.report import render_report, report_to_json
from so101d.calibration.validate import (
    FileReport,
    Level,
    check_pair,
    validate_bytes,
    validate_file,
    with_pair_checks,
)
from tests.test_calibration_files import PRE_2025_FILE
from tests.test_calibration_healthy import (
    REAL_LEADER,
    REFERENCE_FOLLOWER,
    arm,
    changed,
    write,
)

FOLLOWER = arm(REFERENCE_FOLLOWER)
LEADER = arm(REAL_LEADER)


def with_entry(joint: str, entry: object) -> bytes:
    """The reference follower's file with one joint's entry replaced by any JSON value."""
    document: dict[str, object] = {j: m.as_dict() for j, m in FOLLOWER.items()}
    document[joint] = entry
    return json.dumps(document, indent=4).encode()


def with_fields(joint: str, **fields: object) -> bytes:
    return with_entry(joint, {**FOLLOWER[joint].as_dict(), **fields})


def ranged(joint: str, low: int, high: int, base: ArmCalibration = FOLLOWER) -> ArmCalibration:
    return changed(base, joint, range_min=low, range_max=high)


def without(joint: str) -> ArmCalibration:
    return {j: m for j, m in FOLLOWER.items() if j != joint}


# (code, joint or None, file content, role)
ERRORS: list[tuple[str, str | None, ArmCalibration | bytes, Role | None]] = [
    ("not_json", None, b'{"shoulder_pan": {', Role.FOLLOWER),
    ("not_json", None, b"", Role.FOLLOWER),
    ("not_json", None, b"\xff\xfe\x00garbage", Role.FOLLOWER),
    ("not_object", None, b"[1, 2, 3]", Role.FOLLOWER),
    ("legacy_format", None, PRE_2025_FILE, Role.FOLLOWER),
    ("duplicate_key", None, b'{"gripper": {}, "gripper": {}}', Role.FOLLOWER),
    ("bad_joint_entry", "gripper", with_entry("gripper", [6, 0, 0, 1310, 2785]), None),
    ("missing_field", "elbow_flex", b'{"elbow_flex": {"id": 3}}', Role.FOLLOWER),
    ("unknown_field", "wrist_flex", with_fields("wrist_flex", speed=3), Role.FOLLOWER),
    ("bad_type", "wrist_flex", with_fields("wrist_flex", range_max=True), Role.FOLLOWER),
    ("bad_type", "gripper", with_fields("gripper", id="6"), Role.FOLLOWER),
    ("bad_type", "elbow_flex", with_fields("elbow_flex", range_min=936.0), Role.FOLLOWER),
    ("bad_drive_mode", "gripper", changed(FOLLOWER, "gripper", drive_mode=2), Role.FOLLOWER),
    ("missing_joint", "gripper", without("gripper"), Role.FOLLOWER),
    ("unknown_joint", "wrist_yaw", {**FOLLOWER, "wrist_yaw": FOLLOWER["gripper"]}, None),
    ("bad_id", "elbow_flex", changed(FOLLOWER, "elbow_flex", id=9), Role.FOLLOWER),
    ("bad_id", "shoulder_pan", changed(FOLLOWER, "shoulder_pan", id=0), Role.LEADER),
    ("duplicate_id", "elbow_flex", changed(FOLLOWER, "elbow_flex", id=2), Role.FOLLOWER),
    ("out_of_encoder", "wrist_flex", changed(FOLLOWER, "wrist_flex", range_max=4096), None),
    ("out_of_encoder", "gripper", changed(FOLLOWER, "gripper", range_min=-3), Role.LEADER),
    ("min_not_below_max", "elbow_flex", changed(FOLLOWER, "elbow_flex", range_min=3158), None),
    ("min_not_below_max", "gripper", changed(FOLLOWER, "gripper", range_min=3000), None),
    (
        "homing_unencodable",
        "shoulder_pan",
        changed(FOLLOWER, "shoulder_pan", homing_offset=2048),
        Role.FOLLOWER,
    ),
    ("homing_unencodable", "gripper", changed(FOLLOWER, "gripper", homing_offset=-5000), None),
    ("encoder_wrap", "shoulder_lift", ranged("shoulder_lift", 0, 4050), Role.FOLLOWER),
    ("encoder_wrap", "gripper", ranged("gripper", 0, 4095), Role.LEADER),
    ("encoder_wrap", "elbow_flex", ranged("elbow_flex", 100, 4000), None),
    ("barely_swept", "elbow_flex", ranged("elbow_flex", 2040, 2052), Role.FOLLOWER),
    ("barely_swept", "wrist_roll", ranged("wrist_roll", 2000, 2199), Role.LEADER),
]

WARNINGS: list[tuple[str, str, ArmCalibration, Role | None]] = [
    ("range_outside_reference", "elbow_flex", ranged("elbow_flex", 900, 3200), Role.FOLLOWER),
    ("range_outside_reference", "gripper", ranged("gripper", 1900, 2300, LEADER), Role.LEADER),
    ("drive_mode_inverted", "gripper", changed(FOLLOWER, "gripper", drive_mode=1), None),
    ("range_at_encoder_end", "shoulder_pan", ranged("shoulder_pan", 5, 2730), None),
    ("range_at_encoder_end", "wrist_flex", ranged("wrist_flex", 1766, 4095), None),
    ("homing_pose_outside_range", "elbow_flex", ranged("elbow_flex", 2200, 4000), None),
]


def case_ids(cases: Sequence[tuple[str, str | None, object, object]]) -> list[str]:
    return [f"{code}-{joint}-{i}" for i, (code, joint, *_) in enumerate(cases)]


def only(report: FileReport, code: str) -> list[str]:
    return [report.explain(f) for f in report.findings if f.code == code]


@pytest.mark.parametrize(("code", "joint", "content", "role"), ERRORS, ids=case_ids(ERRORS))
def test_each_error(
    tmp_path: Path,
    code: str,
    joint: str | None,
    content: ArmCalibration | bytes,
    role: Role | None,
) -> None:
    path = write(tmp_path / "arm.json", content)
    report = validate_file(path, role)
    assert not report.usable
    assert report.verdict == "error"
    matching = [f for f in report.findings if f.code == code]
    assert matching, [f.code for f in report.findings]
    for finding in matching:
        assert finding.level is Level.ERROR
        assert finding.joint == joint
        text = report.explain(finding)
        assert text.startswith(f"{path}: ")
        assert joint is None or joint in finding.message
        assert "recalibrate" in text or "restore a backup" in text or "check the path" in text


@pytest.mark.parametrize(("code", "joint", "calibration", "role"), WARNINGS, ids=case_ids(WARNINGS))
def test_each_warning(
    tmp_path: Path, code: str, joint: str, calibration: ArmCalibration, role: Role | None
) -> None:
    path = write(tmp_path / "arm.json", calibration)
    report = validate_file(path, role)
    assert report.usable
    assert report.verdict == "warning"
    (finding,) = [f for f in report.findings if f.code == code]
    assert finding.level is Level.WARNING
    assert finding.joint == joint
    assert report.explain(finding).startswith(f"{path}: {joint} ")


def test_unreadable_file_is_an_error_naming_it(tmp_path: Path) -> None:
    report = validate_file(tmp_path / "missing.json", Role.LEADER)
    assert [f.code for f in report.findings] == ["unreadable"]
    assert not report.usable
    assert str(tmp_path / "missing.json") in report.explain(report.findings[0])


def test_barely_swept_message(tmp_path: Path) -> None:
    calibration = ranged("elbow_flex", 2040, 2052)
    path = write(tmp_path / "f.json", calibration)
    (message,) = only(validate_file(path, Role.FOLLOWER), "barely_swept")
    assert message == (
        f"{path}: elbow_flex range is 12 ticks (it travels at least 1800 on any SO-101): "
        "the joint was barely moved during calibration; recalibrate with `so101d calibrate` "
        "(or lerobot-calibrate, then `so101d import-calibration`) and move every joint "
        "through its full range"
    )


def test_follower_band_miss_gives_the_deviation_in_sigma(tmp_path: Path) -> None:
    calibration = ranged("elbow_flex", 936, 3194)  # 2258
    path = write(tmp_path / "f.json", calibration)
    (message,) = only(validate_file(path, Role.FOLLOWER), "range_outside_reference")
    assert "elbow_flex range is 2258 ticks" in message
    assert "2222 (2204-2240), +4.0 sigma" in message


@pytest.mark.parametrize(
    ("joint", "span", "code"),
    [
        ("gripper", 199, "barely_swept"),
        ("gripper", 200, None),
        # a quarter of the joint's shortest travel on any SO-101, whatever the absolute number
        ("elbow_flex", 449, "barely_swept"),
        ("elbow_flex", 450, None),
        ("wrist_roll", 300, "barely_swept"),
        ("wrist_roll", 749, "barely_swept"),
        ("wrist_roll", 750, None),
        ("shoulder_lift", 3899, None),
        ("shoulder_lift", 3900, "encoder_wrap"),
        ("wrist_roll", 4095, None),
    ],
)
def test_error_thresholds(tmp_path: Path, joint: str, span: int, code: str | None) -> None:
    low = max(0, 2047 - span // 2)
    path = write(tmp_path / "f.json", changed(FOLLOWER, joint, range_min=low, range_max=low + span))
    report = validate_file(path, Role.FOLLOWER)
    assert [f.code for f in report.findings if f.level is Level.ERROR] == ([code] if code else [])


def test_another_motor_map_moves_the_expected_ids(tmp_path: Path) -> None:
    motor_map = {joint: 10 + i for i, joint in enumerate(JOINTS, 1)}
    calibration = {j: changed(FOLLOWER, j, id=motor_map[j])[j] for j in JOINTS}
    path = write(tmp_path / "f.json", calibration)
    assert validate_file(path, Role.FOLLOWER, motor_map).usable
    default = validate_file(path, Role.FOLLOWER)
    assert {f.code for f in default.findings} == {"bad_id"}
    with pytest.raises(ValueError, match="invalid motor map"):
        validate_file(path, Role.FOLLOWER, {"a": 1, "b": 1})


def test_infos_do_not_change_the_verdict(tmp_path: Path) -> None:
    path = write(tmp_path / "f.json", serialize_calibration(FOLLOWER) + b"\n")
    report = validate_file(path)
    assert {(f.level, f.code) for f in report.findings} == {
        (Level.INFO, "role_unknown"),
        (Level.INFO, "noncanonical_format"),
    }
    assert report.verdict == "ok"


# -- pairs ---------------------------------------------------------------------------------


def pair(tmp_path: Path, leader: ArmCalibration) -> tuple[FileReport, FileReport]:
    lead = validate_file(write(tmp_path / "leader.json", leader), Role.LEADER)
    follow = validate_file(write(tmp_path / "follower.json", FOLLOWER), Role.FOLLOWER)
    return lead, follow


def test_a_midpoint_mismatch_warns_of_a_constant_offset(tmp_path: Path) -> None:
    leader = ranged("elbow_flex", 1100, 3300, LEADER)  # midpoint 2200
    leader = changed(leader, "gripper", range_min=500, range_max=1500)  # maps range to range
    lead, follow = pair(tmp_path, leader)
    (finding,) = check_pair(lead, follow)
    assert (finding.level, finding.code, finding.joint) == (
        Level.WARNING,
        "pair_midpoint_mismatch",
        "elbow_flex",
    )
    assert str(lead.path) in finding.message
    assert str(follow.path) in finding.message
    assert "elbow_flex midpoints differ by 153 ticks (13.4 degrees)" in finding.message


def test_pair_findings_go_to_the_follower_only_for_a_real_pair(tmp_path: Path) -> None:
    leader = ranged("shoulder_pan", 1200, 3676, LEADER)
    lead, follow = pair(tmp_path, leader)
    leader_out, follower_out = with_pair_checks([lead, follow])
    assert leader_out == lead
    assert [f.code for f in follower_out.findings] == ["pair_midpoint_mismatch"]
    assert follower_out.usable
    assert with_pair_checks([follow, follow]) == [follow, follow]


# -- nothing crashes it --------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)
joint_entries = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=3),
    st.integers(-5000, 5000) | json_values,
    max_size=6,
)
calibration_like = st.dictionaries(
    st.sampled_from(JOINTS) | st.text(max_size=5), joint_entries, max_size=7
)
roles = st.sampled_from([None, Role.LEADER, Role.FOLLOWER])


def assert_sound(report: FileReport) -> None:
    """A report that renders, serializes, and has an error whenever it is not usable."""
    assert report.usable == (report.count(Level.ERROR) == 0)
    if report.calibration is None:
        assert not report.usable
    render_report(report)
    json.dumps(report_to_json(report))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "arm.json"


@given(document=json_values | calibration_like, role=roles)
def test_arbitrary_json_never_crashes_validate(
    scratch: Path, document: object, role: Role | None
) -> None:
    scratch.write_text(json.dumps(document))
    assert_sound(validate_file(scratch, role))


@given(data=st.binary(max_size=300), role=roles)
@example(data=b"[" * 100_000, role=None)
@example(data=b"9" * 5000, role=None)
@example(data=b'{"a": NaN, "b": Infinity}', role=None)
def test_arbitrary_bytes_never_crash_validate(
    scratch: Path, data: bytes, role: Role | None
) -> None:
    scratch.write_bytes(data)
    assert_sound(validate_file(scratch, role))


@given(
    spans=st.lists(
        st.tuples(st.integers(-10, 4200), st.integers(-10, 4200)), min_size=6, max_size=6
    ),
    role=roles,
)
def test_arbitrary_numbers_never_crash_validate(
    scratch: Path, spans: list[tuple[int, int]], role: Role | None
) -> None:
    ranges = dict(zip(JOINTS, spans, strict=True))
    scratch.write_bytes(serialize_calibration(arm(ranges)))
    assert_sound(validate_file(scratch, role))


def test_validate_bytes_needs_no_file() -> None:
    report = validate_bytes(serialize_calibration(FOLLOWER), Path("in-memory.json"), Role.FOLLOWER)
    assert report.findings == ()


def test_a_tools_extra_section_is_ignored_with_one_warning(tmp_path: Path) -> None:
    document: dict[str, object] = {j: m.as_dict() for j, m in FOLLOWER.items()}
    document["metadata"] = {"tool": "some-recorder", "date": "2026-11-30"}
    document["notes"] = "recalibrated after the gripper swap"
    path = tmp_path / "f.json"
    path.write_text(json.dumps(document, indent=4))
    report = validate_file(path, Role.FOLLOWER)
    assert report.usable
    assert report.calibration == FOLLOWER
    (warning,) = [f for f in report.findings if f.level is Level.WARNING]
    assert warning.code == "extra_section"
    assert "ignored 'metadata', 'notes': not a joint" in report.explain(warning)
    assert report.count(Level.ERROR) == 0


def test_a_misspelled_joint_is_still_an_error_not_an_ignored_section(tmp_path: Path) -> None:
    document: dict[str, object] = {j: m.as_dict() for j, m in FOLLOWER.items()}
    document["wrist_rol"] = {"id": 5, "range_min": 0}  # shaped like a joint entry
    path = tmp_path / "f.json"
    path.write_text(json.dumps(document, indent=4))
    report = validate_file(path, Role.FOLLOWER)
    assert not report.usable
    assert {f.code for f in report.findings if f.joint == "wrist_rol"} == {"missing_field"}
