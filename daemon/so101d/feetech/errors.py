"""Typed bus errors. Each names the port and, where known, the motor and the register."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping


class ServoFault(enum.IntFlag):
    """Error bits of a status packet (bit meanings as the Feetech SDK decodes them)."""

    VOLTAGE = 0x01
    ANGLE_SENSOR = 0x02
    OVERHEAT = 0x04
    OVERCURRENT = 0x08
    UNKNOWN_0X10 = 0x10
    OVERLOAD = 0x20
    UNKNOWN_0X40 = 0x40

    def describe(self) -> str:
        names = [_FAULT_TEXT[flag] for flag in ServoFault if flag in self]
        return ", ".join(names) or "none"


_FAULT_TEXT = {
    ServoFault.VOLTAGE: "input voltage out of range",
    ServoFault.ANGLE_SENSOR: "angle sensor fault",
    ServoFault.OVERHEAT: "overheated",
    ServoFault.OVERCURRENT: "overcurrent",
    ServoFault.UNKNOWN_0X10: "error bit 0x10",
    ServoFault.OVERLOAD: "overload",
    ServoFault.UNKNOWN_0X40: "error bit 0x40",
}


class BusError(Exception):
    """Base of every error the Feetech bus raises."""

    def __init__(
        self, port: str, detail: str, motor: int | None = None, register: str | None = None
    ) -> None:
        self.port = port
        self.motor = motor
        self.register = register
        self.detail = detail
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = [f"port {self.port}"]
        if self.motor is not None:
            where.append(f"motor {self.motor}")
        if self.register is not None:
            where.append(f"register {self.register}")
        return f"{', '.join(where)}: {self.detail}"


class BusTimeout(BusError):
    """No reply, or an incomplete one, before the deadline."""


class CorruptReply(BusError):
    """A reply arrived but was unusable: bad checksum, wrong ID, wrong length."""


class PortGone(BusError):
    """The serial device is missing or vanished (unplugged). The bus must be reopened."""


class PortBusy(BusError):
    """Another process holds the port's exclusive lock."""


class ServoError(BusError):
    """The servo answered with error bits set.

    The data that arrived is kept: ``payloads`` as bytes per motor and, when the request named
    a register, ``values`` decoded.
    """

    def __init__(
        self,
        port: str,
        faults: Mapping[int, ServoFault],
        payloads: Mapping[int, bytes],
        values: Mapping[int, int],
        register: str | None = None,
    ) -> None:
        self.faults = dict(faults)
        self.payloads = dict(payloads)
        self.values = dict(values)
        motors = sorted(self.faults)
        detail = "; ".join(f"motor {m} reports {self.faults[m].describe()}" for m in motors)
        super().__init__(
            port, detail, motor=motors[0] if len(motors) == 1 else None, register=register
        )


def motor_list(ids: Iterable[int]) -> str:
    return ", ".join(str(i) for i in ids)
