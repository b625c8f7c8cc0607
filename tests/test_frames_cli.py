"""``so101d frames convert`` and ``list``, run as a person runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from so101d.calibration.model import JOINTS
from so101d.frames import Frame, convert
from tests.commands import so101d
from tests.test_calibration_healthy import REAL_FOLLOWER, arm, write

CALIBRATION = arm(REAL_FOLLOWER)
RAW = [1500, 2047, 3000, 1000, 4000, 2500]


@pytest.fixture
def calibration_file(tmp_path: Path) -> Path:
    return write(tmp_path / "follower.json", CALIBRATION)


def frames(*args: str) -> list[str]:
    result = so101d("frames", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def convert_raw_file(calibration_file: Path, target: str, rows: Path) -> str:
    """stdout of converting a file of raw rows to ``target``."""
    calibration = ("--calibration", str(calibration_file))
    result = so101d("frames", "convert", *calibration, "--from", "raw", "--to", target, str(rows))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_six_values_convert_and_come_back_to_the_same_ticks(calibration_file: Path) -> None:
    calibration = ("--calibration", str(calibration_file))
    there = frames("convert", *calibration, "--from", "raw", "--to", "mujoco_old", *map(str, RAW))
    expected = convert(
        dict(zip(JOINTS, RAW, strict=True)), Frame.RAW, Frame.MUJOCO_OLD, CALIBRATION
    )
    assert [float(v) for v in there] == pytest.approx(list(expected.values()), rel=1e-11)
    back = frames("convert", *calibration, "--from", "mujoco_old", "--to", "raw", *there)
    assert back == [str(tick) for tick in RAW]


def test_negative_values_are_values_not_options() -> None:
    out = frames(
        "convert", "--from", "lerobot_legacy", "--to", "lerobot", "-5", "119.9", "-3", "0", "0", "0"
    )
    assert out == ["-5", "-29.9", "-93", "0", "0", "0"]


def test_a_json_file_of_keyed_rows_keeps_its_shape(tmp_path: Path, calibration_file: Path) -> None:
    rows = [dict(zip(JOINTS, RAW, strict=True)), {"gripper": 1899}]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows))
    out = convert_raw_file(calibration_file, "lerobot", path)
    converted = json.loads(out)
    assert converted[0] == pytest.approx(convert(rows[0], Frame.RAW, Frame.LEROBOT, CALIBRATION))
    assert converted[1] == {"gripper": 0.0}


def test_a_csv_file_keeps_its_header(tmp_path: Path, calibration_file: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(",".join(JOINTS) + "\n" + ",".join(map(str, RAW)) + "\n")
    out = convert_raw_file(calibration_file, "encoder", path)
    header, row = out.splitlines()
    assert header == ",".join(JOINTS)
    expected = convert(dict(zip(JOINTS, RAW, strict=True)), Frame.RAW, Frame.ENCODER, CALIBRATION)
    assert row == ",".join(str(expected[j]) for j in JOINTS)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["1", "2", "3"], "give 6 values"),
        (["1", "2", "3", "4", "5", "x"], "'x' is not a number"),
        (["/nonexistent/rows.json"], "/nonexistent/rows.json: cannot read it"),
    ],
)
def test_bad_values_are_explained(values: list[str], message: str) -> None:
    result = so101d("frames", "convert", "--from", "lerobot", "--to", "mujoco", *values)
    assert result.returncode == 1
    assert message in result.stderr


def test_a_missing_calibration_is_asked_for() -> None:
    result = so101d("frames", "convert", "--from", "lerobot", "--to", "raw", *["0"] * 6)
    assert result.returncode == 1
    assert "needs the arm's LeRobot calibration file (--calibration FILE)" in result.stderr


def test_list_names_every_frame_with_its_units_and_zero() -> None:
    result = so101d("frames", "list")
    assert result.returncode == 0
    for frame in Frame:
        assert f"\n{frame} " in "\n" + result.stdout
    assert result.stdout.count("zero: ") == len(Frame)
