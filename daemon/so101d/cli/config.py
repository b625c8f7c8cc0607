"""``so101d config check [--config PATH]``: is the daemon's configuration file usable?

Exit status: 0 when it is (a short summary is printed), 1 when it is not (the error names the
file, the key and the value), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from so101d.config import (
    DEFAULT_CONFIG_PATH,
    ArmConfig,
    Config,
    ConfigError,
    ConfigErrors,
    load_config,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "config",
        help="work with the daemon's configuration file",
        description="Work with the daemon's TOML configuration file.",
    )
    parser.set_defaults(handler=lambda _args: _usage(parser))
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    check = commands.add_parser(
        "check",
        help="validate the configuration and summarise it",
        description="Validate the configuration file and print a short summary. "
        "Exits 0 when it is usable, 1 when it is not.",
    )
    add_config_option(check)
    check.set_defaults(handler=run_check)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """The ``--config PATH`` option, for every command that reads the configuration."""
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        metavar="PATH",
        help=f"the configuration file (default: {DEFAULT_CONFIG_PATH})",
    )


def run_check(args: argparse.Namespace) -> int:
    config = config_or_report(args.config, "config check")
    if config is None:
        return 1
    print(render_summary(config))
    return 0


def config_or_report(path: Path, command: str) -> Config | None:
    """The configuration, or None after telling the person what is wrong with it."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for error in exc.errors if isinstance(exc, ConfigErrors) else [exc]:
            print(f"so101d {command}: {error}", file=sys.stderr)
        return None


def render_summary(config: Config) -> str:
    count = len(config.pairs)
    lines = [
        f"{config.path}: OK, {count} pair{'s' if count != 1 else ''}",
        f"  calibration_dir  {config.calibration_dir}",
        f"  socket           {config.socket}",
    ]
    for pair in config.pairs.values():
        lines.append(f"  pair {pair.name}: {pair.rate_hz:g} Hz, stop policy {pair.stop_policy}")
        lines.append(_arm_line("leader", pair.leader))
        lines.append(_arm_line("follower", pair.follower))
    return "\n".join(lines)


def _arm_line(role: str, arm: ArmConfig) -> str:
    motors = " ".join(str(motor) for motor in arm.motor_ids.values())
    return f"    {role:<8}  {arm.port}  id {arm.id}  motors {motors}"


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2
