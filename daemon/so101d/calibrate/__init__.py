"""Calibrating arms: the manual session engine (neutral pose, sweep, review, save) and its
control-socket methods. An activity above the motion guard, a sibling of teleop."""
