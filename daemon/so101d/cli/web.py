"""``so101d web`` (the dashboard's process) and ``so101d web-url`` (the address to open)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from so101d.cli.config import add_config_option, config_or_report
from so101d.config import Config
from so101d.service import setup_logging
from so101d.web.auth import TokenError, ensure_token, read_token, web_url

EX_CONFIG = 78  # as `so101d run`: the unit does not restart on a bad config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser(
        "web",
        help="serve the dashboard and the calibration wizard over HTTP",
        description="Serve the browser dashboard (state, live plot, telemetry, pause, resume, "
        "e-stop, calibration cards and wizard) on the config's [web] listen address, as "
        "so101d-web.service does. It talks to the running daemon only through its control "
        "socket. Makes the token file if there is none. Needs the `web` extra (aiohttp).",
    )
    add_config_option(serve)
    serve.set_defaults(handler=run_web)
    url = subparsers.add_parser(
        "web-url",
        help="print the dashboard's address with its access token",
        description="Print http://<hostname>.local:<port>/?token=...: open it once in a "
        "browser on the same network; it keeps a cookie. The token file is readable by root "
        "and the service group: run with sudo.",
    )
    add_config_option(url)
    url.set_defaults(handler=print_url)


def run_web(args: argparse.Namespace) -> int:
    config = config_or_report(args.config, "web")
    if config is None:
        return EX_CONFIG
    setup_logging(config.log_level)
    listen = _listen(config)
    if listen is None:
        return 0  # disabled on purpose: not a failure for systemd to restart
    try:
        from so101d.web.server import serve
    except ImportError as exc:
        print(f"so101d web needs aiohttp: pip install 'so101d[web]' ({exc})", file=sys.stderr)
        return 1
    token = _token(config, "web", ensure_token)
    if token is None:
        return 1
    host, port = listen
    try:
        asyncio.run(serve(config.socket, token, host, port))
    except OSError as exc:
        logging.getLogger("so101d.web").error("cannot serve on %s:%d: %s", host, port, exc)
        return 1
    return 0


def print_url(args: argparse.Namespace) -> int:
    config = config_or_report(args.config, "web-url")
    listen = None if config is None else _listen(config)
    token = None if config is None or listen is None else _token(config, "web-url", read_token)
    if listen is None or token is None:
        return 1
    print(web_url(socket.gethostname(), listen[1], token))
    return 0


def _listen(config: Config) -> tuple[str, int] | None:
    if config.web.listen is None:
        print(f'{config.path}: [web] listen = "": the web process is disabled', file=sys.stderr)
    return config.web.listen


def _token(config: Config, command: str, get: Callable[[Path], str]) -> str | None:
    try:
        return get(config.web.token_file)
    except TokenError as exc:
        print(f"so101d {command}: {exc}", file=sys.stderr)
        return None
