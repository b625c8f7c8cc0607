"""The servo operating settings a session needs, as LeRobot's ``configure()`` writes them.

A servo left in wheel mode spins on Goal_Position writes, and one with the Phase register's
multi-turn bit set reports positions outside 0..4095, so these are checked at every session
start and written (by the arm guard, torque off) only where they differ, sparing EEPROM wear.
Sources: LeRobot ``SOFollower.configure`` / ``SOLeader.configure`` and
``FeetechMotorsBus.configure_motors`` (v0.6.0 for the Phase fix, PR #3373); values in
``shared/reference/lerobot-feetech.md`` §3.6.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from so101d.arm import Arm
from so101d.calibration.model import GRIPPER, Role

_PHASE_MULTI_TURN = 0x10
ACCELERATION = 254  # configure_motors(acceleration=254), in 100 ticks/s² (0 = no limit)


@dataclass(frozen=True)
class Setting:
    register: str
    wanted: Callable[[int], int]  # the value to hold, given the present one
    roles: tuple[Role, ...] = (Role.LEADER, Role.FOLLOWER)
    joints: tuple[str, ...] | None = None  # None: every joint
    text: str = ""

    def applies_to(self, role: Role, joint: str) -> bool:
        return role in self.roles and (self.joints is None or joint in self.joints)


def _fixed(value: int) -> Callable[[int], int]:
    return lambda _present: value


_FOLLOWER = (Role.FOLLOWER,)

SETTINGS: tuple[Setting, ...] = (
    Setting("Operating_Mode", _fixed(0), text="position mode"),
    Setting("Phase", lambda p: p & ~_PHASE_MULTI_TURN, text="single-turn readings"),
    Setting("Return_Delay_Time", _fixed(0), text="answer without delay"),
    # RAM: back to 0 whenever the servo resets, which is how a reset is noticed mid-session.
    Setting("Acceleration", _fixed(ACCELERATION), text="LeRobot's acceleration"),
    Setting("P_Coefficient", _fixed(16), _FOLLOWER),
    Setting("I_Coefficient", _fixed(0), _FOLLOWER),
    Setting("D_Coefficient", _fixed(32), _FOLLOWER),
    Setting("Max_Torque_Limit", _fixed(500), _FOLLOWER, (GRIPPER,)),
    Setting("Protection_Current", _fixed(250), _FOLLOWER, (GRIPPER,)),
    Setting("Overload_Torque", _fixed(25), _FOLLOWER, (GRIPPER,)),
)


@dataclass(frozen=True)
class SettingChange:
    joint: str
    motor: int
    register: str
    present: int
    wanted: int

    def describe(self) -> str:
        return f"{self.joint} {self.register} {self.present} -> {self.wanted}"


def setting_changes(arm: Arm) -> list[SettingChange]:
    """What differs from :data:`SETTINGS` on ``arm`` (read only; bus errors propagate)."""
    changes = []
    for setting in SETTINGS:
        joints = [j for j in arm.joints if setting.applies_to(arm.role, j)]
        if not joints:
            continue
        present = arm.sync_read(setting.register)
        for joint in joints:
            wanted = setting.wanted(present[joint])
            if wanted != present[joint]:
                changes.append(
                    SettingChange(
                        joint, arm.motor_ids[joint], setting.register, present[joint], wanted
                    )
                )
    return changes
