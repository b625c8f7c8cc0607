"""``so101d sim``: the console commands, and the command itself run as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from so101d.sim import JOINTS, Fault, VirtualPair
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
        ("move leader elbow 2000", "unknown joint 'elbow'"),
        ("move leader wrist_flex", "usage: move ROLE JOINT RAW"),
        ("move leader wrist_flex 2000 fast", "SPEED must be a whole number"),
        ("move leader wrist_flex 2000 0", "speed must be above 0"),
        ("set leader gripper 1.5", "RAW must be a whole number"),
        ("set leader gripper 2000 9", "usage: set ROLE JOINT RAW"),
        ("obstacle follower gripper", "usage: obstacle"),
        ("travel follower shoulder_lift 9000", "travel must be within 100..4090"),
        ("mount follower wrist_roll 4096", "mount must be a raw reading 0..4095"),
        ("release leader", "usage: release ROLE JOINT"),
        ("status --yaml", "unexpected '--yaml'"),
    ],
)
def test_console_errors_are_one_line_and_name_the_problem(
    pair: VirtualPair, line: str, message: str
) -> None:
    with pytest.raises(CommandError, match=message) as caught:
        execute(pair, line)
    assert "\n" not in str(caught.value)


def joint(pair: VirtualPair, role: str, name: str) -> dict[str, Any]:
    truth = json.loads(execute(pair, "status --json"))
    entry: dict[str, Any] = next(j for j in truth[role]["joints"] if j["joint"] == name)
    return entry


def test_move_and_set_put_a_joint_at_a_raw_reading(pair: VirtualPair) -> None:
    low = joint(pair, "leader", "elbow_flex")["stops"][0]
    start, end = (low + 100) % 4096, (low + 500) % 4096  # the seam may lie between
    assert execute(pair, f"set leader elbow_flex {start}") == f"leader elbow_flex set to {start}"
    assert joint(pair, "leader", "elbow_flex")["position"] == start
    assert "at 800 ticks/s" in execute(pair, f"move leader elbow_flex {end} 800")
    assert pair.leader.wait_idle()
    assert joint(pair, "leader", "elbow_flex")["position"] == end
    assert joint(pair, "leader", "elbow_flex")["held_by_hand"]
    assert execute(pair, "release leader elbow_flex") == "leader hand lets go of elbow_flex"
    assert not joint(pair, "leader", "elbow_flex")["held_by_hand"]
    beyond = (joint(pair, "leader", "elbow_flex")["stops"][1] + 500) % 4096
    with pytest.raises(CommandError, match="elbow_flex cannot read"):
        execute(pair, f"set leader elbow_flex {beyond}")


def test_an_obstacle_stops_a_joint_where_it_reads(pair: VirtualPair) -> None:
    execute(pair, "set follower shoulder_pan 2400")
    execute(pair, "release follower shoulder_pan")
    assert "where it reads 2200" in execute(pair, "obstacle follower shoulder_pan 2200")
    assert joint(pair, "follower", "shoulder_pan")["obstacle"] == 2200
    execute(pair, "move follower shoulder_pan 1800")  # the hand cannot push through it either
    pair.follower.fast_forward(3.0)
    assert joint(pair, "follower", "shoulder_pan")["position"] == 2200
    assert execute(pair, "obstacle follower shoulder_pan none").endswith("obstacle removed")
    pair.follower.fast_forward(3.0)
    assert joint(pair, "follower", "shoulder_pan")["position"] == 1800


def test_travel_and_mount_reshape_a_joint(pair: VirtualPair) -> None:
    assert "3000 ticks apart" in execute(pair, "travel follower shoulder_pan 3000")
    truth = joint(pair, "follower", "shoulder_pan")
    assert truth["travel"] == 3000
    assert (truth["encoder_stops"][1] - truth["encoder_stops"][0]) % 4096 == 3000
    assert "reads 10 at the middle" in execute(pair, "mount follower wrist_roll 10")
    roll = joint(pair, "follower", "wrist_roll")
    assert roll["mount"] == 10 and roll["encoder_stops"][0] > roll["encoder_stops"][1]  # seam


def test_status_json_gives_each_joints_ground_truth(pair: VirtualPair) -> None:
    truth = json.loads(execute(pair, "status --json"))
    assert set(truth) == {"leader", "follower"}
    follower = truth["follower"]
    assert follower["plugged"] and follower["link"] == pair.follower.link
    assert [j["joint"] for j in follower["joints"]] == list(JOINTS)
    lift = follower["joints"][1]
    for key in ("angle_deg", "encoder", "position", "stops", "torque", "load_pct"):
        assert key in lift
    assert lift["temperature_c"] > 20 and lift["voltage_v"] == 12.0


def run_sim(tmp_path: Path, *options: str) -> subprocess.Popen[str]:
    """``so101d sim`` on links under ``tmp_path``; returns once both links exist."""
    leader, follower = tmp_path / "leader", tmp_path / "follower"
    command = ["sim", "--leader", str(leader), "--follower", str(follower), "--motion", "none"]
    process = subprocess.Popen(
        [sys.executable, "-m", "so101d", *command, *options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def serving() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"so101d sim exited early: {process.communicate()}")
        return leader.is_symlink() and follower.is_symlink()

    wait_for(serving, timeout=30)
    assert process.stdout is not None
    while not process.stdout.readline().startswith("Type 'help'"):  # the banner
        pass
    return process


def console(process: subprocess.Popen[str], line: str) -> str:
    """Send one console line and return the line it answers with."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(line + "\n")
    process.stdin.flush()
    return process.stdout.readline().strip()


def stop_sim(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_wrist_roll_driven_across_the_seam_reads_like_a_real_servo(tmp_path: Path) -> None:
    process = run_sim(tmp_path, "--mount", "leader.wrist_roll=4080")
    try:
        with bus_on(str(tmp_path / "leader")) as bus:
            assert console(process, "set leader wrist_roll 4085").endswith("set to 4085")
            assert bus.read("Present_Position", 5) == 4085
            console(process, "move leader wrist_roll 8 10")  # 19 ticks at 10 ticks/s
            seen = [4085]
            while seen[-1] != 8:
                position = bus.read("Present_Position", 5)
                if position != seen[-1]:
                    seen.append(position)
    finally:
        stop_sim(process)
    assert seen == [*range(4085, 4096), *range(0, 9)]  # ..., 4094, 4095, 0, 1, ...


def test_arm_seed_makes_the_same_arm_twice(tmp_path: Path) -> None:
    truths = []
    for run, options in enumerate((["--arm-seed", "7"], ["--arm-seed", "7"], ["--arm-seed", "8"])):
        process = run_sim(tmp_path / str(run), *options)
        try:
            truth = json.loads(console(process, "status --json"))
        finally:
            stop_sim(process)
        truths.append(
            {
                role: [(j["travel"], j["mount"], j["encoder"]) for j in arm["joints"]]
                for role, arm in truth.items()
            }
        )
    assert truths[0] == truths[1] != truths[2]


def test_travel_and_mount_options_and_their_errors(tmp_path: Path) -> None:
    process = run_sim(tmp_path, "--travel", "follower.gripper=1300", "--mount", "wrist_roll=50")
    try:
        truth = json.loads(console(process, "status --json"))
    finally:
        stop_sim(process)
    assert truth["follower"]["joints"][5]["travel"] == 1300
    assert truth["leader"]["joints"][5]["travel"] == 1100  # the leader keeps its handle
    assert truth["leader"]["joints"][4]["mount"] == truth["follower"]["joints"][4]["mount"] == 50
    links = ["--leader", str(tmp_path / "l2"), "--follower", str(tmp_path / "f2")]
    bad = subprocess.run(
        [sys.executable, "-m", "so101d", "sim", *links, "--mount", "robot.wrist_roll=5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "--mount: give [leader.|follower.]JOINT=VALUE, not 'robot.wrist_roll=5'" in bad.stderr


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
