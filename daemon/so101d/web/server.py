"""``so101d web``: HTTP for the dashboard and the wizard, a client of the control socket.

Routes (every one behind the token, see :mod:`so101d.web.auth`):

* ``GET /`` the dashboard, ``GET /static/...`` its assets (shipped in the package);
* ``GET /api/stream`` server-sent events, one JSON snapshot per event (:mod:`.stream`);
* ``GET /api/snapshot`` the same snapshot once;
* ``POST /api/<method>`` forwards one of :data:`FORWARDED` with the JSON body's ``pair``,
  ``arm``, ``session`` and ``auto``; the daemon's 409 and 422 come back as the HTTP status, with the
  error object (its ``message``, ``unswept``...) as the body.

This process holds no state of its own beyond the token: a crash, a restart or a slow
browser changes nothing in the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from so101d.api import ApiClient, ApiError, DaemonNotRunning
from so101d.web.auth import COOKIE, HOW_TO_GET_THE_URL, Gate
from so101d.web.stream import Poller

log = logging.getLogger("so101d.web")

STATIC = Path(__file__).parent / "static"
FORWARDED = frozenset(
    {
        "pause",
        "resume",
        "estop",
        "calibrate.start",
        "calibrate.confirm",
        "calibrate.capture",
        "calibrate.done",
        "calibrate.save",
        "calibrate.abort",
    }
)
PARAMS = ("pair", "arm", "session", "auto")
POLL_TIMEOUT_S = 2.0
ACTION_TIMEOUT_S = 15.0  # an e-stop reads every torque back; an abort returns the arm
COOKIE_MAX_AGE_S = 365 * 24 * 3600
MAX_BODY = 16 * 1024
SHUTDOWN_TIMEOUT_S = 2.0  # requests still running when stopping (a forwarded e-stop)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the first visit's URL carries the token
    "Cache-Control": "no-store",
}
_UNAUTHORIZED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>so101d: access link needed</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><h1>so101d: this dashboard needs its access link</h1>
<p>To get it, {how}.</p></body></html>
"""

GATE: web.AppKey[Gate] = web.AppKey("gate", Gate)
POLLER: web.AppKey[Poller] = web.AppKey("poller", Poller)
ACTIONS: web.AppKey[ApiClient] = web.AppKey("actions", ApiClient)


def make_app(socket_path: Path, token: str) -> web.Application:
    app = web.Application(middlewares=[_security_headers, _require_token], client_max_size=MAX_BODY)
    app[GATE] = Gate(token)
    app[POLLER] = Poller(ApiClient(socket_path, timeout=POLL_TIMEOUT_S))
    app[ACTIONS] = ApiClient(socket_path, timeout=ACTION_TIMEOUT_S)
    app.router.add_get("/", _index)
    app.router.add_get("/favicon.ico", _no_icon)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/api/stream", _stream)
    app.router.add_get("/api/snapshot", _snapshot)
    app.router.add_post("/api/{method}", _forward)
    return app


async def serve(socket_path: Path, token: str, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    app = make_app(socket_path, token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, shutdown_timeout=SHUTDOWN_TIMEOUT_S).start()
        log.info(
            "serving the dashboard on http://%s:%d/ (daemon socket %s)", host, port, socket_path
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping")
        app[POLLER].close()  # the live streams end, so no open page holds the exit up
    finally:
        await runner.cleanup()


# -- middleware ------------------------------------------------------------------------------


@web.middleware
async def _security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        response = exc
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def _require_token(request: web.Request, handler: Any) -> web.StreamResponse:
    gate = request.app[GATE]
    address = request.remote or "unknown"
    wait = gate.retry_after(address)
    if wait > 0:
        return _denied(429, {"Retry-After": str(int(wait) + 1)})
    offered = request.query.get("token")
    if offered is not None:
        return _exchange(request, gate, address, offered)
    cookie = request.cookies.get(COOKIE)
    if not gate.valid(cookie):
        if cookie is not None:
            gate.failed(address)
        return _denied(401)
    if request.method not in ("GET", "HEAD") and not _same_origin(request):
        return web.json_response(
            {"message": "refused: the request's Origin is not this dashboard"}, status=403
        )
    response: web.StreamResponse = await handler(request)
    return response


def _exchange(request: web.Request, gate: Gate, address: str, offered: str) -> web.StreamResponse:
    """The first visit: the token in the URL becomes a cookie, and the URL loses it."""
    if request.method != "GET" or not gate.valid(offered):
        gate.failed(address)
        return _denied(401)
    gate.succeeded(address)
    rest = {k: v for k, v in request.query.items() if k != "token"}
    location = request.path + (f"?{urlencode(rest)}" if rest else "")
    response = web.HTTPSeeOther(location)
    response.set_cookie(
        COOKIE, offered, max_age=COOKIE_MAX_AGE_S, path="/", httponly=True, samesite="Strict"
    )
    return response


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is not None and origin in (f"http://{request.host}", f"https://{request.host}")


def _denied(status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=_UNAUTHORIZED.format(how=HOW_TO_GET_THE_URL),
        content_type="text/html",
        headers=headers,
    )


# -- handlers --------------------------------------------------------------------------------


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


async def _no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def _snapshot(request: web.Request) -> web.Response:
    return web.json_response(await request.app[POLLER].snapshot())


async def _stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no", **SECURITY_HEADERS}
    )
    await response.prepare(request)
    with contextlib.suppress(ConnectionResetError):
        async with request.app[POLLER].listen() as snapshots:
            while (snapshot := await snapshots.get()) is not None:
                await response.write(b"data: " + json.dumps(snapshot).encode() + b"\n\n")
    return response


async def _forward(request: web.Request) -> web.Response:
    method = request.match_info["method"]
    if method not in FORWARDED:
        return web.json_response({"message": f"no such action: {method}"}, status=404)
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        return web.json_response({"message": "the body must be a JSON object"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"message": "the body must be a JSON object"}, status=400)
    params = {key: body[key] for key in PARAMS if body.get(key) is not None}
    client = request.app[ACTIONS]
    try:
        result = await asyncio.get_running_loop().run_in_executor(
            None, lambda: client.call(method, **params)
        )
    except DaemonNotRunning as exc:
        return web.json_response({"message": str(exc)}, status=503)
    except ApiError as exc:
        return web.json_response(exc.as_error(), status=exc.code or 400)
    return web.json_response(result)
