"""SOLeader -> SOFollower with LeRobot's own teleop loop.

Usage: teleop.py LEADER_PORT FOLLOWER_PORT CALIBRATION_DIR SECONDS FPS
Both arms find their calibration files (ids "leader" and "follower") in CALIBRATION_DIR;
answer LeRobot's "use provided calibration file" prompts with an empty line on stdin.
"""

import sys

from lerobot.processor import make_default_processors
from lerobot.scripts.lerobot_teleoperate import teleop_loop
from so101 import emit, follower, leader

leader_port, follower_port, calibration_dir, seconds, fps = sys.argv[1:6]
teleop = leader(leader_port, "leader", calibration_dir)
robot = follower(follower_port, "follower", calibration_dir)
teleop.connect()
robot.connect()

iterations = 0
send_action = robot.send_action


def counting_send_action(action):  # type: ignore[no-untyped-def]
    global iterations
    iterations += 1
    return send_action(action)


robot.send_action = counting_send_action  # type: ignore[method-assign]
emit(event="teleop started")
teleop_loop(teleop, robot, int(fps), *make_default_processors(), duration=float(seconds))
last_action = teleop.get_action()
last_observation = robot.get_observation()
teleop.disconnect()
robot.disconnect()
emit(iterations=iterations, action=last_action, observation=last_observation)
