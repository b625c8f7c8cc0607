"""Faults on demand: what can be injected into a virtual arm, and the bookkeeping of active ones.

Reply faults (SILENCE, CORRUPT_CHECKSUM, LATE_REPLY, WRONG_ID) spoil status packets on their way
out; the servos still act on every request. They may be limited to the next ``count`` replies.
The others change the arm itself: a motor off the bus, the supply sagging, a motor overheating,
a joint jammed. ``motor`` is the motor's place on the arm (1..6, its factory ID); ``None`` means
every motor.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

_Number = TypeVar("_Number", int, float)


class Fault(enum.Enum):
    """Each value is the fault's name in the ``so101d sim`` console."""

    SILENCE = "silence"  # no servo answers anything
    CORRUPT_CHECKSUM = "corrupt-checksum"  # replies carry a wrong checksum
    LATE_REPLY = "late-reply"  # replies are delayed by ``value`` seconds
    WRONG_ID = "wrong-id"  # replies carry the motor's ID + 1
    MISSING_MOTOR = "missing-motor"  # the motor is off the bus: hears and answers nothing
    BROWNOUT = "brownout"  # the supply sags to ``value`` volts
    OVERHEAT = "overheat"  # the motor's temperature is held at ``value`` C
    JAM = "jam"  # the motor's joint cannot move

    @property
    def on_replies(self) -> bool:
        return self in _REPLY_FAULTS

    @property
    def per_motor(self) -> bool:
        return self is not Fault.BROWNOUT


_REPLY_FAULTS = frozenset((Fault.SILENCE, Fault.CORRUPT_CHECKSUM, Fault.LATE_REPLY, Fault.WRONG_ID))
# What ``value`` means per fault, and the order of positional words in the console.
VALUE_UNITS = {Fault.LATE_REPLY: "seconds", Fault.BROWNOUT: "volts", Fault.OVERHEAT: "celsius"}
_POSITIONAL: dict[Fault, tuple[str, ...]] = {
    Fault.SILENCE: (),
    Fault.CORRUPT_CHECKSUM: ("motor",),
    Fault.LATE_REPLY: ("value",),
    Fault.WRONG_ID: ("motor",),
    Fault.MISSING_MOTOR: ("motor",),
    Fault.BROWNOUT: ("value",),
    Fault.OVERHEAT: ("motor", "value"),
    Fault.JAM: ("motor",),
}
DEFAULT_LATE_REPLY = 0.1  # seconds


@dataclass(frozen=True)
class ActiveFault:
    fault: Fault
    motor: int | None = None
    remaining: int | None = None  # replies still to spoil; None = until cleared
    value: float | None = None

    def describe(self) -> str:
        words = [self.fault.value]
        if self.motor is not None:
            words.append(f"motor {self.motor}")
        if self.value is not None:
            words.append(f"{self.value:g} {VALUE_UNITS[self.fault]}")
        if self.remaining is not None:
            words.append(f"{self.remaining} more")
        return " ".join(words)


@dataclass(frozen=True)
class FaultRequest:
    """The arguments of one ``inject`` call."""

    fault: Fault
    motor: int | None = None
    count: int | None = None
    value: float | None = None


def validate(request: FaultRequest, motors: Sequence[int]) -> None:
    """Raise ValueError for a request that makes no sense on an arm with these motors."""
    fault = request.fault
    if request.motor is not None and not fault.per_motor:
        raise ValueError(f"{fault.value} concerns the whole arm, not one motor")
    if request.motor is not None and request.motor not in motors:
        raise ValueError(f"motor {request.motor} is not on this arm (motors {list(motors)})")
    if request.count is not None and not fault.on_replies:
        raise ValueError(f"count applies to reply faults only, not to {fault.value}")
    if request.count is not None and request.count < 1:
        raise ValueError(f"count must be at least 1, not {request.count}")
    if request.value is not None and fault not in VALUE_UNITS:
        raise ValueError(f"{fault.value} takes no value")
    if request.value is not None and request.value < 0:
        raise ValueError(f"{fault.value} needs a value of at least 0, not {request.value:g}")


class FaultBook:
    """The faults active on one arm. Not thread-safe: the arm locks."""

    def __init__(self) -> None:
        self._active: list[ActiveFault] = []

    def add(self, request: FaultRequest) -> None:
        """Activate a fault, replacing the same fault on the same motor."""
        self._active = [
            f for f in self._active if (f.fault, f.motor) != (request.fault, request.motor)
        ]
        self._active.append(ActiveFault(request.fault, request.motor, request.count, request.value))

    def clear(self, fault: Fault | None = None) -> None:
        self._active = [f for f in self._active if fault is not None and f.fault is not fault]

    def active(self) -> tuple[ActiveFault, ...]:
        return tuple(self._active)

    def find(self, fault: Fault, motor: int | None = None) -> ActiveFault | None:
        """The active fault of this kind affecting ``motor`` (None: any motor)."""
        for active in self._active:
            if active.fault is fault and (motor is None or active.motor in (None, motor)):
                return active
        return None

    def fire(self, fault: Fault, motor: int) -> ActiveFault | None:
        """Use up one reply's worth of a reply fault affecting ``motor``; None if none applies."""
        active = self.find(fault, motor)
        if active is None or active.remaining is None:
            return active
        index = self._active.index(active)
        if active.remaining > 1:
            self._active[index] = replace(active, remaining=active.remaining - 1)
        else:
            del self._active[index]
        return active


def parse_fault(words: Sequence[str]) -> FaultRequest:
    """Parse ``KIND [ARG...] [motor=N] [value=X] [count=N]`` as typed in the sim console."""
    if not words:
        raise ValueError(f"name a fault: {', '.join(f.value for f in Fault)}")
    kind, *rest = words
    try:
        fault = Fault(kind.lower())
    except ValueError:
        choices = ", ".join(f.value for f in Fault)
        raise ValueError(f"unknown fault {kind!r}; choose from {choices}") from None
    fields: dict[str, str] = {}
    positional = list(_POSITIONAL[fault])
    for word in rest:
        key, sep, text = word.partition("=")
        if not sep:
            if not positional:
                raise ValueError(f"unexpected {word!r} after {fault.value}")
            key, text = positional.pop(0), word
        if key not in ("motor", "value", "count") or key in fields:
            raise ValueError(f"unexpected {word!r} after {fault.value}")
        fields[key] = text
    return FaultRequest(
        fault,
        motor=_number(fields, "motor", int),
        count=_number(fields, "count", int),
        value=_number(fields, "value", float),
    )


def _number(fields: dict[str, str], key: str, kind: type[_Number]) -> _Number | None:
    text = fields.get(key)
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{key} must be a number, not {text!r}") from None
