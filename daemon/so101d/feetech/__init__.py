"""The Feetech STS3215 wire protocol: packet codec, register table, a bus over pyserial."""

from so101d.feetech.bus import DEFAULT_BAUDRATE, DEFAULT_TIMEOUT, FeetechBus, wire_time
from so101d.feetech.errors import (
    BusError,
    BusTimeout,
    CorruptReply,
    PortBusy,
    PortGone,
    ServoError,
    ServoFault,
)
from so101d.feetech.protocol import BROADCAST_ID, FrameReader, Instruction, Packet
from so101d.feetech.registers import REGISTERS, STS3215_MODEL_NUMBER, Register, register

__all__ = [
    "BROADCAST_ID",
    "DEFAULT_BAUDRATE",
    "DEFAULT_TIMEOUT",
    "REGISTERS",
    "STS3215_MODEL_NUMBER",
    "BusError",
    "BusTimeout",
    "CorruptReply",
    "FeetechBus",
    "FrameReader",
    "Instruction",
    "Packet",
    "PortBusy",
    "PortGone",
    "Register",
    "ServoError",
    "ServoFault",
    "register",
    "wire_time",
]
