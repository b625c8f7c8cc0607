"""LeRobot reading an arm's joints through its calibration file, as teleop would.

Usage: read_angles.py leader|follower PORT ID CALIBRATION_DIR
Reports {"calibrated": is_calibrated, "positions": {joint: degrees, gripper 0..100}}.
Only the leader is supported as a limp arm: LeRobot's follower configure() switches torque on.
"""

import sys

from so101 import emit, leader

role, port, ident, calibration_dir = sys.argv[1:5]
if role != "leader":
    sys.exit("read_angles.py reads a leader only (a follower would get torque)")
arm = leader(port, ident, calibration_dir)
arm.connect(calibrate=False)
action = arm.get_action()
emit(calibrated=arm.is_calibrated, positions={k.removesuffix(".pos"): v for k, v in action.items()})
arm.disconnect()
