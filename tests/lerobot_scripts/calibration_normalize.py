"""LeRobot's normalization (MotorsBus._normalize/_unnormalize) on a grid of values.

Usage: calibration_normalize.py REQUEST_FILE
REQUEST: {"calibrations": [[drive_mode, range_min, range_max], ...], "raw": [int, ...],
"values": [float, ...]}. For every calibration and every MotorNormMode, reports
{"calibration", "mode", "normalized": [per raw], "unnormalized": [per value]}.
"""

import json
import sys

from lerobot.motors import Motor, MotorCalibration, MotorNormMode
from lerobot.motors.feetech import FeetechMotorsBus
from so101 import emit

with open(sys.argv[1]) as f:
    request = json.load(f)

for drive_mode, range_min, range_max in request["calibrations"]:
    for mode in MotorNormMode:
        bus = FeetechMotorsBus(
            port="/dev/null",
            motors={"joint": Motor(1, "sts3215", mode)},
            calibration={"joint": MotorCalibration(1, drive_mode, 0, range_min, range_max)},
        )
        emit(
            calibration=[drive_mode, range_min, range_max],
            mode=mode.value,
            normalized=[bus._normalize({1: raw})[1] for raw in request["raw"]],
            unnormalized=[bus._unnormalize({1: value})[1] for value in request["values"]],
        )
