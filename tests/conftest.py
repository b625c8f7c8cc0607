"""Fixtures shared by the test modules: virtual arms, and our driver on the follower."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from so101d.feetech import FeetechBus
from so101d.sim import VirtualArm
from tests.arms import bus_on


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
