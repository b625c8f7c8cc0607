"""``so101d sim``: the console commands, and the command itself run as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from so101d.sim import Fault, VirtualPair
from so101d.sim.console import CommandError, execute
from so101d.sim.faults import FaultRequest, parse_fault
from tests.test_sim_wire import bus_on
from tests.waiting import wait_for


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[VirtualPair]:
    with VirtualPair(tmp_path / "leader", tmp_path / "follower", motion=None) as pair:
        yield pair


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("silence", FaultRequest(Fault.SILENCE)),
        ("silence count=3", FaultRequest(Fault.SILENCE, count=3)),
        ("missing-motor 3", FaultRequest(Fault.MISSING_MOTOR, motor=3)),
        ("overheat 2", FaultRequest(Fault.OVERHEAT, motor=2)),
        ("overheat 2 80", FaultRequest(Fault.OVERHEAT, motor=2, value=80.0)),
        ("brownout 6.0", FaultRequest(Fault.BROWNOUT, value=6.0)),
        ("late-reply 0.3 motor=4", FaultRequest(Fault.LATE_REPLY, motor=4, value=0.3)),
        ("CORRUPT-CHECKSUM 5 count=1", FaultRequest(Fault.CORRUPT_CHECKSUM, motor=5, count=1)),
        ("jam 3", FaultRequest(Fault.JAM, motor=3)),
    ],
)
def test_parse_fault_words(words: str, expected: FaultRequest) -> None:
    assert parse_fault(words.split()) == expected


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("", "name a fault"),
        ("melt", "unknown fault 'melt'"),
        ("jam three", "motor must be a number"),
        ("silence 3", "unexpected '3'"),
        ("jam 3 4", "unexpected '4'"),
        ("jam 3 motor=4", "unexpected 'motor=4'"),
        ("jam colour=red", "unexpected 'colour=red'"),
    ],
)
def test_parse_fault_errors_name_the_problem(words: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fault(words.split())


def test_console_commands_act_on_the_pair(pair: VirtualPair) -> None:
    assert "missing-motor motor 3" in execute(pair, "fault follower missing-motor 3")
    assert "brownout 3.8 volts" in execute(pair, "fault leader brownout")
    assert execute(pair, "clear leader") == "leader faults: none"
    execute(pair, "motion leader sweep")
    assert pair.leader.motion == "sweep"
    execute(pair, "hold follower gripper=1 shoulder_pan=0")
    pair.follower.fast_forward(3)
    assert pair.follower.joint_fractions()["gripper"] == 1.0
    execute(pair, "unplug follower")
    assert not pair.follower.plugged
    status = execute(pair, "status")
    assert "follower: UNPLUGGED" in status and "missing-motor motor 3" in status
    execute(pair, "replug follower")
    assert pair.follower.plugged
    assert execute(pair, "   ") == ""
    assert "fault ROLE KIND" in execute(pair, "help")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("dance", "unknown command 'dance'"),
        ("unplug", "name the arm: leader or follower"),
        ("unplug robot", "name the arm"),
        ("unplug leader now", "unexpected 'now'"),
        ("motion leader spin", "choose one motion"),
        ("hold leader gripper", "not JOINT=FRACTION"),
        ("hold leader elbow=0.5", "unknown joint"),
        ("fault follower jam 9", "motor 9 is not on this arm"),
        ("fault follower brownout motor=2", "whole arm"),
        ("clear follower melt", "unknown fault"),
    ],
)
def test_console_errors_are_one_line_and_name_the_problem(
    pair: VirtualPair, line: str, message: str
) -> None:
    with pytest.raises(CommandError, match=message) as caught:
        execute(pair, line)
    assert "\n" not in str(caught.value)


def test_so101d_sim_runs_until_sigint(tmp_path: Path) -> None:
    leader, follower = tmp_path / "dev" / "leader", tmp_path / "dev" / "follower"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "so101d",
            "sim",
            "--leader",
            str(leader),
            "--follower",
            str(follower),
            "--motion",
            "wave",
            "--seed",
            "2",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None

    def serving() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"so101d sim exited early: {process.communicate()}")
        return leader.is_symlink() and follower.is_symlink()

    try:
        wait_for(serving, timeout=30)
        with bus_on(str(follower)) as bus:
            assert bus.read("Present_Voltage", 1) == 120
        process.stdin.write("unplug follower\n")
        process.stdin.flush()
        wait_for(lambda: not os.path.lexists(follower), timeout=30)
        process.stdin.write("replug follower\nnonsense\n")
        process.stdin.flush()
        wait_for(lambda: follower.is_symlink(), timeout=30)
        with bus_on(str(follower)) as bus, bus_on(str(leader)) as lead:
            assert bus.ping(6) == 0
            assert lead.read("Present_Voltage", 1) == 50
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert str(leader) in out and str(follower) in out and "NO HARDWARE" in out
    assert "follower unplugged" in out
    assert "error: unknown command 'nonsense'" in err
    assert not os.path.lexists(leader) and not os.path.lexists(follower)
