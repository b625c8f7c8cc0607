"""``so101d bench``: the daemon's own teleop loop timed on virtual arms, and LeRobot's beside it.

Each side runs in a process of its own (the simulator, in this process, must not share its
GIL): so101d's loop (:mod:`so101d.bench.so101d_loop`, optionally from another checkout, to
compare commits) and LeRobot's ``teleop_loop`` in LeRobot's interpreter
(:mod:`so101d.bench.lerobot_loop`). Every run gets fresh virtual arms. Rounds alternate the
sides; the figures reported are medians over the rounds. With ``leader_port`` the leader is
a real arm, only ever read (the follower stays virtual).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from so101d.calibration.locate import calibration_path
from so101d.calibration.model import Role
from so101d.sim import VirtualArm, VirtualPair
from so101d.sim.calibration_files import calibrate_like_lerobot

HERE = Path(__file__).parent
LEADER_ID, FOLLOWER_ID = "bench_leader", "bench_follower"
COUNT_SECONDS = 1.0  # the phase with system calls counted, after the timed one
RETRIES = 2
UNTHROTTLED_CONFIG_HZ = 500  # the config's highest rate: the limits the loop runs with


class BenchError(Exception):
    """A side of the benchmark could not run; the message says which and why."""


@dataclass(frozen=True)
class Side:
    """One loop to measure: so101d's (``tree``: another checkout's root) or LeRobot's."""

    name: str
    lerobot_python: str | None = None
    tree: Path | None = None

    @property
    def is_lerobot(self) -> bool:
        return self.lerobot_python is not None


@dataclass(frozen=True)
class Measurement:
    """One side at one rate: medians over the rounds (``durations``: every round's cycles)."""

    cpu_us_per_cycle: float
    syscalls_per_cycle: float | None
    cycle_p50_ms: float
    cycle_p99_ms: float
    cycle_max_ms: float
    rate_hz: float
    peak_rss_mb: float
    cycles: int
    durations: list[float] = field(repr=False, default_factory=list)


@dataclass(frozen=True)
class BenchPlan:
    sides: Sequence[Side]
    rates: Sequence[float]  # 0: unthrottled
    seconds: float = 10.0
    rounds: int = 3
    leader_port: str | None = None  # a real leader, read only
    leader_calibration: Path | None = None  # its LeRobot calibration file


def run_bench(
    plan: BenchPlan, progress: Callable[[str], None] = lambda _: None
) -> dict[float, dict[str, Measurement]]:
    """``{rate: {side name: Measurement}}`` for every rate and side of ``plan``."""
    if plan.leader_port and any(side.is_lerobot for side in plan.sides):
        raise BenchError(
            "LeRobot's loop writes to the leader when it connects (torque, settings): it "
            "only runs against virtual arms; drop --port or --against-lerobot"
        )
    runs: dict[float, dict[str, list[dict[str, Any]]]] = {
        rate: {side.name: [] for side in plan.sides} for rate in plan.rates
    }
    for round_number in range(1, plan.rounds + 1):
        for rate in plan.rates:
            for side in plan.sides:
                what = f"round {round_number}/{plan.rounds}: {side.name} at {_rate(rate)}"
                progress(what)
                runs[rate][side.name].append(_run_retried(plan, side, rate, what, progress))
    return {
        rate: {name: _summarise(results) for name, results in by_side.items()}
        for rate, by_side in runs.items()
    }


def _rate(rate: float) -> str:
    return "unthrottled" if rate == 0 else f"{rate:g} Hz"


def _run_retried(
    plan: BenchPlan, side: Side, rate: float, what: str, progress: Callable[[str], None]
) -> dict[str, Any]:
    """One run; a failed one (LeRobot gives up on a reply a starved simulator sent late) is
    said and run again on fresh arms, up to RETRIES times."""
    for attempt in range(RETRIES):
        try:
            return _run_once(plan, side, rate)
        except BenchError as exc:
            last_line = str(exc).strip().splitlines()[-1]
            progress(f"{what}: failed ({last_line}); running it again ({attempt + 1}/{RETRIES})")
    return _run_once(plan, side, rate)


def _run_once(plan: BenchPlan, side: Side, rate: float) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="so101d-bench-") as tmp,
        _arms(Path(tmp), plan) as (leader, follower),
    ):
        work = Path(tmp)
        out = work / "result.json"
        command, env = (
            _lerobot_command(side, work, leader, follower, rate, plan.seconds, out)
            if side.is_lerobot
            else _so101d_command(side, work, leader, follower, rate, plan, out)
        )
        _run(side, command, env, timeout=120 + 3 * plan.seconds)
        result: dict[str, Any] = json.loads(out.read_text())
        return result


@contextmanager
def _arms(work: Path, plan: BenchPlan) -> Iterator[tuple[str, str]]:
    """Leader and follower ports with matching calibration files under ``work``."""
    calibration = work / "calibration"
    if plan.leader_port is None:
        with VirtualPair(work / "leader", work / "follower") as pair:
            calibrate_like_lerobot(pair.leader, calibration, LEADER_ID)
            calibrate_like_lerobot(pair.follower, calibration, FOLLOWER_ID)
            yield pair.leader.link, pair.follower.link
        return
    if plan.leader_calibration is None:
        raise BenchError("--port needs the leader's calibration file (--leader-calibration)")
    with VirtualArm("follower", work / "follower") as follower:
        calibrate_like_lerobot(follower, calibration, FOLLOWER_ID)
        target = calibration_path(calibration, Role.LEADER, LEADER_ID)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plan.leader_calibration, target)
        yield plan.leader_port, follower.link


def _so101d_command(
    side: Side, work: Path, leader: str, follower: str, rate: float, plan: BenchPlan, out: Path
) -> tuple[list[str], dict[str, str]]:
    config = work / "config.toml"
    config.write_text(
        f'calibration_dir = "{work / "calibration"}"\nsocket = "{work / "api.sock"}"\n'
        f"[pair.main]\nrate_hz = {rate or UNTHROTTLED_CONFIG_HZ}\n"
        f'leader.port = "{leader}"\nleader.id = "{LEADER_ID}"\n'
        f'follower.port = "{follower}"\nfollower.id = "{FOLLOWER_ID}"\n'
    )
    command = [sys.executable, str(HERE / "so101d_loop.py"), str(config)]
    command += [str(plan.seconds), str(COUNT_SECONDS), str(out)]
    command += ["--unthrottled"] * (rate == 0) + ["--read-only-leader"] * bool(plan.leader_port)
    env = dict(os.environ)
    if side.tree is not None:
        env["PYTHONPATH"] = str(side.tree / "daemon")
    return command, env


def _lerobot_command(
    side: Side, work: Path, leader: str, follower: str, rate: float, seconds: float, out: Path
) -> tuple[list[str], dict[str, str]]:
    calibration = work / "calibration"
    directories = [
        str(calibration_path(calibration, role, arm_id).parent)
        for role, arm_id in ((Role.LEADER, LEADER_ID), (Role.FOLLOWER, FOLLOWER_ID))
    ]
    assert side.lerobot_python is not None
    command = [side.lerobot_python, str(HERE / "lerobot_loop.py"), leader, follower]
    command += [*directories, f"{rate:g}", str(seconds), str(COUNT_SECONDS), str(out)]
    return command, dict(os.environ, HF_HUB_OFFLINE="1")


def _run(side: Side, command: list[str], env: dict[str, str], timeout: float) -> None:
    try:
        done = subprocess.run(
            command,
            env=env,
            input="\n" * 4,  # LeRobot may ask whether to use the calibration file: yes
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BenchError(f"{side.name}: cannot run {command[0]}: {exc.strerror}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{side.name}: still running after {timeout:.0f} s") from exc
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise BenchError(f"{side.name} failed (exit {done.returncode}):\n{tail}")


def percentile(ordered: Sequence[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _one_run(result: dict[str, Any]) -> dict[str, float]:
    durations = sorted(result["durations"])
    if not durations:
        raise BenchError("a run completed no cycle")
    counted = result["counted_cycles"]
    return {
        "cpu_us_per_cycle": result["cpu_s"] / len(durations) * 1e6,
        "syscalls_per_cycle": sum(result["syscalls"].values()) / counted if counted else math.nan,
        "cycle_p50_ms": percentile(durations, 0.50) * 1000,
        "cycle_p99_ms": percentile(durations, 0.99) * 1000,
        "cycle_max_ms": durations[-1] * 1000,
        "rate_hz": len(durations) / result["elapsed_s"],
        "peak_rss_mb": result["peak_rss_kb"] / 1024,
        "cycles": len(durations),
    }


def _summarise(results: list[dict[str, Any]]) -> Measurement:
    runs = [_one_run(result) for result in results]
    medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    syscalls = medians.pop("syscalls_per_cycle")
    cycles = round(medians.pop("cycles"))
    return Measurement(
        **medians,
        syscalls_per_cycle=None if math.isnan(syscalls) else syscalls,
        cycles=cycles,
        durations=[d for result in results for d in result["durations"]],
    )
