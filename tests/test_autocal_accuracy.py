"""The automatic calibration's accuracy over 20 different virtual arms, leader and follower.

Each arm (``arm_seed`` 0..19: travel, encoder mounts anywhere on the turn, rest pose) runs on
a virtual clock through the real driver and the real wire codec (``tests.autocal_runs``), so
a minute of simulated time costs seconds. Every saved stop within ±50 ticks of the arm's
true stop, the whole arm in under 60 s of simulated time, a temperature rise under 10 °C,
the file valid and in LeRobot's bytes; real LeRobot reads the same angles from it.

The leaders run at 5 V on servos rated 7.4 V: their shoulders lift the arm only with the elbow
folded (``tests.test_autocal_gravity``), and every joint of every arm must be saved.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from so101d.calibration.files import read_calibration, serialize_calibration
from so101d.calibration.model import JOINTS, Role
from so101d.calibration.normalize import NormMode, normalize
from so101d.calibration.validate import Level, check_calibration
from so101d.sim import VirtualArm
from tests.arms import bus_on
from tests.autocal_runs import ArmResult, calibrate_virtual_arm
from tests.lerobot_env import LeRobotScript

ARM_SEEDS = range(20)
STOP_TOLERANCE = 50  # ticks
SIMULATED_LIMIT_S = 60.0
TEMPERATURE_RISE_LIMIT_C = 10


def judge(result: ArmResult) -> None:
    assert result.sim_seconds < SIMULATED_LIMIT_S, result
    assert result.peak_rise_c < TEMPERATURE_RISE_LIMIT_C, result
    for joint, error in result.errors.items():
        assert error <= STOP_TOLERANCE, (joint, error, result)
    assert result.failed == {}, result.failed
    assert result.path is not None
    data = result.path.read_bytes()
    calibration = read_calibration(result.path)
    assert data == serialize_calibration(calibration)  # indent 4, key order, no newline
    assert list(json.loads(data)) == list(JOINTS)
    findings = check_calibration(calibration, Role(result.role))
    assert [f.message for f in findings if f.level is Level.ERROR] == []


@pytest.mark.parametrize("role", ["follower", "leader"])
@pytest.mark.parametrize("arm_seed", ARM_SEEDS)
def test_every_stop_within_50_ticks_in_under_a_minute(
    tmp_path: Path, role: str, arm_seed: int
) -> None:
    judge(calibrate_virtual_arm(tmp_path, role, arm_seed))


@pytest.mark.lerobot
@pytest.mark.parametrize("role", ["follower", "leader"])
def test_real_lerobot_reads_the_same_angles_from_the_saved_file(tmp_path: Path, role: str) -> None:
    result = calibrate_virtual_arm(tmp_path, role, arm_seed=0)
    assert result.path is not None, result.failed
    calibration = read_calibration(result.path)
    # The same arm again (same seed) in real time, its EEPROM holding the saved calibration.
    with VirtualArm(role, tmp_path / "again", arm_seed=0) as arm:
        for motor in calibration.values():
            servo = arm.servo(motor.id)
            servo.set("Homing_Offset", motor.homing_offset)
            servo.set("Min_Position_Limit", motor.range_min)
            servo.set("Max_Position_Limit", motor.range_max)
        arm.hold({"shoulder_pan": 0.7, "elbow_flex": 0.2, "gripper": 0.4})
        assert arm.wait_idle(timeout=30)
        # read_angles.py reads as a leader (limp): the normalisation is the same for both.
        directory = result.path.parent / "lerobot"
        directory.mkdir()
        (directory / "arm.json").write_bytes(result.path.read_bytes())
        (lerobot,) = LeRobotScript(
            "read_angles.py", "leader", arm.link, "arm", str(directory)
        ).finish()
        assert lerobot["calibrated"]
        with bus_on(arm.link) as bus:
            raw = bus.sync_read("Present_Position", [1, 2, 3, 4, 5, 6])
    for joint, motor in zip(JOINTS, raw, strict=True):
        mode = NormMode.RANGE_0_100 if joint == "gripper" else NormMode.DEGREES
        ours = normalize(raw[motor], calibration[joint], mode)
        assert abs(lerobot["positions"][joint] - ours) < 0.1, (joint, lerobot, ours)
