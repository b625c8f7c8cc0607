"""LeRobot's own calibration routine on one arm.

Usage: calibrate.py ROLE PORT ID CALIBRATION_DIR   (ROLE is leader or follower)
Answer the "middle of its range" prompt, then stop the range recording, with empty lines.
"""

import sys

from so101 import emit, follower, leader

role, port, ident, calibration_dir = sys.argv[1:5]
arm = (
    follower(port, ident, calibration_dir)
    if role == "follower"
    else leader(port, ident, calibration_dir)
)
arm.connect(calibrate=False)
arm.calibrate()
arm.disconnect()
emit(path=str(arm.calibration_fpath), calibration={k: vars(v) for k, v in arm.calibration.items()})
