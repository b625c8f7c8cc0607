"""Asking each motor until it answers: bounded retries, the bus resynchronised after each miss.

A busy CPU (a Pi at boot, a loaded CI machine) stretches replies past the bus timeout, so one
missed reply proves nothing. Each miss is followed by :meth:`FeetechBus.resync`, which waits
out a late reply (so it is never taken for the answer to the next request) and counts its
bytes: a motor is *absent* only when nothing at all came back after any of its tries for the
whole window; one whose bytes came late or garbled is *troubled*, a transient state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from so101d.feetech.errors import BusError, BusTimeout, CorruptReply
from so101d.feetech.protocol import FrameReader

T = TypeVar("T")

FIRST_PAUSE_S = 0.01  # between rounds of retries, doubling up to MAX_PAUSE_S
MAX_PAUSE_S = 0.2


class Resyncing(Protocol):
    timeout: float

    def resync(self) -> bytes: ...


@dataclass
class Tries(Generic[T]):
    """What one motor did over its tries."""

    motor: int
    answer: T | None = None
    answered: bool = False
    tries: int = 0
    late: int = 0  # timed out, yet a reply arrived while the bus resynchronised
    corrupt: int = 0  # what came was unusable (checksum, ID, length, cut short), in time or not
    silent: int = 0  # nothing at all on the line
    last_error: BusError | None = None

    @property
    def absent(self) -> bool:
        """Never answered and never sent a byte: nothing suggests the motor is there."""
        return not self.answered and not self.late and not self.corrupt

    @property
    def troubled(self) -> bool:
        """Never answered usably, but something came back: a slow or noisy bus."""
        return not self.answered and not self.absent

    @property
    def retried(self) -> bool:
        return self.answered and self.tries > 1


def roll_call(
    bus: Resyncing,
    motors: Iterable[int],
    ask: Callable[[int], T],
    within_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[int, Tries[T]]:
    """Ask every motor (``ask(motor)``) in rounds until each answered or ``within_s`` passed.

    Every motor gets at least one try; motors that answered are not asked again. Other bus
    errors (a vanished port) propagate.
    """
    results = {motor: Tries[T](motor) for motor in motors}
    deadline = clock() + within_s
    pause = FIRST_PAUSE_S
    while True:
        for tries in results.values():
            if not tries.answered:
                _try(bus, tries, ask)
        remaining = deadline - clock()
        if all(t.answered for t in results.values()) or remaining <= 0:
            return results
        sleep(min(pause, remaining))
        pause = min(MAX_PAUSE_S, pause * 2)


def _garbled(data: bytes) -> bool:
    """True when ``data`` holds no well-formed status packet, only damaged frames or noise."""
    reader = FrameReader()
    reader.feed(data)
    return reader.next_packet() is None


def _try(bus: Resyncing, tries: Tries[T], ask: Callable[[int], T]) -> None:
    tries.tries += 1
    try:
        tries.answer = ask(tries.motor)
    except BusTimeout as exc:
        tries.last_error = exc
        drained = bus.resync()
        if not drained:
            tries.silent += 1
        elif _garbled(drained):
            tries.corrupt += 1
        else:
            tries.late += 1
    except CorruptReply as exc:
        tries.last_error = exc
        tries.corrupt += 1
        bus.resync()
    else:
        tries.answered = True
        if tries.tries > 1:  # a reply to an earlier try may still be on its way
            bus.resync()
