"""``so101d precheck``: the no-motion checks, offline (when the daemon is not holding the ports)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from so101d.checking import load_pair_calibration
from so101d.cli.config import add_config_option, config_or_report
from so101d.config import Config, PairConfig
from so101d.faults import PairFault
from so101d.motion import MotionGate
from so101d.pair import arm_files, arm_guard, open_arms
from so101d.precheck import run_precheck


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "precheck",
        help="no-motion checks of each pair's arms (stop the daemon first)",
        description="Open each pair's two ports and check, without moving anything: every "
        "motor answers, model and firmware, torque (the leader's off, read back; a holding "
        "follower keeps holding), supply voltages, "
        "temperatures, positions inside the calibrated ranges, the servo EEPROM against the "
        "calibration file, and that the boards are not swapped. Prints a table per pair; "
        "exits 0 when every pair is ready for teleop, 1 otherwise. The daemon holds the "
        "ports while it runs: stop it first (sudo systemctl stop lerobot).",
    )
    add_config_option(parser)
    parser.add_argument("--pair", help="check only this pair")
    parser.add_argument("--json", action="store_true", help="print one JSON object per pair")
    parser.set_defaults(handler=precheck)


def precheck(args: argparse.Namespace) -> int:
    config = config_or_report(args.config, "precheck")
    if config is None:
        return 1
    pairs = _chosen_pairs(config, args.pair)
    if pairs is None:
        print(
            f"so101d precheck: no pair named {args.pair!r}; pairs: {', '.join(config.pairs)}",
            file=sys.stderr,
        )
        return 2
    results = {pair.name: check_pair(config, pair) for pair in pairs}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, result in results.items():
            print(_render(name, result))
    return 0 if all(result["ok"] for result in results.values()) else 1


def _chosen_pairs(config: Config, name: str | None) -> list[PairConfig] | None:
    if name is None:
        return list(config.pairs.values())
    return [config.pairs[name]] if name in config.pairs else None


def check_pair(config: Config, pair: PairConfig) -> dict[str, Any]:
    try:
        calibration = load_pair_calibration(config.calibration_dir, *arm_files(pair))
        gate = MotionGate()
        with open_arms(pair, calibration) as (leader, follower):
            report = run_precheck(
                arm_guard(leader, pair, gate), arm_guard(follower, pair, gate), pair
            )
    except PairFault as fault:
        return {
            "ok": False,
            "fault": fault.reason,
            "latched": fault.latched,
            "checks": [],
            "warnings": [],
        }
    return report.as_dict() | {"table": report.table()}


def _render(name: str, result: dict[str, Any]) -> str:
    lines = [f"pair {name}:"]
    if result.get("table"):
        lines += ["  " + line for line in result["table"].splitlines()]
    lines += [f"  warning: {warning}" for warning in result["warnings"]]
    lines.append(f"  FAIL: {result['fault']}" if result["fault"] else "  OK: ready for teleop")
    return "\n".join(lines)
