"""How much of a real arm's trouble a virtual arm shows: all of it by default.

``IDEAL`` is for the few tests that check arithmetic a real arm would blur (a mirror
to within a tick, wire timing to the microsecond); each says why it needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from so101d.sim.usb import UsbLatency


@dataclass(frozen=True)
class Fidelity:
    gravity: bool = True  # joints carry the arm's weight; a limp follower sinks
    goal_enables_torque: bool = True  # a Goal_Position write switches a limp servo's torque on
    usb: UsbLatency = field(default_factory=UsbLatency)  # the CH343 adapter's timing


IDEAL = Fidelity(gravity=False, goal_enables_torque=False, usb=UsbLatency.none())
