"""The real ``so101d run`` from boot to teleop, through unplugs, bad files and hot servos."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from so101d.calibration.model import Role
from so101d.sim import Fault, VirtualArm
from tests.commands import so101d
from tests.daemon_harness import (
    Daemon,
    PairSetup,
    StartDaemon,
    max_deviation,
    save_arm_calibration,
    torque_enabled,
)
from tests.port_access import OPENERS, busy, open_elsewhere
from tests.waiting import wait_for
from tests.wire_tap import RegisterTap, junk_positions

WAVING_JOINTS = ("shoulder_pan", "elbow_flex")  # joints the "wave" motion moves the most
SETTLED_TOLERANCE_DEG = 1.5  # once the leader is still
WATCHDOG_S = 2.0  # WatchdogSec: pings every second, half of it
LAST_STEP_DEG = 5.0  # two cycles at max_speed_dps (180 °/s at 100 Hz) plus the servo's lag


def one_cycle_ticks(max_speed_dps: float, rate_hz: float) -> int:
    """The most one goal may differ from the last: the guard integrates over at most two
    periods (a late cycle earns no bigger step), plus rounding."""
    return math.ceil(max_speed_dps * 2 / rate_hz * 4096 / 360) + 1


def in_teleop(pair: PairSetup, start_daemon: StartDaemon, **settings: object) -> Daemon:
    """A daemon mirroring a waving leader."""
    pair.leader.set_motion("wave")
    daemon = start_daemon(pair, **settings)
    daemon.wait_state("teleop")
    return daemon


def settle_on_leader(pair: PairSetup) -> None:
    pair.leader.set_motion(None)
    wait_for(lambda: max_deviation(pair.leader, pair.follower) < SETTLED_TOLERANCE_DEG, timeout=10)


def assert_clean_log(daemon: Daemon) -> None:
    assert "Traceback" not in daemon.log, daemon.log


# -- boot and tracking --------------------------------------------------------------------


def test_boot_ready_then_teleop_tracks_the_moving_leader(
    weightless_pair: PairSetup,
    start_daemon: StartDaemon,
    record_property: Callable[[str, object], None],
) -> None:
    pair = weightless_pair
    pair.leader.set_motion("wave")
    daemon = start_daemon(pair)
    daemon.notifications.wait_for(lambda text: "READY=1" in text)
    assert daemon.notifications.texts()[0].startswith("READY=1")
    daemon.wait_state("teleop")
    # How far the follower lags depends on the loop rate a busy CPU allows: a benchmark
    # figure. What must hold on any machine: it travels with the leader, then catches up.
    leader_angles, follower_angles, deviations = [], [], []
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        leader_angles.append(pair.leader.joint_angles())
        follower_angles.append(pair.follower.joint_angles())
        deviations.append(max_deviation(pair.leader, pair.follower))
        time.sleep(0.02)
    record_property("moving_deviation_max_deg", round(max(deviations), 2))
    for joint in WAVING_JOINTS:
        led = [a[joint] for a in leader_angles]
        followed = [a[joint] for a in follower_angles]
        assert max(led) - min(led) > 2.0, joint  # the leader did wave
        assert max(followed) - min(followed) > 0.5 * (max(led) - min(led)), joint
    settle_on_leader(pair)
    status = daemon.pair()
    record_property("rate_hz", status["rate_hz"])
    assert status["rate_hz"] > 0 and status["cycle_p99_ms"] > 0
    assert status["temperatures"] and status["voltages"]
    assert any(text.startswith("STATUS=main: teleop") for text in daemon.notifications.texts())
    assert "stats:" in daemon.log
    assert_clean_log(daemon)


def test_teleop_starts_when_the_second_device_appears(
    work: Path, start_daemon: StartDaemon, record_property: Callable[[str, object], None]
) -> None:
    leader = VirtualArm("leader", work / "so101_leader", seed=1)
    follower = VirtualArm("follower", work / "so101_follower", seed=2)
    setup = PairSetup("main", leader, follower)
    setup.save_calibrations(work / "calibration")
    daemon = start_daemon(setup)
    try:
        daemon.wait_state("waiting")
        wait_for(
            lambda: daemon.pair()["reason"] == f"waiting for {leader.link} and {follower.link}"
        )
        leader.start()
        # The daemon saw the leader arrive and waits for the follower only.
        wait_for(lambda: daemon.pair()["reason"] == f"waiting for {follower.link}")
        leader.hold(follower.joint_fractions())  # same pose: engaging needs no ramp
        wait_for(lambda: max_deviation(leader, follower) < 0.5, timeout=10)
        assert daemon.pair()["state"] == "waiting"
        appeared = time.monotonic()
        follower.start()
        daemon.wait_state("teleop")
        # How soon is a benchmark figure (about 0.1 s on an idle machine), not an assertion.
        record_property("teleop_after_second_device_s", round(time.monotonic() - appeared, 3))
    finally:
        leader.stop()
        follower.stop()


# -- unplug and replug ---------------------------------------------------------------------


def test_unplug_and_replug_each_board_without_restarting(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon)
    pid = daemon.status()["pid"]

    pair.leader.unplug()
    wait_for(lambda: daemon.pair()["state"] in ("fault", "waiting"))
    wait_for(lambda: torque_enabled(pair.follower) == [0] * 6)  # stop policy: release
    pair.leader.replug()
    daemon.wait_state("teleop")

    at_unplug = pair.follower.joint_angles()
    pair.follower.unplug()
    wait_for(lambda: daemon.pair()["state"] in ("fault", "waiting"))
    # Unplugged, the servos keep their last goal: at most one step from where they were.
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        angles = pair.follower.joint_angles()
        assert all(abs(angles[j] - at_unplug[j]) < LAST_STEP_DEG for j in angles), angles
        time.sleep(0.02)
    pair.follower.replug()
    daemon.wait_state("teleop")

    assert daemon.status()["pid"] == pid
    assert daemon.pair()["restarts"] >= 2
    assert_clean_log(daemon)


def test_goals_stay_inside_the_followers_range_minus_the_margin(
    weightless_pair: PairSetup, start_daemon: StartDaemon
) -> None:
    pair = weightless_pair
    daemon = start_daemon(pair, clamp_margin_deg=5.0)
    daemon.wait_state("teleop")
    pair.leader.hold({"elbow_flex": 0.0, "wrist_flex": 1.0})  # the hand pushes both to a stop
    travel = {j: pair.follower.expected_calibration()[j] for j in ("elbow_flex", "wrist_flex")}
    margin = {j: 5.0 * 4096 / 360 / (c["range_max"] - c["range_min"]) for j, c in travel.items()}
    wait_for(lambda: pair.leader.joint_fractions()["elbow_flex"] < 0.01, timeout=20)
    wait_for(lambda: pair.leader.joint_fractions()["wrist_flex"] > 0.99, timeout=20)

    def at_the_clamp() -> bool:
        fractions = pair.follower.joint_fractions()
        elbow, wrist = fractions["elbow_flex"], fractions["wrist_flex"]
        return (
            margin["elbow_flex"] * 0.8 < elbow < margin["elbow_flex"] * 1.2
            and 1 - margin["wrist_flex"] * 1.2 < wrist < 1 - margin["wrist_flex"] * 0.8
        )

    wait_for(at_the_clamp, timeout=20)  # the follower gets there, however slow the CPU
    end = time.monotonic() + 0.5
    while time.monotonic() < end:  # and stays: it never goes on into the margin
        assert at_the_clamp(), pair.follower.joint_fractions()
        time.sleep(0.02)


def test_a_glitching_leader_never_makes_the_follower_jump(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    """Through corrupt and wrong-but-valid leader replies, every goal the follower receives
    is within one cycle's allowed motion of the one before (the guard's °/s limit)."""
    daemon = in_teleop(pair, start_daemon, rate_hz=100, max_speed_dps=180.0)
    tap = RegisterTap(pair.follower)
    errors_before = daemon.pair()["errors"]
    wait_for(lambda: len(tap.writes()) > 20)
    for _ in range(5):
        pair.leader.inject(Fault.CORRUPT_CHECKSUM, count=2)
        written = len(tap.writes())
        wait_for(lambda written=written: len(tap.writes()) > written + 10)
    with junk_positions(pair.leader):
        written = len(tap.writes())
        wait_for(lambda: len(tap.writes()) > written + 100)
    assert tap.largest_step() <= one_cycle_ticks(180.0, 100)
    status = daemon.pair()
    assert status["state"] == "teleop" and status["errors"] > errors_before
    assert "implausible leader reading" in daemon.log
    assert_clean_log(daemon)


def test_socket_garbage_and_dropped_clients_never_disturb_teleop(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon)
    errors_before = daemon.pair()["errors"]
    for payload in (
        b"\x00\xff garbage\n",
        b"{not json}\n",
        b"[1, 2]\n",
        b'{"method": "st',
        b'{"id": 1, "method": "nope"}\n',
        b"x" * 200_000,
    ):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(daemon.socket_path))
            with contextlib.suppress(OSError):
                client.sendall(payload)  # and hang up without reading the reply
    status = daemon.pair()
    assert status["state"] == "teleop" and status["errors"] == errors_before
    assert status["rate_hz"] > 0  # still cycling; how fast is the CPU's business
    assert_clean_log(daemon)


# -- status that is never stale -----------------------------------------------------------


def test_after_an_unplug_status_shows_no_old_value_as_current(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon)
    config = ["--config", str(daemon.config)]
    live = wait_for(lambda: daemon.pair()["telemetry"])
    assert live["current"] and live["source"] == "teleop"
    assert "(teleop, read at " in so101d("status", *config).stdout

    pair.follower.unplug()
    unplugged = time.monotonic()
    wait_for(lambda: daemon.pair()["state"] in ("fault", "waiting"))
    status = daemon.pair()
    assert status["temperatures"] == {} and status["voltages"] == {}
    assert not status["telemetry"]["current"]
    shown = so101d("status", *config).stdout
    assert "follower last known " in shown and "not current)" in shown
    age = status["telemetry"]["age_s"]
    wait_for(lambda: daemon.pair()["telemetry"]["age_s"] > age)  # it keeps ageing

    pair.follower.replug()
    daemon.wait_state("teleop")
    fresh = wait_for(lambda: (t := daemon.pair()["telemetry"]) and t["current"] and t)
    assert fresh["age_s"] < time.monotonic() - unplugged  # read after the replug


def test_cooling_shows_the_latest_reading_and_resume_says_why_not(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon)  # max_temperature_c 60, resume below 50
    config = ["--config", str(daemon.config)]
    pair.follower.inject(Fault.OVERHEAT, motor=2, value=66)
    status = daemon.wait_state("fault")
    assert status["latched"] == "cooling" and "is at 66 °C" in status["reason"]

    pair.follower.inject(Fault.OVERHEAT, motor=2, value=58)  # cooler, not cool enough
    refused = so101d("resume", *config)
    assert refused.returncode == 1
    assert refused.stdout.startswith(
        "main: not resumed: still too hot: follower shoulder_lift now at 58 °C (read "
    )
    status = daemon.pair()
    assert status["state"] == "fault" and "resumes below 50 °C; tripped at " in status["reason"]
    assert "is at 66 °C" in status["reason"]  # the reading that tripped it, said as such
    assert status["temperatures"]["shoulder_lift"] == 58
    assert status["telemetry"]["current"] and status["telemetry"]["source"] == "cooling check"
    assert "(cooling check, read at " in so101d("status", *config).stdout

    pair.follower.inject(Fault.OVERHEAT, motor=2, value=50)  # exactly the resume temperature
    assert "now at 50 °C" in so101d("resume", *config).stdout
    assert "follower still at 50 °C (shoulder_lift); resumes below 50 °C" in daemon.log
    assert "waiting for 50" not in daemon.log

    pair.follower.inject(Fault.OVERHEAT, motor=2, value=40)
    resumed = so101d("resume", "--wait", "45", *config)
    assert (resumed.returncode, resumed.stdout) == (0, "main: resumed: teleop\n")
    assert "follower cooled to 40 °C (below 50 °C)" in daemon.log


def test_invalid_calibration_latches_until_the_file_is_fixed(
    work: Path, pair: PairSetup, start_daemon: StartDaemon
) -> None:
    good = pair.follower.expected_calibration()
    wrapped = {joint: dict(values) for joint, values in good.items()}
    wrapped["shoulder_lift"].update(range_min=20, range_max=4070)
    save_arm_calibration(work / "calibration", Role.FOLLOWER, "main_follower", wrapped)
    daemon = start_daemon(pair)

    status = daemon.wait_state("fault")
    assert status["latched"] == "calibration"
    assert "shoulder_lift" in status["reason"] and "main_follower.json" in status["reason"]
    daemon.notifications.wait_for(lambda t: "STATUS=main: fault" in t)
    assert torque_enabled(pair.follower) == [0] * 6
    time.sleep(1.5)
    assert daemon.pair()["state"] == "fault"  # latched: no retry loop

    save_arm_calibration(work / "calibration", Role.FOLLOWER, "main_follower", good)
    daemon.wait_state("teleop")
    assert_clean_log(daemon)


# -- faults that end in a documented state with torque off ---------------------------------


def test_swapped_boards_are_refused(work: Path, pair: PairSetup, start_daemon: StartDaemon) -> None:
    swapped = PairSetup("main", pair.follower, pair.leader)  # config names the wrong ports
    daemon = start_daemon(swapped)
    status = daemon.wait_state("fault")
    assert status["latched"] == "devices" and "swapped" in status["reason"]
    assert torque_enabled(pair.follower) == [0] * 6
    assert torque_enabled(pair.leader) == [0] * 6


def test_missing_motor_is_named(pair: PairSetup, start_daemon: StartDaemon) -> None:
    pair.follower.inject(Fault.MISSING_MOTOR, motor=3)
    daemon = start_daemon(pair)
    status = daemon.wait_state("fault")
    assert status["latched"] == "devices"
    assert "3 (elbow_flex)" in status["reason"] and "follower" in status["reason"]
    assert torque_enabled(pair.follower) == [0] * 6

    still = so101d("resume", "--wait", "45", "--config", str(daemon.config))
    assert still.returncode == 1
    assert still.stdout.startswith("main: not resumed: follower motor(s) 3 (elbow_flex) do not")

    pair.follower.clear()
    resumed = so101d("resume", "--wait", "45", "--config", str(daemon.config))
    assert resumed.returncode == 0 and resumed.stdout == "main: resumed: teleop\n"
    assert daemon.pair()["state"] == "teleop"


def test_replies_late_for_a_second_delay_teleop_without_a_replug(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    pair.leader.inject(Fault.LATE_REPLY, value=0.03)  # every leader reply, past the bus timeout
    late_since = time.monotonic()
    daemon = start_daemon(pair)
    status = daemon.wait_state("fault")
    assert status["latched"] is None and "late" in status["reason"], status
    assert "cables" not in status["reason"]
    retrying = wait_for(lambda: daemon.pair().get("retry"))  # the backoff says when
    assert retrying["attempt"] >= 1 and re.fullmatch(r"\d\d:\d\d:\d\d", retrying["at"])
    daemon.notifications.wait_for(lambda t: t.startswith("STATUS=main: fault, retry "))
    assert re.search(r"retry 1 in \d+\.\d s", daemon.log)
    time.sleep(max(0.0, 1.0 - (time.monotonic() - late_since)))  # the bus stays slow for 1 s
    pair.leader.clear()
    daemon.wait_state("teleop")
    assert "do not answer" not in daemon.log
    assert_clean_log(daemon)


@pytest.mark.parametrize(
    ("fault", "options", "words", "latched"),
    [
        (Fault.BROWNOUT, {"value": 5.0}, "power supply", None),
        (Fault.OVERHEAT, {"motor": 2}, "cool", "cooling"),
        (Fault.JAM, {"motor": 3}, "overload", "operator"),
    ],
    ids=["brownout", "overheat", "jam"],
)
def test_follower_trouble_during_teleop_stops_with_torque_off(
    pair: PairSetup,
    start_daemon: StartDaemon,
    fault: Fault,
    options: dict[str, float],
    words: str,
    latched: str | None,
) -> None:
    daemon = in_teleop(pair, start_daemon)
    pair.follower.inject(fault, **options)  # type: ignore[arg-type]
    status = daemon.wait_state("fault")
    assert words in status["reason"], status["reason"]
    assert status["latched"] == latched
    wait_for(lambda: torque_enabled(pair.follower) == [0] * 6)
    assert_clean_log(daemon)


# -- systemd contract ---------------------------------------------------------------------


def test_a_wedged_pair_restarts_alone_and_the_watchdog_keeps_pinging(
    pair: PairSetup, other: PairSetup, start_daemon: StartDaemon
) -> None:
    # Every read of main's silent leader will wait a whole second: no progress for longer
    # than main's stall_timeout_s, on its bus alone.
    daemon = start_daemon(
        pair,
        other,
        env={"WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6))},
        per_pair={"main": {"bus_timeout_ms": 1000, "stall_timeout_s": 0.5}},
    )
    daemon.wait_state("teleop", "main")
    daemon.wait_state("teleop", "b")
    notifications = daemon.notifications
    wait_for(lambda: notifications.texts().count("WATCHDOG=1") >= 3)
    wedged = time.monotonic()
    pair.leader.inject(Fault.SILENCE)

    def restarted_twice() -> bool:
        assert daemon.pair("b")["state"] == "teleop"  # all along
        return daemon.log.count("main: restarted after no progress for ") >= 2

    wait_for(restarted_twice, timeout=60)
    assert "main: no progress for " in daemon.log
    assert "restarting the pair (its thread and its buses)" in daemon.log
    assert "main: still stuck after 2 s; closing its buses under it" in daemon.log
    pair.leader.clear(Fault.SILENCE)

    def main_back_in_teleop() -> bool:
        assert daemon.pair("b")["state"] == "teleop"
        status = daemon.pair("main")
        if status["state"] == "fault" and status["latched"]:
            daemon.call("resume", pair="main")  # the silent leader's latched precheck
        return status["state"] == "teleop"

    wait_for(main_back_in_teleop, timeout=60)
    ended = time.monotonic()
    assert daemon.pair("main")["restarts"] >= 2
    assert daemon.pair("b")["restarts"] == 0
    # systemd kills the unit when two pings are more than WatchdogSec apart: never here.
    pings = [at for at, text in notifications.all() if text == "WATCHDOG=1"]
    during = [at for at in pings if at >= wedged - WATCHDOG_S] + [ended]
    assert max(b - a for a, b in itertools.pairwise(during)) < WATCHDOG_S
    assert daemon.process.poll() is None
    assert "cannot be restarted" not in daemon.log
    assert_clean_log(daemon)


def test_sigterm_stops_cleanly_applying_the_stop_policy(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon)
    assert torque_enabled(pair.follower) == [1] * 6
    assert daemon.terminate(timeout=30) == 0
    assert "did not stop within" not in daemon.log  # every pair stopped before the deadline
    assert "STOPPING=1" in daemon.notifications.texts()
    assert torque_enabled(pair.follower) == [0] * 6
    assert_clean_log(daemon)


def test_one_pairs_fault_leaves_the_other_in_teleop(
    pair: PairSetup, other: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = start_daemon(pair, other)
    daemon.wait_state("teleop", "main")
    daemon.wait_state("teleop", "b")
    other.follower.unplug()
    daemon.wait_state("waiting", "b")
    for _ in range(20):
        assert daemon.pair("main")["state"] == "teleop"
        time.sleep(0.05)
    assert_clean_log(daemon)


def test_so101d_run_against_so101d_sim(work: Path) -> None:
    links = [work / "so101_leader", work / "so101_follower"]
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "so101d",
            "sim",
            "--leader",
            str(links[0]),
            "--follower",
            str(links[1]),
            "--calibration-dir",
            str(work / "calibration"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    daemon = None
    try:
        wait_for(lambda: all(link.is_symlink() for link in links), timeout=30)
        config = (
            f'calibration_dir = "{work / "calibration"}"\nsocket = "{work / "api.sock"}"\n'
            f'[pair.main]\nleader.port = "{links[0]}"\nleader.id = "main_leader"\n'
            f'follower.port = "{links[1]}"\nfollower.id = "main_follower"\n'
        )
        daemon = Daemon(config, work)
        daemon.wait_state("teleop")
        assert daemon.terminate() == 0
    finally:
        if daemon is not None:
            daemon.close()
        sim.terminate()
        out, _ = sim.communicate(timeout=30)
    assert "main_follower.json" in out and sim.returncode == 0


# -- the control socket from the CLI ---------------------------------------------------------


def test_status_pause_resume_estop_from_the_cli(pair: PairSetup, start_daemon: StartDaemon) -> None:
    daemon = start_daemon(pair)
    daemon.wait_state("teleop")
    config = ["--config", str(daemon.config)]
    shown = so101d("status", *config)
    assert shown.returncode == 0 and "main: teleop" in shown.stdout
    as_json = json.loads(so101d("status", "--json", *config).stdout)
    assert as_json["pairs"]["main"]["state"] == "teleop"

    assert so101d("pause", "main", *config).returncode == 0
    daemon.wait_state("paused")
    assert so101d("resume", *config).returncode == 0
    daemon.wait_state("teleop")

    assert so101d("estop", *config).returncode == 0
    daemon.wait_state("paused")
    wait_for(lambda: torque_enabled(pair.follower) == [0] * 6)
    assert "emergency" in daemon.pair()["reason"]


def test_other_programs_find_the_ports_busy_until_the_pair_is_paused(
    pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = in_teleop(pair, start_daemon)
    for how in OPENERS:  # with or without flock, as LeRobot, a terminal or so101d opens it
        outcome = open_elsewhere(str(pair.follower.link), how)
        assert busy(outcome, how), f"{how}: {outcome}"
    assert daemon.pair()["state"] == "teleop"
    socket = ["--socket", str(daemon.socket_path)]
    assert so101d("pause", "main", *socket).returncode == 0
    daemon.wait_state("paused")  # the README's way to borrow the ports
    for link in (pair.leader.link, pair.follower.link):
        assert open_elsewhere(str(link), "pyserial") == "opened"
    assert so101d("resume", "main", *socket).returncode == 0
    daemon.wait_state("teleop")
    assert_clean_log(daemon)


def test_a_broken_config_is_named_with_the_socket_and_never_swapped_for_another(
    work: Path, pair: PairSetup, start_daemon: StartDaemon
) -> None:
    daemon = start_daemon(pair)
    daemon.wait_state("teleop")
    socket = str(daemon.socket_path)
    broken = work / "broken.toml"
    broken.write_text(daemon.config.read_text().replace("stats_interval_s", "stats_intervall_s"))

    resumed = so101d("resume", "--config", str(broken))  # could start motion: refused
    assert resumed.returncode == 1
    assert f"{broken}: stats_intervall_s = 1.0: unknown key" in resumed.stderr
    assert f"so101d resume --socket {socket}" in resumed.stderr

    stopped = so101d("estop", "--config", str(broken))
    assert stopped.returncode == 0, stopped.stderr
    assert "stats_intervall_s = 1.0: unknown key" in stopped.stderr
    assert f"the config's control socket is {socket}: trying it anyway" in stopped.stderr
    daemon.wait_state("paused")
    wait_for(lambda: torque_enabled(pair.follower) == [0] * 6)

    garbled = work / "garbled.toml"
    garbled.write_text(f'socket = "{socket}"\n[pair.main\n')
    guessed = so101d("estop", "--config", str(garbled))
    assert guessed.returncode == 3
    assert f"{garbled}: line 2: invalid TOML" in guessed.stderr
    assert "control socket cannot be read; the default is /run/so101d/api.sock" in guessed.stderr
    assert "not running (no control socket at /run/so101d/api.sock)" in guessed.stderr

    direct = so101d("resume", "--config", str(garbled), "--socket", socket)
    assert direct.returncode == 0, direct.stderr
    daemon.wait_state("teleop")


def test_status_says_clearly_when_the_daemon_is_not_running(work: Path) -> None:
    result = so101d("status", "--socket", str(work / "nothing.sock"))
    assert result.returncode == 3
    assert "not running" in result.stderr
