"""LeRobot saving, loading and locating calibration files, the way lerobot-calibrate does.

Usage: calibration_files.py save|load|roots REQUEST_FILE

save   REQUEST: [{"role", "id", "calibration": {joint: {id, drive_mode, ...}}}, ...]. Builds
       each arm without a calibration_dir (so LeRobot picks the path under its calibration
       root, taken from the environment) and saves with the arm's own _save_calibration.
load   REQUEST: [{"role", "id"}, ...]. Builds each arm, which loads its file if there is one.
       Both report {"role", "id", "path", "calibration"} per arm.
roots  REQUEST: [{env var: value}, ...]. For each environment (HOME and the HF_* and XDG
       variables replaced by it), reports {"env", "root"}: LeRobot's HF_LEROBOT_CALIBRATION.
"""

import importlib
import json
import os
import sys
from dataclasses import asdict

import huggingface_hub.constants as hub_constants
import lerobot.utils.constants as lerobot_constants
from lerobot.motors import MotorCalibration
from lerobot.robots.so_follower import SOFollower, SOFollowerRobotConfig
from lerobot.teleoperators.so_leader import SOLeader, SOLeaderTeleopConfig
from so101 import emit

ROOT_VARIABLES = ("HOME", "XDG_CACHE_HOME", "HF_HOME", "HF_LEROBOT_HOME", "HF_LEROBOT_CALIBRATION")


def build(role, ident):
    if role == "follower":
        return SOFollower(SOFollowerRobotConfig(port="/dev/null", id=ident))
    return SOLeader(SOLeaderTeleopConfig(port="/dev/null", id=ident))


def report(arm, request):
    calibration = {joint: asdict(motor) for joint, motor in arm.calibration.items()}
    emit(
        role=request["role"],
        id=request["id"],
        path=str(arm.calibration_fpath),
        calibration=calibration,
    )


def save(requests):
    for request in requests:
        arm = build(request["role"], request["id"])
        arm.calibration = {
            joint: MotorCalibration(**fields) for joint, fields in request["calibration"].items()
        }
        arm._save_calibration()
        report(arm, request)


def load(requests):
    for request in requests:
        report(build(request["role"], request["id"]), request)


def roots(environments):
    for env in environments:
        for name in ROOT_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(env)
        importlib.reload(hub_constants)
        importlib.reload(lerobot_constants)
        emit(env=env, root=str(lerobot_constants.HF_LEROBOT_CALIBRATION))


command, request_file = sys.argv[1:3]
with open(request_file) as f:
    {"save": save, "load": load, "roots": roots}[command](json.load(f))
