"""Normalization identical to LeRobot's, in every mode, both directions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from so101d.calibration.model import JOINTS, MotorCalibration
from so101d.calibration.normalize import NormMode, joint_norm_modes, normalize, unnormalize
from tests.lerobot_env import LeRobotScript


def motor(range_min: int, range_max: int, drive_mode: int = 0) -> MotorCalibration:
    return MotorCalibration(1, drive_mode, 0, range_min, range_max)


def test_the_documented_example() -> None:
    calibration = motor(1000, 3000)
    assert normalize(2100, calibration, NormMode.DEGREES) == pytest.approx(8.791, abs=1e-3)
    assert normalize(2100, calibration, NormMode.RANGE_M100_100) == pytest.approx(10.0)
    assert normalize(2100, calibration, NormMode.RANGE_0_100) == pytest.approx(55.0)


def test_range_modes_clamp_and_follow_drive_mode() -> None:
    assert normalize(5000, motor(1000, 3000), NormMode.RANGE_M100_100) == 100.0
    assert normalize(0, motor(1000, 3000), NormMode.RANGE_0_100) == 0.0
    assert normalize(1500, motor(1000, 3000, drive_mode=1), NormMode.RANGE_M100_100) == 50.0
    assert normalize(1500, motor(1000, 3000, drive_mode=1), NormMode.RANGE_0_100) == 75.0
    assert unnormalize(250.0, motor(1000, 3000), NormMode.RANGE_M100_100) == 3000
    assert unnormalize(25.0, motor(1000, 3000, drive_mode=1), NormMode.RANGE_0_100) == 2500


def test_degrees_neither_clamp_nor_invert() -> None:
    inverted = motor(1000, 3000, drive_mode=1)
    assert normalize(5000, inverted, NormMode.DEGREES) == normalize(
        5000, motor(1000, 3000), NormMode.DEGREES
    )
    assert unnormalize(-200.0, motor(1000, 3000), NormMode.DEGREES) == -275  # LeRobot's example


def test_unnormalize_truncates_toward_zero() -> None:
    # -0.1 degrees around a midpoint of 0.5 is -0.64 ticks: int() gives 0, floor would give -1
    assert unnormalize(-0.1, motor(0, 1), NormMode.DEGREES) == 0


def test_equal_min_and_max_is_refused() -> None:
    with pytest.raises(ValueError, match="range_min and range_max are both 2047"):
        normalize(2047, motor(2047, 2047), NormMode.RANGE_0_100)


@pytest.mark.parametrize("use_degrees", [True, False])
def test_joint_modes_as_in_lerobot(use_degrees: bool) -> None:
    body = NormMode.DEGREES if use_degrees else NormMode.RANGE_M100_100
    modes = joint_norm_modes(use_degrees)
    assert list(modes) == list(JOINTS)
    assert modes == {**dict.fromkeys(JOINTS, body), "gripper": NormMode.RANGE_0_100}


# -- against real LeRobot ----------------------------------------------------------------

CALIBRATIONS = [
    (drive_mode, low, high)
    for drive_mode in (0, 1)
    for low, high in (
        (0, 4095),
        (1797, 2297),
        (884, 3320),
        (1000, 3000),
        (2047, 2048),
        (3000, 1000),
    )  # min above max: LeRobot's clamp still gives an answer
]
RAW = [*range(-50, 4150, 7), 0, 1000, 2047, 2048, 3000, 4095]
VALUES = [round(-210 + 0.37 * i, 2) for i in range(1136)] + [-100.0, 0.0, 100.0, 33.3, 1e-9]


@pytest.mark.lerobot
def test_normalization_equals_lerobot_on_a_grid(tmp_path: Path) -> None:
    request = tmp_path / "grid.json"
    request.write_text(json.dumps({"calibrations": CALIBRATIONS, "raw": RAW, "values": VALUES}))
    results = LeRobotScript("calibration_normalize.py", str(request)).finish()
    assert len(results) == len(CALIBRATIONS) * len(NormMode)
    for result in results:
        drive_mode, low, high = result["calibration"]
        calibration = motor(low, high, drive_mode)
        mode = NormMode(result["mode"])
        ours = [normalize(raw, calibration, mode) for raw in RAW]
        assert ours == result["normalized"], (calibration, mode)
        back = [unnormalize(value, calibration, mode) for value in VALUES]
        assert back == result["unnormalized"], (calibration, mode)
