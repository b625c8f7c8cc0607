"""Virtual SO-101 arms: stateful STS3215 servo models behind real ptys, with faults on demand.

Our driver, LeRobot and feetech-cli open ``VirtualArm.link`` like a real USB serial device and
cannot tell the difference. ``so101d sim`` and ``so101d demo`` run a ``VirtualPair``.
"""

from so101d.calibration.model import JOINTS
from so101d.sim.arm import VirtualArm, VirtualPair, VirtualServo
from so101d.sim.faults import ActiveFault, Fault
from so101d.sim.fidelity import IDEAL, Fidelity
from so101d.sim.servo import Telemetry
from so101d.sim.usb import UsbLatency

__all__ = [
    "IDEAL",
    "JOINTS",
    "ActiveFault",
    "Fault",
    "Fidelity",
    "Telemetry",
    "UsbLatency",
    "VirtualArm",
    "VirtualPair",
    "VirtualServo",
]
