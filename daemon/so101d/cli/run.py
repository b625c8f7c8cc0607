"""``so101d run``: the daemon, as systemd starts it."""

from __future__ import annotations

import argparse
import logging

from so101d.api import ApiError
from so101d.cli.config import add_config_option, config_or_report
from so101d.service import setup_logging
from so101d.supervisor import Supervisor

EX_CONFIG = 78  # sysexits.h; the unit's RestartPreventExitStatus keeps a bad config from looping


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the daemon: wait for the arms and mirror leader to follower",
        description="Run the so101d daemon in the foreground, as lerobot.service does: for "
        "each configured pair, wait for both boards, validate the calibration files, run the "
        "no-motion precheck, engage the follower slowly, then mirror the leader; recover from "
        "unplugs and faults by itself. Logs go to stderr (the journal under systemd); "
        "`so101d status` talks to it over its control socket. Exits 78 on a bad config.",
    )
    add_config_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = config_or_report(args.config, "run")
    if config is None:
        return EX_CONFIG
    setup_logging(config.log_level)
    try:
        return Supervisor(config).run()
    except (ApiError, OSError) as exc:
        logging.getLogger("so101d").error("cannot start: %s", exc)
        return 1
