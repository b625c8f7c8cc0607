"""Our driver on virtual arms, the way the tests open it."""

from __future__ import annotations

from so101d.feetech import FeetechBus

PATIENCE = 0.25  # seconds our driver waits for a reply: generous on a loaded test machine


def bus_on(link: str, baudrate: int = 1_000_000) -> FeetechBus:
    """Our driver on a simulated arm, with a reply timeout that CPU contention cannot beat."""
    return FeetechBus(link, baudrate=baudrate, timeout=PATIENCE)
