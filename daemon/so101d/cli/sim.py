"""``so101d sim``: run a virtual leader/follower pair until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from so101d.feetech.registers import BAUD_RATES
from so101d.sim import Fidelity, UsbLatency, VirtualPair
from so101d.sim.calibration_files import calibrate_like_lerobot
from so101d.sim.console import CommandError, apply_joint_setting, describe_arm, execute
from so101d.sim.motion import MOTIONS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="run simulated SO-101 arms on virtual serial ports",
        description="Run a simulated leader and follower arm (six STS3215 servos each) behind "
        "virtual serial ports, until interrupted. Commands on stdin inject faults, unplug arms "
        "and more; type 'help'.",
    )
    parser.add_argument("--leader", required=True, metavar="PATH", help="leader port symlink")
    parser.add_argument("--follower", required=True, metavar="PATH", help="follower port symlink")
    parser.add_argument(
        "--leader-voltage",
        type=float,
        default=5.0,
        metavar="V",
        help="the leader's supply voltage, as its servos report it (default: %(default)s)",
    )
    parser.add_argument(
        "--follower-voltage",
        type=float,
        default=12.0,
        metavar="V",
        help="the follower's supply voltage: 12 V or 7.4 V arms (default: %(default)s)",
    )
    parser.add_argument(
        "--motion",
        choices=(*MOTIONS, "none"),
        default="wave",
        help="what the hand does with the leader (default: wave)",
    )
    parser.add_argument("--seed", type=int, default=0, help="varies the arms' encoder mounting")
    parser.add_argument(
        "--arm-seed",
        type=int,
        metavar="N",
        help="build different arms, the same for the same N: travel within the published "
        "bands, encoders anywhere on their turn (seams inside the travel), wrist_roll homed "
        "off its middle",
    )
    parser.add_argument(
        "--travel",
        action="append",
        default=[],
        metavar="[ROLE.]JOINT=TICKS",
        help="ticks between a joint's end stops (both arms unless ROLE is given); repeatable",
    )
    parser.add_argument(
        "--mount",
        action="append",
        default=[],
        metavar="[ROLE.]JOINT=RAW",
        help="the raw encoder reading at a joint's middle (RAW near 0 or 4095 puts the seam "
        "inside the travel); repeatable",
    )
    parser.add_argument(
        "--usb-latency",
        type=_usb_latency,
        default=UsbLatency(),
        metavar="MODEL",
        help="ch343 (default: ~1-2 ms per transaction, rare stalls), none, or "
        "FIXED_MS,JITTER_MS,STALL_RATE,STALL_MIN_MS,STALL_MAX_MS",
    )
    parser.add_argument(
        "--no-gravity",
        action="store_true",
        help="idealised arms: joints carry no weight (a limp follower stays where it is)",
    )
    parser.add_argument(
        "--baudrate",
        type=int,
        choices=sorted(BAUD_RATES.values()),
        default=1_000_000,
        help="the servos' baud rate (default: %(default)s, as so101d and LeRobot use)",
    )
    parser.add_argument(
        "--calibration-dir",
        type=Path,
        metavar="DIR",
        help="write LeRobot calibration files matching the virtual arms under DIR "
        "(teleoperators/so_leader/ID.json, robots/so_follower/ID.json)",
    )
    parser.add_argument("--leader-id", default="main_leader", help="leader calibration id")
    parser.add_argument("--follower-id", default="main_follower", help="follower calibration id")
    parser.set_defaults(handler=run)


def _usb_latency(text: str) -> UsbLatency:
    try:
        return UsbLatency.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    pair = VirtualPair(
        args.leader,
        args.follower,
        leader_voltage=args.leader_voltage,
        follower_voltage=args.follower_voltage,
        seed=args.seed,
        arm_seed=args.arm_seed,
        motion=None if args.motion == "none" else args.motion,
        baudrate=args.baudrate,
        fidelity=Fidelity(gravity=not args.no_gravity, usb=args.usb_latency),
    )
    try:
        for kind in ("travel", "mount"):
            for text in getattr(args, kind):
                apply_joint_setting(pair, kind, text)
    except CommandError as exc:
        print(f"so101d sim: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        pair.start()
    except OSError as exc:
        print(f"so101d sim: {exc}", file=sys.stderr)
        return 1
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print("so101d sim: SIMULATED SO-101 ARMS, NO HARDWARE")
        for arm in pair.arms:
            print(describe_arm(arm))
        if args.calibration_dir is not None:
            for arm, arm_id in ((pair.leader, args.leader_id), (pair.follower, args.follower_id)):
                path = calibrate_like_lerobot(arm, args.calibration_dir, arm_id)
                print(f"{arm.role:<8} calibration {path}")
        print("Type 'help' for commands; Ctrl-C to stop.", flush=True)
        threading.Thread(target=_serve_console, args=(pair,), daemon=True).start()
        stop.wait()
    finally:
        pair.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _serve_console(pair: VirtualPair) -> None:
    """Run commands from stdin until EOF (after which the simulation simply keeps running)."""
    for line in sys.stdin:
        try:
            reply = execute(pair, line)
        except CommandError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            continue
        if reply:
            print(reply, flush=True)
