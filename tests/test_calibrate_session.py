"""The session engine on a fake bus with a fake clock: bus errors, idle timeout and aborts,
exactly (no daemon, no wall-clock windows)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from so101d.calibrate.session import (
    BUS_ERROR_GRACE_S,
    CalibrationSession,
    SessionSettings,
    Target,
)
from so101d.calibration.model import Role
from so101d.motion import ArmGuard, MotionGate, MotionLimits
from tests.fake_bus import FakeBus, FakeClock, fake_arm
from tests.waiting import wait_for


class LendingHost:
    """Lends one guarded fake arm and records how it came back."""

    def __init__(self, guard: ArmGuard) -> None:
        self.guard = guard
        self.returned: list[bool] = []

    def lend_arm(self, role: Role, reason: str, cancelled: Callable[[], bool]) -> ArmGuard:
        return self.guard

    def return_arm(self, guard: ArmGuard | None, *, resume: bool) -> None:
        self.returned.append(resume)


class CountingBus(FakeBus):
    reads = 0

    def sync_read(self, name: str, motors: Any) -> dict[int, int]:
        self.reads += 1
        return super().sync_read(name, motors)


Bench = tuple[CalibrationSession, CountingBus, LendingHost]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def bench(tmp_path: Path, clock: FakeClock) -> Iterator[Bench]:
    arm, plain = fake_arm(role=Role.LEADER)
    bus = CountingBus(plain.servos)
    arm.bus = bus  # type: ignore[assignment]
    guard = ArmGuard(arm, MotionGate(), MotionLimits(2.0, 180.0, 0.02))
    host = LendingHost(guard)
    settings = SessionSettings(tmp_path, idle_timeout_s=60.0, sample_period_s=0.001)
    session = CalibrationSession("1", Target("main", Role.LEADER, "x"), host, settings, clock)
    session.start()
    wait_for(lambda: session.step == "homing")
    yield session, bus, host
    session.abort()
    session.wait()


def reads_go_on(bus: CountingBus) -> None:
    seen = bus.reads
    wait_for(lambda: bus.reads > seen + 3)


def test_slow_answers_shorter_than_the_grace_do_not_end_a_session(
    bench: Bench, clock: FakeClock
) -> None:
    session, bus, _ = bench
    for servo in bus.servos.values():
        servo.answers = False
    reads_go_on(bus)
    clock.advance(BUS_ERROR_GRACE_S * 0.9)
    reads_go_on(bus)
    assert session.step == "homing"
    for servo in bus.servos.values():
        servo.answers = True
    reads_go_on(bus)
    clock.advance(BUS_ERROR_GRACE_S * 0.9)  # a new failure starts its own grace
    for servo in bus.servos.values():
        servo.answers = False
    reads_go_on(bus)
    clock.advance(BUS_ERROR_GRACE_S * 0.5)
    reads_go_on(bus)
    assert session.step == "homing"


def test_reads_failing_for_the_whole_grace_end_the_session_with_the_reason(
    bench: Bench, clock: FakeClock
) -> None:
    session, bus, host = bench
    bus.servos[3].answers = False
    reads_go_on(bus)
    clock.advance(BUS_ERROR_GRACE_S)
    session.wait()
    assert session.step == "aborted"
    assert "no reply from motor(s) 3" in session.reason
    assert host.returned == [True]  # the pair goes back to teleop (or waiting)


def test_idle_timeout_counts_from_the_last_client_request(bench: Bench, clock: FakeClock) -> None:
    session, bus, host = bench
    clock.advance(59.0)
    session.touch()
    clock.advance(59.0)
    reads_go_on(bus)
    assert session.step == "homing"
    clock.advance(2.0)
    session.wait()
    assert (session.step, session.reason) == ("aborted", "idle timeout: no client for 61 s")
    assert host.returned == [True]


def test_an_emergency_abort_releases_the_arm_and_does_not_resume(
    bench: Bench,
) -> None:
    session, bus, host = bench
    session.capture()
    session.abort("emergency stop", resume=False)
    session.abort("aborted by request")  # idempotent: the first reason stays
    assert session.wait()
    assert (session.step, session.reason) == ("aborted", "emergency stop")
    assert host.returned == [False]
    assert ("Torque_Enable", 1, 0) in bus.writes  # released once more, read back
    assert all(servo.registers["Torque_Enable"] == 0 for servo in bus.servos.values())
