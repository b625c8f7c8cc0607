"""The only code that moves an arm: the motion gate, the arm guard, the leader mapping and
the servo settings. See :mod:`so101d.motion.guard`."""

from so101d.motion.gate import MotionGate, MotionRefused
from so101d.motion.guard import (
    TICKS_PER_DEGREE,
    ArmGuard,
    MotionLimits,
    Release,
    degrees_to_ticks,
)
from so101d.motion.leader import Glitch, LeaderMapping, LeaderTracker, seam_delta
from so101d.motion.settings import SETTINGS, SettingChange, setting_changes

__all__ = [
    "SETTINGS",
    "TICKS_PER_DEGREE",
    "ArmGuard",
    "Glitch",
    "LeaderMapping",
    "LeaderTracker",
    "MotionGate",
    "MotionLimits",
    "MotionRefused",
    "Release",
    "SettingChange",
    "degrees_to_ticks",
    "seam_delta",
    "setting_changes",
]
