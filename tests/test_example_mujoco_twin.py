"""examples/mujoco_twin.py poses the MuJoCo model as the follower is: against a control socket
serving the follower's raw positions in ``status`` (``positions.follower``, joint -> tick), the
model's joint angles equal ``frames.convert`` of those ticks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from so101d.api import ApiServer
from so101d.calibration.files import read_calibration
from so101d.calibration.model import JOINTS
from so101d.frames import Frame, convert
from so101d.sim.arm import VirtualArm
from so101d.sim.calibration_files import calibrate_like_lerobot
from tests.mujoco_models import OLD_CALIB, model_path

EXAMPLE = Path(__file__).parent.parent / "examples" / "mujoco_twin.py"


def run_twin(*args: str) -> list[dict[str, float]]:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--headless", "--rate", "200", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize(
    ("frame", "model"), [(Frame.MUJOCO, None), (Frame.MUJOCO_OLD, model_path(OLD_CALIB))]
)
def test_the_twin_holds_the_followers_pose(
    tmp_path: Path, frame: Frame, model: Path | None
) -> None:
    follower = VirtualArm("follower", tmp_path / "so101_follower", seed=5)
    calibration_file = calibrate_like_lerobot(follower, tmp_path / "calibration", "f")
    raw = {joint: follower.servo(m).get("Present_Position") for m, joint in enumerate(JOINTS, 1)}
    calls = []

    def status(params: dict[str, Any]) -> dict[str, Any]:
        calls.append(params)
        # the first reply has no positions yet (a pair still waiting): the twin waits too
        positions = {"leader": raw, "follower": raw} if len(calls) > 1 else {}
        return {"pairs": {"main": {"state": "teleop", "positions": positions}}}

    socket = tmp_path / "api.sock"
    with ApiServer(socket, {"status": status}):
        args = ["--calibration", str(calibration_file), "--socket", str(socket), "--updates", "2"]
        if model is not None:
            args += ["--model", str(model), "--frame", str(frame)]
        shown = run_twin(*args)
    expected = convert(raw, Frame.RAW, frame, read_calibration(calibration_file))
    assert shown == [expected, expected]
    assert len(calls) == 3
