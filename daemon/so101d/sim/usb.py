"""The USB serial adapter's timing: what a CH343 board adds to each transaction.

A pty delivers bytes in microseconds; a real adapter moves them in USB frames. Measured by
others on SO-101 boards (WCH CH343, 1a86:55d3): about 1-2 ms per transaction, a six-motor
sync read p99.9 of 1.95 ms including its ~0.6 ms of wire time, and occasional multi-millisecond
stalls. The default model adds to every request, before it reaches the servos, a fixed
0.6 ms plus up to 0.6 ms of uniform jitter, and with probability 1/1000 a stall of 2-8 ms.
Requests stay in order: a stalled one holds up those behind it, as a USB pipe does.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class UsbLatency:
    fixed: float = 0.0006  # seconds
    jitter: float = 0.0006  # seconds, uniform 0..jitter
    stall_rate: float = 0.001  # chance per transaction
    stall_min: float = 0.002  # seconds
    stall_max: float = 0.008

    @classmethod
    def none(cls) -> UsbLatency:
        """A pty's own timing: nothing added (for unit tests that time the wire exactly)."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0)

    @classmethod
    def parse(cls, text: str) -> UsbLatency:
        """``ch343``, ``none``, or ``FIXED_MS,JITTER_MS,STALL_RATE,STALL_MIN_MS,STALL_MAX_MS``."""
        if text == "ch343":
            return cls()
        if text == "none":
            return cls.none()
        parts = text.split(",")
        try:
            fixed, jitter, rate, low, high = (float(p) for p in parts)
        except ValueError:
            raise ValueError(
                f"USB latency {text!r} is not ch343, none or "
                "FIXED_MS,JITTER_MS,STALL_RATE,STALL_MIN_MS,STALL_MAX_MS"
            ) from None
        if min(fixed, jitter, rate, low, high) < 0 or rate > 1 or low > high:
            raise ValueError(
                f"USB latency {text!r}: times must be >= 0, the stall rate within 0..1 "
                "and the shortest stall no longer than the longest"
            )
        return cls(fixed / 1000, jitter / 1000, rate, low / 1000, high / 1000)

    def sampler(self, seed: str) -> Callable[[], float]:
        """Seconds to add to each transaction, reproducibly from ``seed``."""
        rng = random.Random(f"so101d.sim/usb/{seed}")

        def sample() -> float:
            delay = self.fixed + rng.uniform(0.0, self.jitter) if self.jitter else self.fixed
            if self.stall_rate and rng.random() < self.stall_rate:
                delay += rng.uniform(self.stall_min, self.stall_max)
            return delay

        return sample
