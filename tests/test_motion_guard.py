"""The arm guard with a fake clock and a fake bus: exact, fast, no wall-clock sleeps."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from so101d.faults import PairFault
from so101d.feetech import BusTimeout, ServoFault
from so101d.motion import ArmGuard, MotionGate, MotionLimits, MotionRefused, degrees_to_ticks
from so101d.motion.guard import RELEASE_TRIES
from so101d.motion.settings import ACCELERATION
from tests.fake_bus import FakeBus, FakeClock, fake_arm

LIMITS = MotionLimits(margin_deg=2.0, max_speed_dps=180.0, max_dt_s=0.05)
JOINT = "elbow_flex"
MOTOR = 3


def guarded(
    limits: MotionLimits = LIMITS,
) -> tuple[ArmGuard, FakeBus, MotionGate, FakeClock]:
    arm, bus = fake_arm()
    gate, clock = MotionGate(), FakeClock()
    return ArmGuard(arm, gate, limits, clock), bus, gate, clock


def torque(bus: FakeBus) -> list[int]:
    return [servo.registers["Torque_Enable"] for servo in bus.servos.values()]


# -- torque on -------------------------------------------------------------------------------


def test_torque_on_writes_the_present_position_as_goal_first() -> None:
    guard, bus, _, _ = guarded()
    present = guard.torque_on_holding()
    assert torque(bus) == [1] * 6
    first_torque = next(i for i, w in enumerate(bus.writes) if w[0] == "Torque_Enable")
    goals = {m: v for name, m, v in bus.writes[:first_torque] if name == "Goal_Position"}
    assert goals == {bus_id: present[joint] for joint, bus_id in guard.arm.motor_ids.items()}


@pytest.mark.parametrize("close", [MotionGate.pause, MotionGate.emergency_stop])
def test_torque_on_is_refused_with_the_gate_closed(close: object) -> None:
    guard, bus, gate, _ = guarded()
    close(gate, "by the test")  # type: ignore[operator]
    with pytest.raises(MotionRefused, match="by the test"):
        guard.torque_on_holding()
    assert bus.goal_writes() == []
    assert torque(bus) == [0] * 6


def test_an_estop_between_goal_and_torque_on_leaves_every_motor_off() -> None:
    guard, bus, gate, _ = guarded()

    def estop_on_goal(name: str, motor: int, value: int) -> None:
        if name == "Goal_Position":
            gate.emergency_stop("pressed mid torque-on")

    bus.on_write = estop_on_goal
    with pytest.raises(MotionRefused):
        guard.torque_on_holding()
    assert torque(bus) == [0] * 6  # the goal write had switched them on (firmware habit)
    assert not any(name == "Torque_Enable" and value == 1 for name, _, value in bus.writes)


def test_a_goal_that_does_not_read_back_keeps_torque_off() -> None:
    guard, bus, _, _ = guarded()
    bus.servos[MOTOR].goal_sticks = False
    with pytest.raises(PairFault, match=f"goal did not read back.*{JOINT}"):
        guard.torque_on_holding()
    assert torque(bus) == [0] * 6


def test_a_partial_torque_on_failure_releases_every_motor() -> None:
    guard, bus, _, _ = guarded()

    def motor_3_goes_silent(name: str, motor: int, value: int) -> None:
        if name == "Torque_Enable" and value == 1 and motor == 2:
            bus.servos[MOTOR].answers = False

    bus.on_write = motor_3_goes_silent
    with pytest.raises(PairFault, match=f"torque on failed at {JOINT}"):
        guard.torque_on_holding()
    assert [t for m, t in zip(bus.servos, torque(bus), strict=True) if m != MOTOR] == [0] * 5
    assert guard.commanded == {}


def test_torque_that_does_not_come_on_is_a_fault_and_releases() -> None:
    guard, bus, _, _ = guarded()
    bus.servos[MOTOR].torque_sticks = False
    bus.servos[MOTOR].goal_sticks = False  # nothing switches it on behind our back
    bus.servos[MOTOR].registers["Goal_Position"] = bus.servos[MOTOR].registers["Present_Position"]
    with pytest.raises(PairFault, match=f"torque did not come on at {JOINT}"):
        guard.torque_on_holding()
    assert torque(bus)[:2] == [0, 0]


GRIPPER_MOTOR = 6


def test_a_tripped_limp_gripper_is_rearmed_in_place_and_left_limp() -> None:
    guard, bus, _, _ = guarded()
    bus.servos[GRIPPER_MOTOR].faults = ServoFault.OVERLOAD
    present = bus.servos[GRIPPER_MOTOR].registers["Present_Position"]
    guard.rearm_overload("gripper")
    assert bus.writes == [
        ("Goal_Position", GRIPPER_MOTOR, present),
        ("Torque_Enable", GRIPPER_MOTOR, 1),
        ("Torque_Enable", GRIPPER_MOTOR, 0),
    ]
    assert torque(bus) == [0] * 6


def test_a_tripped_holding_gripper_is_rearmed_and_keeps_holding() -> None:
    guard, bus, _, _ = guarded()
    guard.torque_on_holding()
    bus.writes.clear()
    guard.rearm_overload("gripper")
    present = bus.servos[GRIPPER_MOTOR].registers["Present_Position"]
    assert bus.writes == [
        ("Goal_Position", GRIPPER_MOTOR, present),
        ("Torque_Enable", GRIPPER_MOTOR, 1),
    ]
    assert torque(bus) == [1] * 6


@pytest.mark.parametrize("close", [MotionGate.pause, MotionGate.emergency_stop])
def test_a_rearm_is_refused_with_the_gate_closed(close: object) -> None:
    guard, bus, gate, _ = guarded()
    close(gate, "by the test")  # type: ignore[operator]
    with pytest.raises(MotionRefused, match="by the test"):
        guard.rearm_overload("gripper")
    assert bus.writes == []


def test_a_rearm_whose_goal_does_not_read_back_releases_everything() -> None:
    guard, bus, _, _ = guarded()
    guard.torque_on_holding()
    bus.servos[GRIPPER_MOTOR].registers["Present_Position"] -= 40  # squeezed shut on an object
    bus.servos[GRIPPER_MOTOR].goal_sticks = False
    with pytest.raises(PairFault, match="gripper goal did not read back"):
        guard.rearm_overload("gripper")
    assert torque(bus) == [0] * 6


# -- goals -----------------------------------------------------------------------------------


def test_no_goal_is_written_to_a_limp_arm() -> None:
    guard, bus, _, _ = guarded()
    with pytest.raises(PairFault, match="torque is off"):
        guard.command({JOINT: 2000})
    assert bus.goal_writes() == []


def test_goals_stay_inside_the_range_minus_the_margin() -> None:
    guard, _bus, _, clock = guarded(MotionLimits(2.0, 360.0, 10.0))
    guard.torque_on_holding()
    clock.advance(10)
    goals = guard.command(dict.fromkeys(guard.arm.joints, 99_999.0))
    assert set(goals.values()) == {3000 - round(degrees_to_ticks(2))}
    clock.advance(10)
    goals = guard.command(dict.fromkeys(guard.arm.joints, -99_999.0))
    assert set(goals.values()) == {1000 + round(degrees_to_ticks(2))}


@pytest.mark.parametrize("rate_hz", [50, 100, 500])
def test_speed_is_limited_in_degrees_per_second_at_any_rate(rate_hz: int) -> None:
    guard, bus, _, clock = guarded(MotionLimits(2.0, 90.0, 2 / rate_hz))
    start = guard.torque_on_holding()[JOINT]
    for _ in range(rate_hz // 2):  # half a second toward a target far away
        clock.advance(1 / rate_hz)
        guard.command({JOINT: 2900.0})
    last_goal = [value for motor, value in bus.goal_writes() if motor == MOTOR][-1]
    assert last_goal - start == pytest.approx(degrees_to_ticks(45), abs=1)


def test_a_stalled_cycle_earns_no_bigger_step() -> None:
    guard, _bus, _, clock = guarded()
    start = guard.torque_on_holding()[JOINT]
    clock.advance(3.0)  # a loop stuck for three seconds
    goal = guard.command({JOINT: 2900.0})[JOINT]
    assert goal - start == round(degrees_to_ticks(180 * LIMITS.max_dt_s))


def test_slower_speeds_may_be_asked_never_faster() -> None:
    guard, _, _, clock = guarded()
    start = guard.torque_on_holding()[JOINT]
    clock.advance(0.01)
    assert guard.command({JOINT: 2900.0}, {JOINT: 30.0})[JOINT] - start == round(
        degrees_to_ticks(0.3)
    )
    clock.advance(0.01)
    before = guard.commanded[JOINT]
    after = guard.command({JOINT: 2900.0}, {JOINT: 9000.0})[JOINT]
    assert after - before == pytest.approx(degrees_to_ticks(1.8), abs=1)


@pytest.mark.parametrize("close", [MotionGate.pause, MotionGate.emergency_stop])
def test_goals_are_refused_with_the_gate_closed(close: object) -> None:
    guard, bus, gate, clock = guarded()
    guard.torque_on_holding()
    written = len(bus.goal_writes())
    close(gate, "stop")  # type: ignore[operator]
    clock.advance(0.01)
    with pytest.raises(MotionRefused):
        guard.command({JOINT: 2900.0})
    assert len(bus.goal_writes()) == written


def test_an_estop_from_another_thread_stops_every_goal_after_its_torque_off() -> None:
    guard, bus, gate, clock = guarded()
    guard.torque_on_holding()
    stop = threading.Event()

    def mirror() -> None:
        while not stop.is_set():
            clock.advance(0.01)
            try:
                guard.command({JOINT: 2900.0})
            except MotionRefused:
                stop.set()

    worker = threading.Thread(target=mirror)
    worker.start()
    while len(bus.goal_writes()) < 50:
        pass
    gate.emergency_stop("pressed")
    released = guard.release()
    worker.join(timeout=5)
    assert released.ok and torque(bus) == [0] * 6
    first_off = bus.writes.index(("Torque_Enable", 1, 0))
    assert all(name != "Goal_Position" for name, _, _ in bus.writes[first_off:])


# -- torque off ------------------------------------------------------------------------------


def test_release_reads_back_and_names_what_it_could_not_confirm() -> None:
    guard, bus, _, _ = guarded()
    guard.torque_on_holding()
    bus.servos[MOTOR].torque_sticks = False
    released = guard.release()
    assert not released.ok
    assert released.unconfirmed == (JOINT,)
    assert "not confirmed on elbow_flex" in released.describe()


def test_release_of_a_silent_motor_is_not_confirmed() -> None:
    guard, bus, _, _ = guarded()
    guard.torque_on_holding()
    bus.servos[MOTOR].answers = False
    released = guard.release()
    assert released.unconfirmed == (JOINT,)
    assert len(released.confirmed) == 5


def lose_torque_read_backs(bus: FakeBus, motor: int, count: int) -> list[int]:
    """Make the next ``count`` Torque_Enable reads that include ``motor`` time out."""
    lost: list[int] = []
    sync_read, read = bus.sync_read, bus.read

    def lose(name: str, motors: list[int]) -> None:
        if name == "Torque_Enable" and motor in motors and len(lost) < count:
            lost.append(motor)
            raise BusTimeout(bus.port, f"no reply from motor(s) {motor}", motor, name)

    def lossy_sync_read(name: str, motors: Sequence[int]) -> dict[int, int]:
        lose(name, list(motors))
        return sync_read(name, motors)

    def lossy_read(name: str, one: int) -> int:
        lose(name, [one])
        return read(name, one)

    bus.sync_read, bus.read = lossy_sync_read, lossy_read  # type: ignore[method-assign]
    return lost


def test_a_read_back_lost_on_a_busy_bus_is_asked_again() -> None:
    guard, bus, _, _ = guarded()
    guard.torque_on_holding()
    lost = lose_torque_read_backs(bus, MOTOR, count=2)  # the sync read and the single read
    released = guard.release()
    assert len(lost) == 2
    assert released.ok, released.describe()


def test_a_motor_that_never_answers_is_asked_a_bounded_number_of_times() -> None:
    guard, bus, _, _ = guarded()
    guard.torque_on_holding()
    bus.servos[MOTOR].torque_sticks = False
    bus.writes.clear()
    assert guard.release().unconfirmed == (JOINT,)
    retries = [w for w in bus.writes if w == ("Torque_Enable", MOTOR, 0)]
    assert len(retries) == 1 + RELEASE_TRIES  # the broadcast, then each try


def test_release_of_a_vanished_board_says_it_cannot_reach_the_servos() -> None:
    guard, bus, _, _ = guarded()
    bus.gone = True
    released = guard.release()
    assert not released.ok
    assert "cannot reach its servos" in released.describe()


def test_a_servo_reset_is_seen_in_its_torque_or_its_ram_settings() -> None:
    guard, bus, _, _ = guarded()
    for servo in bus.servos.values():
        servo.registers["Acceleration"] = ACCELERATION  # as the session start sets it
    guard.torque_on_holding()
    assert guard.reset_joints() == []
    bus.servos[MOTOR].registers["Torque_Enable"] = 0
    bus.servos[5].registers["Acceleration"] = 0  # reset, then torqued again by a goal write
    assert guard.reset_joints() == [JOINT, "wrist_roll"]


# -- holding, settings, calibration ----------------------------------------------------------


def test_a_holding_arm_is_adopted_without_any_torque_write() -> None:
    guard, bus, _, _ = guarded()
    for servo in bus.servos.values():
        servo.registers["Torque_Enable"] = 1
    held = guard.adopt_holding(guard.arm.joints)
    assert torque(bus) == [1] * 6
    assert not any(name == "Torque_Enable" for name, _, _ in bus.writes)
    assert guard.commanded == {joint: float(v) for joint, v in held.items()}


def test_a_holding_arm_is_released_instead_when_the_gate_is_closed() -> None:
    guard, bus, gate, _ = guarded()
    for servo in bus.servos.values():
        servo.registers["Torque_Enable"] = 1
    gate.emergency_stop("pressed")
    assert guard.adopt_holding(guard.arm.joints) == {}
    assert torque(bus) == [0] * 6


def test_calibration_is_not_written_to_an_arm_the_guard_holds() -> None:
    guard, bus, _, _ = guarded()
    guard.torque_on_holding()
    with pytest.raises(PairFault, match="holds torque"):
        guard.write_calibration(guard.arm.calibration)
    assert not any(name == "Homing_Offset" for name, _, _ in bus.writes)
