"""Gravity on an SO-101 arm: the torque each joint's servo must hold, for the pose it is in.

A planar model of the arm's vertical chain (shoulder_lift, elbow_flex, wrist_flex); the pan,
roll and gripper axes carry no gravity torque. The pose at each joint's mechanical middle is
the one LeRobot's documented conversion between its two calibration eras gives
(``shoulder_lift = -(old - 90)``, ``elbow_flex = old - 90``, with the old frame's zero "fully
extended horizontally"): the upper arm vertical, the forearm horizontal. Link lengths are the
SO-101's (upper arm ~116 mm, forearm ~135 mm); the masses are an estimate of the printed links
plus their STS3215s (~55 g each), so the shoulder needs ~1/6 of its 12 V servo's stall torque
in the middle pose and about a third with the arm stretched out horizontally.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from so101d.calibration.model import JOINTS
from so101d.sim.joints import DEGREES_PER_TICK

_G = 9.81  # m/s^2
_UPPER_ARM = 0.116  # m, shoulder_lift axis to elbow_flex axis
_FOREARM = 0.135  # m, elbow_flex axis to wrist_flex axis
_UPPER_ARM_MASS = 0.10  # kg, centred on the link
_FOREARM_MASS = 0.15  # kg (with the wrist_flex servo), centred on the link
_HAND_MASS = 0.20  # kg: wrist_roll and gripper servos, gripper
_HAND_REACH = 0.06  # m, wrist_flex axis to the hand's centre of mass

_LIFT, _ELBOW, _WRIST = (
    JOINTS.index(name) for name in ("shoulder_lift", "elbow_flex", "wrist_flex")
)


@dataclass(frozen=True)
class Gravity:
    """Gravity on one arm. ``stall_torque`` (N m) is what a load of 100 % means."""

    stall_torque: float
    enabled: bool = True

    def loads(self, angles: Sequence[float]) -> tuple[float, ...]:
        """Per joint, the torque gravity applies in load units (0.1 % of ``stall_torque``),
        signed like the joint angle: positive pushes the angle up. ``angles`` in ticks."""
        torques = [0.0] * len(JOINTS)
        if self.enabled:
            for index, torque in zip((_LIFT, _ELBOW, _WRIST), _joint_torques(angles), strict=True):
                torques[index] = torque / self.stall_torque * 1000.0
        return tuple(torques)


def _joint_torques(angles: Sequence[float]) -> tuple[float, float, float]:
    """Gravity torques (N m) about shoulder_lift, elbow_flex and wrist_flex.

    Elevations are measured from the horizontal, pointing forward. A positive shoulder_lift
    angle tilts the upper arm forward (lower), a positive elbow_flex or wrist_flex angle bends
    the next link down; so gravity pushes each angle up by ``m g x``, where ``x`` is how far
    forward of the axis the load hangs.
    """
    lift, elbow, wrist = (
        math.radians(angles[i] * DEGREES_PER_TICK) for i in (_LIFT, _ELBOW, _WRIST)
    )
    upper = math.pi / 2 - lift
    fore = upper - math.pi / 2 - elbow
    hand = fore - wrist
    upper_x, fore_x, hand_x = (math.cos(a) for a in (upper, fore, hand))
    at_wrist = _HAND_MASS * _HAND_REACH * hand_x
    at_elbow = at_wrist + _HAND_MASS * _FOREARM * fore_x + _FOREARM_MASS * _FOREARM / 2 * fore_x
    at_shoulder = (
        at_elbow
        + (_HAND_MASS + _FOREARM_MASS) * _UPPER_ARM * upper_x
        + _UPPER_ARM_MASS * _UPPER_ARM / 2 * upper_x
    )
    return at_shoulder * _G, at_elbow * _G, at_wrist * _G
