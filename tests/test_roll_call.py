"""roll_call: bounded, resynchronised retries that tell an absent motor from a late one.

A scripted bus and a fake clock: each try's outcome is given, time passes only through the
tries and the pauses, so the window is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from so101d.feetech import BusTimeout, CorruptReply, Packet, ServoFault
from so101d.feetech.roll_call import MAX_PAUSE_S, roll_call

TRY_S = 0.03  # what one try costs on the fake clock
ANSWER, SILENT, LATE, CORRUPT = "answer", "silent", "late", "corrupt"
LATE_GARBLED = "late and garbled"
REPLY = Packet(6, 0).encode()  # a status packet: motor 6, no error, no data
GARBLED = REPLY[:-1] + bytes((REPLY[-1] ^ 0xFF,))  # the same with a wrong checksum


class ScriptedBus:
    """Each motor's tries play its script in order; the last entry repeats."""

    timeout = 0.025

    def __init__(self, scripts: dict[int, Sequence[str]]) -> None:
        self.scripts = scripts
        self.now = 0.0
        self.asked: list[int] = []
        self.resyncs = 0
        self._pending = b""

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert 0 < seconds <= MAX_PAUSE_S
        self.now += seconds

    def ping(self, motor: int) -> ServoFault:
        script = self.scripts[motor]
        outcome = script[min(self.asked.count(motor), len(script) - 1)]
        self.asked.append(motor)
        self.now += TRY_S
        if outcome == ANSWER:
            return ServoFault(0)
        if outcome == CORRUPT:
            raise CorruptReply("/dev/fake", "bad checksum", motor=motor)
        self._pending = {LATE: REPLY, LATE_GARBLED: GARBLED}.get(outcome, b"")
        raise BusTimeout("/dev/fake", "no reply", motor=motor)

    def resync(self) -> bytes:
        self.resyncs += 1
        drained, self._pending = self._pending, b""
        return drained


def call(bus: ScriptedBus, within_s: float = 1.0):  # type: ignore[no-untyped-def]
    return roll_call(bus, list(bus.scripts), bus.ping, within_s, clock=bus.clock, sleep=bus.sleep)


def test_motors_that_answer_are_asked_once() -> None:
    bus = ScriptedBus({1: [ANSWER], 2: [ANSWER]})
    tries = call(bus)
    assert bus.asked == [1, 2] and bus.resyncs == 0
    assert all(t.answered and not t.retried for t in tries.values())


def test_a_motor_that_answers_on_a_later_try_is_present() -> None:
    bus = ScriptedBus({1: [ANSWER], 6: [SILENT, LATE, SILENT, ANSWER]})
    tries = call(bus)
    assert tries[6].answered and tries[6].retried and tries[6].tries == 4
    assert bus.asked.count(1) == 1  # the motor that answered is left alone
    assert bus.resyncs == 4  # after every miss, and after the late answer


def test_a_silent_motor_is_absent_only_after_the_whole_window() -> None:
    bus = ScriptedBus({1: [ANSWER], 3: [SILENT]})
    tries = call(bus, within_s=1.0)
    assert tries[3].absent and not tries[3].troubled
    assert bus.now >= 1.0  # not declared missing before the window ended
    assert bus.now < 1.0 + TRY_S + MAX_PAUSE_S  # and not much later
    assert tries[3].tries >= 5 and tries[3].silent == tries[3].tries


@pytest.mark.parametrize(
    ("outcome", "counter"), [(LATE, "late"), (CORRUPT, "corrupt"), (LATE_GARBLED, "corrupt")]
)
def test_late_or_corrupt_replies_are_trouble_not_absence(outcome: str, counter: str) -> None:
    bus = ScriptedBus({6: [SILENT, outcome, SILENT]})
    tries = call(bus)
    assert tries[6].troubled and not tries[6].absent and not tries[6].answered
    assert getattr(tries[6], counter) == 1
    assert isinstance(tries[6].last_error, BusTimeout | CorruptReply)


def test_every_motor_gets_a_try_even_with_no_time_left() -> None:
    bus = ScriptedBus({1: [SILENT], 2: [SILENT]})
    tries = call(bus, within_s=0.0)
    assert [t.tries for t in tries.values()] == [1, 1]
