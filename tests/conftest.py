"""Fixtures shared by the test modules: virtual arms, our driver on the follower, and the
real daemon on a virtual pair."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from so101d.feetech import FeetechBus
from so101d.sim import Fidelity, VirtualArm
from tests.arms import bus_on
from tests.daemon_harness import Daemon, PairSetup, StartDaemon, short_tmpdir, virtual_pair


@pytest.fixture
def follower(tmp_path: Path) -> Iterator[VirtualArm]:
    with VirtualArm("follower", tmp_path / "so101_follower") as arm:
        yield arm


@pytest.fixture
def leader(tmp_path: Path) -> Iterator[VirtualArm]:
    with VirtualArm("leader", tmp_path / "so101_leader") as arm:
        yield arm


@pytest.fixture
def bus(follower: VirtualArm) -> Iterator[FeetechBus]:
    with bus_on(follower.link) as opened:
        yield opened


@pytest.fixture
def work() -> Iterator[Path]:
    with short_tmpdir() as path:
        yield path


@pytest.fixture
def pair(work: Path) -> Iterator[PairSetup]:
    with virtual_pair(work, "main", "so101", seed=1) as setup:
        yield setup


# A mirror judged to the degree needs arms without weight: under gravity a follower droops
# by what its P gain (LeRobot's 16) cannot hold, a servo property, not the mirror's.
WEIGHTLESS = Fidelity(gravity=False)


@pytest.fixture
def weightless_pair(work: Path) -> Iterator[PairSetup]:
    with virtual_pair(work, "main", "so101", seed=1, fidelity=WEIGHTLESS) as setup:
        yield setup


@pytest.fixture
def other(work: Path) -> Iterator[PairSetup]:
    """A second pair, "b", beside ``pair``."""
    with virtual_pair(work, "b", "b", seed=3) as setup:
        yield setup


@pytest.fixture
def start_daemon(work: Path) -> Iterator[StartDaemon]:
    daemons: list[Daemon] = []

    def start(
        *pairs: PairSetup,
        env: dict[str, str] | None = None,
        per_pair: dict[str, dict[str, object]] | None = None,
        top: str = "",
        **settings: object,
    ) -> Daemon:
        """``settings`` for every pair, ``per_pair[name]`` for that one on top; ``top``: more
        top-level lines of the config."""
        text = (
            f'calibration_dir = "{work / "calibration"}"\n'
            f'socket = "{work / "api.sock"}"\nstats_interval_s = 1.0\n{top}\n'
        )
        text += "\n\n".join(
            p.toml(**{**settings, **(per_pair or {}).get(p.name, {})}) for p in pairs
        )
        daemon = Daemon(text, work, env)
        daemons.append(daemon)
        return daemon

    yield start
    for daemon in daemons:
        daemon.close()
