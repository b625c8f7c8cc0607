"""Every injected fault, as a client sees it on the wire."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from so101d.feetech import BusTimeout, FeetechBus, Instruction, Packet, ServoError
from so101d.feetech.errors import ServoFault
from so101d.feetech.protocol import checksum
from so101d.sim import Fault, VirtualArm
from tests.test_sim_wire import RawPort, read, sync_read, write
from tests.waiting import wait_for

IDS = [1, 2, 3, 4, 5, 6]


@pytest.fixture
def port(follower: VirtualArm) -> Iterator[RawPort]:
    raw = RawPort(follower.link)
    yield raw
    raw.close()


def error_bits(bus: FeetechBus, motor: int, name: str = "Present_Position") -> ServoFault:
    try:
        bus.read(name, motor)
    except ServoError as exc:
        return exc.faults[motor]
    return ServoFault(0)


def test_silence_until_cleared_while_servos_still_obey(
    follower: VirtualArm, bus: FeetechBus
) -> None:
    follower.inject(Fault.SILENCE)
    with pytest.raises(BusTimeout):
        bus.ping(1)
    with pytest.raises(BusTimeout):
        bus.write("Acceleration", 2, 99)  # the write lands; only the ack is lost
    follower.clear(Fault.SILENCE)
    assert bus.read("Acceleration", 2) == 99


def test_count_limits_a_reply_fault_to_the_next_replies(
    follower: VirtualArm, bus: FeetechBus
) -> None:
    follower.inject(Fault.SILENCE, count=2)
    for _ in range(2):
        with pytest.raises(BusTimeout):
            bus.ping(1)
    assert bus.ping(1) == 0
    assert follower.active_faults() == ()


def test_corrupt_checksum_spoils_only_the_checksum(follower: VirtualArm, port: RawPort) -> None:
    follower.inject(Fault.CORRUPT_CHECKSUM, motor=2)
    port.send(read(2, "Model_Number"))
    data = port.receive(8)
    assert data[:7] == Packet(2, 0, (777).to_bytes(2, "little")).encode()[:7]
    assert data[7] != checksum(data[2:7])
    assert port.transact(Packet(1, Instruction.PING)) == [Packet(1, 0)]  # other motors fine


def test_late_reply_arrives_after_the_delay(follower: VirtualArm, port: RawPort) -> None:
    follower.inject(Fault.LATE_REPLY, value=0.2, count=1)
    started = time.perf_counter()
    assert port.transact(Packet(1, Instruction.PING)) == [Packet(1, 0)]
    assert time.perf_counter() - started >= 0.2


def test_late_reply_defaults_to_100_ms(follower: VirtualArm) -> None:
    follower.inject(Fault.LATE_REPLY)
    assert follower.active_faults()[0].value == 0.1


def test_wrong_id_replies_carry_the_next_id(follower: VirtualArm, port: RawPort) -> None:
    follower.inject(Fault.WRONG_ID, motor=3)
    assert port.transact(Packet(3, Instruction.PING)) == [Packet(4, 0)]
    assert port.transact(Packet(5, Instruction.PING)) == [Packet(5, 0)]


def test_missing_motor_is_off_the_bus(follower: VirtualArm, port: RawPort) -> None:
    follower.inject(Fault.MISSING_MOTOR, motor=3)
    assert [p.ident for p in port.transact(sync_read(IDS), count=5)] == [1, 2, 4, 5, 6]
    port.send(write(3, "Acceleration", 40))
    port.send(Packet(3, Instruction.PING))
    port.assert_silent()
    follower.clear(Fault.MISSING_MOTOR)
    (reply,) = port.transact(read(3, "Acceleration"))
    assert reply.params == b"\x00"  # it never heard the write


def test_brownout_sets_the_voltage_bit_and_the_reading(
    follower: VirtualArm, bus: FeetechBus
) -> None:
    follower.inject(Fault.BROWNOUT)  # follower default: 4.0 V, below Min_Voltage_Limit 4.5 V
    with pytest.raises(ServoError) as caught:
        bus.sync_read("Present_Voltage", IDS)
    assert set(caught.value.faults.values()) == {ServoFault.VOLTAGE}
    assert all(38 <= v <= 40 for v in caught.value.values.values())
    follower.clear()
    assert bus.sync_read("Present_Voltage", IDS) == dict.fromkeys(IDS, 120)


def test_deep_brownout_resets_the_servos(follower: VirtualArm, bus: FeetechBus) -> None:
    bus.write("Goal_Position", 1, bus.read("Present_Position", 1))
    bus.write("Torque_Enable", 1, 1)
    bus.write("Lock", 1, 0)
    follower.inject(Fault.BROWNOUT, value=3.0)
    with pytest.raises(BusTimeout):
        bus.ping(1)
    follower.clear(Fault.BROWNOUT)
    assert bus.read("Torque_Enable", 1) == 0
    assert bus.read("Lock", 1) == 1


def test_overheat_sets_the_bit_drops_torque_and_cools_off(
    follower: VirtualArm, bus: FeetechBus
) -> None:
    bus.write("Goal_Position", 2, bus.read("Present_Position", 2))
    bus.write("Torque_Enable", 2, 1)
    follower.inject(Fault.OVERHEAT, motor=2, value=73)
    with pytest.raises(ServoError) as caught:
        bus.read("Present_Temperature", 2)
    assert caught.value.faults == {2: ServoFault.OVERHEAT}
    assert caught.value.values == {2: 73}
    assert follower.servo(2).get("Torque_Enable") == 0
    assert error_bits(bus, 1) == 0
    follower.clear(Fault.OVERHEAT)
    assert error_bits(bus, 2) == ServoFault.OVERHEAT  # still hot
    follower.fast_forward(60)
    assert error_bits(bus, 2) == 0
    assert bus.read("Present_Temperature", 2) < 70


def test_jam_freezes_the_joint_and_loads_the_servo(follower: VirtualArm, bus: FeetechBus) -> None:
    follower.inject(Fault.JAM, motor=3)
    bus.write("Overload_Torque", 3, 100)  # never trips: let the motor heat up instead
    present = bus.read("Present_Position", 3)
    temperature = bus.read("Present_Temperature", 3)
    bus.write("Goal_Position", 3, present)
    bus.write("Torque_Enable", 3, 1)
    bus.write("Goal_Position", 3, present + 500)
    follower.fast_forward(60)
    assert bus.read("Present_Position", 3) == present
    assert bus.read("Present_Load", 3) == 1000
    assert bus.read("Present_Current", 3) >= 400  # 6.5 mA units: the stall current, ~2.7 A
    assert bus.read("Present_Temperature", 3) >= temperature + 10


def test_jam_overloads_after_the_protection_time(follower: VirtualArm, bus: FeetechBus) -> None:
    follower.inject(Fault.JAM, motor=6)
    bus.write("Protection_Time", 6, 20)  # 200 ms
    present = bus.read("Present_Position", 6)
    bus.write("Goal_Position", 6, present)
    bus.write("Torque_Enable", 6, 1)
    bus.write("Goal_Position", 6, present - 300)
    wait_for(lambda: error_bits(bus, 6) == ServoFault.OVERLOAD)
    follower.fast_forward(0.5)
    assert follower.servo(6).get("Torque_Enable") == 1  # protection cuts the output, not the torque
    assert abs(follower.servo(6).get("Present_Load")) == 200  # Protective_Torque: 20 %


def test_overload_clears_when_torque_is_enabled_again(
    follower: VirtualArm, bus: FeetechBus
) -> None:
    follower.inject(Fault.JAM, motor=6)
    present = bus.read("Present_Position", 6)
    bus.write("Goal_Position", 6, present)
    bus.write("Torque_Enable", 6, 1)
    bus.write("Goal_Position", 6, present - 300)
    follower.fast_forward(2.5)
    assert error_bits(bus, 6) == ServoFault.OVERLOAD
    follower.clear(Fault.JAM)
    with pytest.raises(ServoError):  # every status carries the latched bit
        bus.write("Goal_Position", 6, present)
    bus.write("Torque_Enable", 6, 1)  # re-arms the protection
    assert error_bits(bus, 6) == 0
    assert bus.read("Torque_Enable", 6) == 1


@pytest.mark.parametrize(
    ("fault", "kwargs", "message"),
    [
        (Fault.BROWNOUT, {"motor": 2}, "whole arm"),
        (Fault.JAM, {"count": 3}, "reply faults only"),
        (Fault.SILENCE, {"count": 0}, "at least 1"),
        (Fault.JAM, {"motor": 7}, "not on this arm"),
        (Fault.WRONG_ID, {"value": 1.0}, "takes no value"),
    ],
)
def test_nonsense_injections_are_refused(
    follower: VirtualArm, fault: Fault, kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        follower.inject(fault, **kwargs)
    assert follower.active_faults() == ()


def test_clear_one_kind_or_everything(follower: VirtualArm) -> None:
    follower.inject(Fault.JAM, motor=1)
    follower.inject(Fault.JAM, motor=2)
    follower.inject(Fault.SILENCE)
    follower.clear(Fault.SILENCE)
    assert {(f.fault, f.motor) for f in follower.active_faults()} == {
        (Fault.JAM, 1),
        (Fault.JAM, 2),
    }
    follower.clear()
    assert follower.active_faults() == ()
