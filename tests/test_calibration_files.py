"""Calibration files read and written byte for byte as LeRobot does, checked against real
LeRobot where it matters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from so101d.calibration.files import (
    CalibrationFileError,
    parse_calibration,
    read_calibration,
    serialize_calibration,
)
from so101d.calibration.locate import Layout, calibration_path, locate_calibration
from so101d.calibration.model import MotorCalibration, Role
from so101d.calibration.store import save_calibration
from so101d.calibration.validate import validate_file
from tests.lerobot_env import LeRobotScript
from tests.test_calibration_healthy import (
    OLD_LEROBOT_FOLLOWER,
    REAL_FOLLOWER,
    REAL_LEADER,
    REFERENCE_FOLLOWER,
    arm,
    write,
)

LEROBOT_BYTES = b"""{
    "shoulder_pan": {
        "id": 1,
        "drive_mode": 0,
        "homing_offset": -747,
        "range_min": 1797,
        "range_max": 2297
    },
    "wrist_roll": {
        "id": 5,
        "drive_mode": 0,
        "homing_offset": 12,
        "range_min": 0,
        "range_max": 4095
    }
}"""
# As LeRobot wrote it before 2025: json.dump(calib_dict, f) of parallel lists.
PRE_2025_FILE = json.dumps(
    {
        "homing_offset": [-1416, -845, 2130, 2872, 1950, -2211],
        "drive_mode": [0, 0, 1, 1, 1, 0],
        "start_pos": [1442, 843, 2166, 2849, 1988, 1835],
        "end_pos": [2440, 1869, -1106, -1848, -926, 3235],
        "calib_mode": ["DEGREE", "DEGREE", "DEGREE", "DEGREE", "DEGREE", "LINEAR"],
        "motor_names": [
            "shoulder_pan",
            "shoulder_lift",
            "elbow_flex",
            "wrist_flex",
            "wrist_roll",
            "gripper",
        ],
    }
).encode()


def test_lerobot_bytes_parse_in_file_order_and_serialize_identically() -> None:
    calibration = parse_calibration(LEROBOT_BYTES, Path("x.json"))
    assert list(calibration) == ["shoulder_pan", "wrist_roll"]
    assert calibration["shoulder_pan"] == MotorCalibration(1, 0, -747, 1797, 2297)
    assert serialize_calibration(calibration) == LEROBOT_BYTES


def test_serialized_files_have_no_trailing_newline() -> None:
    assert serialize_calibration(arm(REFERENCE_FOLLOWER)).endswith(b"}\n}")


def test_read_calibration_names_the_file_it_cannot_read(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(CalibrationFileError) as caught:
        read_calibration(missing)
    assert caught.value.path == missing
    assert [p.code for p in caught.value.problems] == ["unreadable"]
    assert str(missing) in str(caught.value)


def test_the_pre_2025_format_is_recognised_and_named(tmp_path: Path) -> None:
    path = write(tmp_path / "main_follower.json", PRE_2025_FILE)
    with pytest.raises(CalibrationFileError) as caught:
        read_calibration(path)
    (problem,) = caught.value.problems
    assert problem.code == "legacy_format"
    assert "LeRobot before 2025" in str(caught.value)
    assert "recalibrate with `so101d calibrate`" in str(caught.value)
    assert str(path) in str(caught.value)


def test_every_problem_of_a_broken_file_is_reported_at_once(tmp_path: Path) -> None:
    document = {
        "shoulder_pan": {"id": True, "drive_mode": 0, "homing_offset": 0, "range_min": 1.5},
        "gripper": [1, 2],
        "elbow_flex": {**arm(REFERENCE_FOLLOWER)["elbow_flex"].as_dict(), "speed": 3},
    }
    with pytest.raises(CalibrationFileError) as caught:
        parse_calibration(json.dumps(document).encode(), tmp_path / "x.json")
    found = {(p.code, p.joint) for p in caught.value.problems}
    assert found == {
        ("bad_type", "shoulder_pan"),  # a boolean is not an integer
        ("missing_field", "shoulder_pan"),
        ("bad_joint_entry", "gripper"),
        ("unknown_field", "elbow_flex"),
    }
    assert sum(p.code == "bad_type" for p in caught.value.problems) == 2  # id and range_min


# -- against real LeRobot ----------------------------------------------------------------

ARMS = [
    ("follower", "reference", arm(REFERENCE_FOLLOWER)),
    ("follower", "lab arm 2", arm(REAL_FOLLOWER, (-2047, -1, -300, 17, -1024, 2047))),
    ("leader", "None", arm(REAL_LEADER)),
    ("leader", "old", arm(OLD_LEROBOT_FOLLOWER, (0, 0, 0, 0, 0, 0))),
]


def lerobot(tmp_path: Path, command: str, request: object, root: Path) -> list[dict[str, object]]:
    request_file = tmp_path / f"{command}-request.json"
    request_file.write_text(json.dumps(request))
    env = {"HF_LEROBOT_CALIBRATION": str(root)}
    return LeRobotScript("calibration_files.py", command, str(request_file), env=env).finish()


@pytest.mark.lerobot
def test_files_written_by_lerobot_round_trip_byte_identical(tmp_path: Path) -> None:
    lerobot_root, our_root = tmp_path / "lerobot", tmp_path / "ours"
    request = [
        {"role": role, "id": ident, "calibration": {j: m.as_dict() for j, m in cal.items()}}
        for role, ident, cal in ARMS
    ]
    saved = lerobot(tmp_path, "save", request, lerobot_root)
    for (role, ident, calibration), result in zip(ARMS, saved, strict=True):
        located = locate_calibration(lerobot_root, Role(role), ident)
        assert located.paths == {Layout.SO: Path(str(result["path"]))}
        report = validate_file(located.paths[Layout.SO], Role(role))
        assert report.usable, [f.message for f in report.findings]
        assert report.calibration == calibration
        ours = calibration_path(our_root, Role(role), ident)
        save_calibration(ours, calibration)
        assert ours.read_bytes() == located.paths[Layout.SO].read_bytes()


@pytest.mark.lerobot
def test_lerobot_loads_the_files_we_write(tmp_path: Path) -> None:
    root = tmp_path / "ours"
    for role, ident, calibration in ARMS:
        save_calibration(calibration_path(root, Role(role), ident), calibration)
    loaded = lerobot(tmp_path, "load", [{"role": r, "id": i} for r, i, _ in ARMS], root)
    for (_, _, calibration), result in zip(ARMS, loaded, strict=True):
        assert result["calibration"] == {j: m.as_dict() for j, m in calibration.items()}
