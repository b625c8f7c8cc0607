"""What LeRobot raises when the follower's board is unplugged mid-teleop.

Usage: unplug.py PORT CALIBRATION_DIR   (calibration id "follower")
"""

import sys
import time

from so101 import describe, emit, follower

port, calibration_dir = sys.argv[1:3]
robot = follower(port, "follower", calibration_dir)
robot.connect()
emit(event="connected")

deadline = time.monotonic() + 30
first = None
while first is None and time.monotonic() < deadline:
    try:
        robot.get_observation()
    except Exception as exc:
        first = exc
if first is None:
    emit(first=None)
    sys.exit(1)
emit(first=describe(first))
try:
    robot.get_observation()
    emit(second=None)
except Exception as exc:
    emit(second=describe(exc))
