"""``so101d bench`` on the simulator: the shape and sanity of what it prints, never timings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from so101d.feetech.protocol import Instruction, Packet
from so101d.sim import VirtualArm
from so101d.sim.calibration_files import calibrate_like_lerobot
from so101d.sim.wire import Reply
from tests.commands import so101d
from tests.lerobot_env import lerobot_python

ROOT = Path(__file__).resolve().parents[1]
ROWS = (
    "CPU µs/cycle",
    "syscalls/cycle",
    "cycle p50 ms",
    "cycle p99 ms",
    "cycle max ms",
    "rate held Hz",
    "peak RSS MB",
)


def bench(*args: str, timeout: float = 240) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "so101d", "bench", "--seconds", "1", "--rounds", "1", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def blocks(output: str) -> dict[str, tuple[str, dict[str, list[float]]]]:
    """``{rate title: (header line, {row label: figures per column})}``."""
    found: dict[str, tuple[str, dict[str, list[float]]]] = {}
    for block in output.split("\n\n")[1:]:
        header, *rows = block.strip("\n").splitlines()
        figures = {line[:16].strip(): [float(cell) for cell in line[16:].split()] for line in rows}
        found[header[:16].strip()] = (header, figures)
    return found


def assert_sane(figures: dict[str, list[float]], column: int) -> None:
    assert tuple(figures) == ROWS
    cpu, syscalls, p50, p99, worst, rate, rss = (figures[row][column] for row in ROWS)
    assert cpu > 0 and syscalls >= 1 and rate > 0 and rss > 1
    assert 0 < p50 <= p99 <= worst


def test_bench_times_the_daemon_loop_throttled_and_not_and_another_checkout() -> None:
    output = bench("--rate", "100", "0", "--compare-tree", str(ROOT))
    found = blocks(output)
    assert list(found) == ["100 Hz", "unthrottled"]
    for header, figures in found.values():
        assert header.split()[-2:] == ["so101d", f"so101d@{ROOT.name}"]
        assert_sane(figures, 0)
        assert_sane(figures, 1)
    assert found["100 Hz"][1]["rate held Hz"][0] <= 101  # the throttle holds the loop back


@pytest.mark.lerobot
def test_bench_against_lerobot_puts_both_loops_side_by_side(tmp_path: Path) -> None:
    output = bench("--against-lerobot", "--lerobot-python", lerobot_python())
    ((header, figures),) = blocks(output).values()
    assert header.split()[2:] == ["so101d", "LeRobot", "so101d", "÷", "LeRobot"]
    assert_sane(figures, 0)
    assert_sane(figures, 1)
    ours, theirs, ratio = figures["peak RSS MB"]
    assert theirs > ours  # LeRobot's motor code imports PyTorch
    assert ratio == pytest.approx(ours / theirs, abs=0.01)


def test_bench_refuses_lerobot_against_a_real_leader() -> None:
    done = so101d("bench", "--port", "/dev/ttyACM0", "--against-lerobot", "--lerobot-python", "x")
    assert done.returncode == 1
    assert "LeRobot's loop writes to the leader" in done.stderr


def test_bench_says_when_lerobot_cannot_run(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-python")
    done = so101d(
        "bench", "--seconds", "1", "--rounds", "1", "--against-lerobot", "--lerobot-python", missing
    )
    assert done.returncode == 1
    assert f"LeRobot: cannot run {missing}" in done.stderr


def test_plot_draws_every_side_at_every_rate(tmp_path: Path) -> None:  # matplotlib: test extra
    from so101d.bench import Measurement
    from so101d.bench.report import plot

    def measured(durations: list[float]) -> Measurement:
        return Measurement(1.0, 1.0, 1.0, 1.0, 1.0, 100.0, 20.0, len(durations), durations)

    results = {
        rate: {"so101d": measured([0.001, 0.002]), "LeRobot": measured([0.004, 0.009])}
        for rate in (100.0, 0.0)
    }
    path = tmp_path / "cycles.png"
    plot(results, path)
    assert path.read_bytes().startswith(b"\x89PNG")


def test_bench_on_a_real_leader_only_reads_it(leader: VirtualArm, tmp_path: Path) -> None:
    """The virtual leader stands in for a real one: what reaches it must not write."""
    instructions: list[int] = []

    def record(request: Packet, replies: list[Reply]) -> list[Reply]:
        instructions.append(request.code)
        return replies

    leader.tap(record)
    calibration = calibrate_like_lerobot(leader, tmp_path / "calibration", "my_leader")
    output = bench("--port", leader.link, "--leader-calibration", str(calibration))
    ((_, figures),) = blocks(output).values()
    assert_sane(figures, 0)
    assert Instruction.SYNC_READ in instructions  # the loop ran on it
    assert set(instructions) <= {Instruction.PING, Instruction.READ, Instruction.SYNC_READ}
