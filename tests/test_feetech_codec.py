"""Packet codec and register encodings, checked against bytes LeRobot puts on the wire."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from so101d.feetech import REGISTERS, FrameReader, Instruction, Packet, register
from so101d.feetech.registers import decode_sign_magnitude, encode_sign_magnitude

# (packet, bytes on the wire) from the reference's captures of LeRobot 0.6.1
WIRE_EXAMPLES = [
    (Packet(1, Instruction.PING), "ff ff 01 02 01 fb"),
    (Packet(1, Instruction.READ, bytes([3, 2])), "ff ff 01 04 02 03 02 f3"),
    (Packet(1, Instruction.READ, bytes([0, 1])), "ff ff 01 04 02 00 01 f7"),
    (
        Packet(0xFE, Instruction.SYNC_READ, bytes([56, 2, 1, 2, 3, 4, 5, 6])),
        "ff ff fe 0a 82 38 02 01 02 03 04 05 06 26",
    ),
    (Packet(1, 0, bytes([0x00, 0x08])), "ff ff 01 04 00 00 08 f2"),
    (Packet(1, 0), "ff ff 01 02 00 fc"),
    (Packet(1, Instruction.WRITE, bytes([40, 1])), "ff ff 01 04 03 28 01 ce"),
    (Packet(1, Instruction.WRITE, bytes([31, 0xC6, 0x0A])), "ff ff 01 05 03 1f c6 0a 07"),
    (Packet(0xFE, Instruction.PING), "ff ff fe 02 01 fe"),
]


@pytest.mark.parametrize(("packet", "wire"), WIRE_EXAMPLES)
def test_packets_encode_to_lerobot_bytes(packet: Packet, wire: str) -> None:
    assert packet.encode() == bytes.fromhex(wire)


@pytest.mark.parametrize(("packet", "wire"), WIRE_EXAMPLES)
def test_frame_reader_decodes_lerobot_bytes(packet: Packet, wire: str) -> None:
    reader = FrameReader()
    reader.feed(bytes.fromhex(wire))
    assert reader.next_packet() == packet
    assert reader.next_packet() is None


def test_sync_write_goal_positions_match_lerobot() -> None:
    goal = register("Goal_Position")
    params = bytes([42, 2, 1]) + goal.encode(-275) + bytes([2]) + goal.encode(2000)
    wire = Packet(0xFE, Instruction.SYNC_WRITE, params).encode()
    assert wire == bytes.fromhex("ff ff fe 0a 83 2a 02 01 13 81 02 d0 07 da")


def test_reader_resynchronises_after_garbage_and_bad_checksums() -> None:
    good = Packet(3, 0, b"\x10\x20").encode()
    bad = bytearray(good)
    bad[-1] ^= 0x55
    reader = FrameReader()
    reader.feed(b"\x00\x13\xff" + bytes(bad) + b"\xff\xff\xff" + good)
    assert reader.next_packet() == Packet(3, 0, b"\x10\x20")
    assert reader.corrupt >= 1
    assert reader.next_packet() is None


def test_reader_waits_for_a_split_frame() -> None:
    wire = Packet(2, 0, b"\x01\x02\x03").encode()
    reader = FrameReader()
    for byte in wire[:-1]:
        reader.feed(bytes([byte]))
        assert reader.next_packet() is None
    reader.feed(wire[-1:])
    assert reader.next_packet() == Packet(2, 0, b"\x01\x02\x03")


@given(st.integers(0, 0xFD), st.integers(0, 0xFF), st.binary(max_size=60))
def test_any_packet_round_trips(ident: int, code: int, params: bytes) -> None:
    reader = FrameReader()
    reader.feed(Packet(ident, code, params).encode())
    assert reader.next_packet() == Packet(ident, code, params)


@given(st.binary(max_size=300))
def test_reader_never_fails_on_random_bytes(noise: bytes) -> None:
    reader = FrameReader()
    reader.feed(noise)
    while (packet := reader.next_packet()) is not None:
        assert packet.encode() in noise  # the reader never invents a frame


# -- registers --------------------------------------------------------------------------

SIGNED = {
    "Homing_Offset": 11,
    "Goal_Position": 15,
    "Present_Position": 15,
    "Goal_Velocity": 15,
    "Present_Velocity": 15,
    "Present_Load": 10,
}


def test_sign_magnitude_registers_are_the_ones_lerobot_encodes() -> None:
    signed = {name: reg.sign_bit for name, reg in REGISTERS.items() if reg.sign_bit is not None}
    assert signed == SIGNED


@pytest.mark.parametrize(
    ("name", "value", "wire"),
    [
        ("Homing_Offset", -710, "c6 0a"),
        ("Homing_Offset", -747, "eb 0a"),
        ("Homing_Offset", 2047, "ff 07"),
        ("Goal_Position", -275, "13 81"),
        ("Present_Position", -5, "05 80"),
        ("Present_Load", -300, "2c 05"),
        ("Goal_Velocity", -1000, "e8 83"),
        ("Model_Number", 777, "09 03"),
    ],
)
def test_register_values_encode_like_lerobot(name: str, value: int, wire: str) -> None:
    reg = register(name)
    assert reg.encode(value) == bytes.fromhex(wire)
    assert reg.decode(bytes.fromhex(wire)) == value


@pytest.mark.parametrize(("name", "bit"), sorted(SIGNED.items()))
def test_sign_magnitude_round_trip_over_whole_range(name: str, bit: int) -> None:
    reg = register(name)
    limit = (1 << bit) - 1
    for value in (-limit, -1, 0, 1, limit):
        assert reg.decode(reg.encode(value)) == value
    with pytest.raises(ValueError, match="magnitude"):
        reg.encode(limit + 1)


def test_decode_ignores_bits_above_the_sign_bit() -> None:
    assert decode_sign_magnitude(0xF805, 11) == -5
    assert encode_sign_magnitude(-5, 11) == 0x805


def test_unsigned_register_rejects_negative_and_oversized_values() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        register("Torque_Enable").encode(-1)
    with pytest.raises(ValueError, match="does not fit"):
        register("Torque_Enable").encode(256)


def test_unknown_register_name_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="Goal_Postion"):
        register("Goal_Postion")
