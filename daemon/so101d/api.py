"""The control socket: newline-delimited JSON over a Unix stream socket.

A request is one line ``{"id": <any>, "method": "<name>", "params": {...}}``; the reply is one
line ``{"id": <same>, "result": ...}`` or ``{"id": <same>, "error": {"message": "..."}}``.
Replies are strict JSON (no NaN or infinity), so any JSON tool can read them; a request
carrying ``NaN``, ``Infinity`` or a number no double holds (``1e400``) is refused as
invalid JSON, since its id could not be echoed.

An error may carry a machine-readable ``code``, HTTP's number for the same meaning, which a
web front end passes on as its status: 409 (:data:`CONFLICT`, the request collides with
what holds the pair, e.g. a calibration session: the message names it) and 422
(:data:`UNPROCESSABLE`, the request is understood but its subject is not ready, e.g. joints
not yet swept). It may carry more keys with details (``unswept``: the joints). Errors
without a code are bad requests or internal errors. The calibration methods are described
in :mod:`so101d.calibrate.desk`.

The server runs in one thread over non-blocking sockets, so a misbehaving client (garbage,
huge lines, never reading its replies, vanishing mid-request) costs only its own connection.
Idle clients are dropped after a timeout, and at the client limit the longest-idle one makes
room for a new connection, so an emergency stop is always accepted.
Handlers run in that thread and must return quickly; a handler raises :class:`ApiError` for a
request it refuses (the message goes to the client), any other exception is logged as a bug
and reported to the client as an internal error.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import logging
import math
import os
import selectors
import socket
import stat
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Any]

SOCKET_MODE = 0o660
MAX_REQUEST = 64 * 1024  # bytes in one request line; a longer one drops the client
MAX_PENDING_REPLIES = 1024 * 1024  # bytes of unsent replies before a slow client is dropped
MAX_CLIENTS = 64
CLIENT_IDLE_TIMEOUT_S = 30.0  # a client that sends nothing this long is dropped
REFUSAL_LOG_INTERVAL_S = 10.0
_RECV_CHUNK = 64 * 1024
_START_HINT = "start it with `systemctl start lerobot`, or in the foreground with `so101d run`"


CONFLICT = 409
UNPROCESSABLE = 422


class ApiError(Exception):
    """A request failed: refused by the daemon, or no usable reply.

    ``code``: :data:`CONFLICT`, :data:`UNPROCESSABLE` or None; ``details``: more keys of the
    error object (JSON values).
    """

    def __init__(self, message: str, code: int | None = None, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.details = details

    def as_error(self) -> dict[str, Any]:
        code = {} if self.code is None else {"code": self.code}
        return {**self.details, "message": str(self), **code}


class DaemonNotRunning(ApiError):
    """Nothing serves the control socket."""


class ApiServer:
    """Serves ``handlers`` (method name -> function of the params) on a Unix socket."""

    def __init__(self, path: str | Path, handlers: Mapping[str, Handler]) -> None:
        self.path = Path(path)
        self._handlers = dict(handlers)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._listener: socket.socket | None = None
        self._inode: int | None = None
        self._clients: dict[socket.socket, _Client] = {}
        self._stopping = threading.Event()
        self._refused = 0
        self._next_refusal_log = 0.0
        self._thread = threading.Thread(target=self._serve, name="so101d-api", daemon=True)

    def start(self) -> None:
        """Bind (replacing a stale socket file), listen, and serve in a background thread."""
        try:
            self._listener = _listen(self.path)
        except ApiError:
            self._release()
            raise
        self._inode = os.lstat(self.path).st_ino
        self._wake_r.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ, self._accept)
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._wake)
        self._thread.start()

    def close(self) -> None:
        """Stop serving, drop every client and remove the socket file."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread.is_alive():
            self._thread.join()
        else:
            self._release()

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the server thread -------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while not self._stopping.is_set():
                for key, events in self._selector.select(CLIENT_IDLE_TIMEOUT_S / 4):
                    self._on_event(key, events)
                self._drop_idle(time.monotonic() - CLIENT_IDLE_TIMEOUT_S)
        finally:
            self._release()

    def _on_event(self, key: selectors.SelectorKey, events: int) -> None:
        if not isinstance(key.data, _Client):
            key.data()
            return
        client = key.data
        try:
            if events & selectors.EVENT_READ:
                self._receive(client)
            else:
                self._flush(client)
        except OSError as exc:
            self._drop(client, f"connection error: {exc}", logging.DEBUG)
        except Exception:
            log.exception("control socket: unexpected error serving a client")
            self._drop(client, "internal error", logging.DEBUG)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._wake_r.recv(_RECV_CHUNK)

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: try again on the next event
                log.warning("control socket: cannot accept a connection: %s", exc)
                return
            if len(self._clients) >= MAX_CLIENTS and not self._make_room():
                self._refuse(sock)
                continue
            sock.setblocking(False)
            client = _Client(sock)
            self._clients[sock] = client
            self._selector.register(sock, client.interest, client)

    def _make_room(self) -> bool:
        """Drop the longest-idle client that has nothing pending; False if there is none."""
        idle = [c for c in self._clients.values() if not c.outbox and not c.inbox]
        if not idle:
            return False
        oldest = min(idle, key=lambda client: client.last_active)
        self._drop(
            oldest, "client limit reached: the longest idle client makes room", logging.DEBUG
        )
        return True

    def _refuse(self, sock: socket.socket) -> None:
        sock.close()
        self._refused += 1
        now = time.monotonic()
        if now >= self._next_refusal_log:
            log.warning(
                "control socket: %d clients busy; refused %d connection(s) since the last report",
                MAX_CLIENTS,
                self._refused,
            )
            self._refused = 0
            self._next_refusal_log = now + REFUSAL_LOG_INTERVAL_S

    def _drop_idle(self, before: float) -> None:
        for client in list(self._clients.values()):
            if client.last_active < before and not client.outbox:
                self._drop(client, f"idle for over {CLIENT_IDLE_TIMEOUT_S:g} s", logging.DEBUG)

    def _receive(self, client: _Client) -> None:
        try:
            data = client.sock.recv(_RECV_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        client.last_active = time.monotonic()
        if not data:
            # The client is done sending; a last request without its newline still counts.
            client.closing = True
            data = b"\n"
        client.inbox += data
        requests = client.complete_lines()
        if requests is None:
            self._drop(client, f"request longer than {MAX_REQUEST} bytes", logging.WARNING)
            return
        for line in requests:
            if line.strip():
                client.outbox += _encode_line(_answer_request(line, self._handlers))
            if len(client.outbox) > MAX_PENDING_REPLIES:
                self._drop(client, "it does not read its replies", logging.WARNING)
                return
        self._flush(client)

    def _flush(self, client: _Client) -> None:
        if client.outbox:
            try:
                sent = client.sock.send(client.outbox, socket.MSG_NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                sent = 0
            del client.outbox[:sent]
        interest = 0 if client.closing else selectors.EVENT_READ
        if client.outbox:
            interest |= selectors.EVENT_WRITE
        if not interest:
            self._drop(client, "client closed the connection", logging.DEBUG)
        elif interest != client.interest:
            self._selector.modify(client.sock, interest, client)
            client.interest = interest

    def _drop(self, client: _Client, reason: str, level: int) -> None:
        if self._clients.pop(client.sock, None) is None:
            return
        log.log(level, "control socket: dropped a client: %s", reason)
        self._selector.unregister(client.sock)
        client.sock.close()

    def _release(self) -> None:
        for client in list(self._clients.values()):
            self._drop(client, "server closing", logging.DEBUG)
        self._selector.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._remove_socket_file()

    def _remove_socket_file(self) -> None:
        # Only our own: another daemon may have replaced a socket file we lost.
        with contextlib.suppress(OSError):
            if self._inode is not None and os.lstat(self.path).st_ino == self._inode:
                os.unlink(self.path)


class _Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.interest = selectors.EVENT_READ
        self.closing = False  # the client sent EOF: send what is pending, then close
        self.last_active = time.monotonic()

    def complete_lines(self) -> list[bytes] | None:
        """Take the complete lines out of the inbox; None if any line is too long."""
        *lines, rest = self.inbox.split(b"\n")
        if len(rest) > MAX_REQUEST or any(len(line) > MAX_REQUEST for line in lines):
            return None
        self.inbox = rest
        return [bytes(line) for line in lines]


def _answer_request(line: bytes, handlers: Mapping[str, Handler]) -> dict[str, Any]:
    """The reply object for one request line (never raises)."""
    try:
        request = _strict_loads(line)
    except (ValueError, RecursionError) as exc:
        return _error_reply(None, f"invalid JSON: {exc}")
    if not isinstance(request, dict):
        return _error_reply(None, 'a request is a JSON object: {"id": 1, "method": "status"}')
    request_id = request.get("id")
    method = request.get("method")
    params = request.get("params", {})
    handler = handlers.get(method) if isinstance(method, str) else None
    if handler is None:
        known = ", ".join(sorted(handlers))
        return _error_reply(request_id, f"unknown method {method!r}; known: {known}")
    if not isinstance(params, dict):
        return _error_reply(request_id, "params must be a JSON object")
    try:
        result = handler(params)
    except ApiError as exc:
        return {"id": request_id, "error": exc.as_error()}
    except Exception as exc:
        log.exception("control socket: method %s failed", method)
        return _error_reply(request_id, f"internal error in {method}: {exc!r}")
    return {"id": request_id, "result": result}


def _error_reply(request_id: Any, message: str) -> dict[str, Any]:
    return {"id": request_id, "error": {"message": message}}


def _strict_loads(line: bytes) -> Any:
    """JSON as RFC 8259 has it: ``NaN`` and ``Infinity`` are refused, and so is a number no
    double can hold (``1e400``), so nothing a request carries can make its reply non-JSON."""
    return json.loads(line, parse_constant=_refuse_constant, parse_float=_finite_float)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is out of range")
    return value


def _strict_dumps(message: object) -> str:
    return json.dumps(message, allow_nan=False, separators=(",", ":"))


def _encode_line(message: dict[str, Any]) -> bytes:
    """One strict-JSON line; a reply that cannot be encoded becomes an error reply."""
    try:
        text = _strict_dumps(message)
    except (TypeError, ValueError, RecursionError) as exc:
        log.error("control socket: cannot encode a reply as JSON: %s", exc)
        request_id = message.get("id")
        try:
            _strict_dumps(request_id)
        except (TypeError, ValueError, RecursionError):
            request_id = None
        text = _strict_dumps(_error_reply(request_id, f"reply is not valid JSON: {exc}"))
    return text.encode() + b"\n"


def _listen(path: Path) -> socket.socket:
    _remove_stale_socket(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
        os.chmod(path, SOCKET_MODE)
        listener.listen(socket.SOMAXCONN)
    except OSError as exc:
        listener.close()
        reason = f"no directory {path.parent}" if exc.errno == errno.ENOENT else exc.strerror
        raise ApiError(f"cannot serve the control socket {path}: {reason or exc}") from exc
    listener.setblocking(False)
    return listener


def _remove_stale_socket(path: Path) -> None:
    """Remove a socket file left by a daemon that died; refuse if one still answers on it."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ApiError(f"{path} exists and is not a socket; refusing to replace it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        except TimeoutError:
            pass  # a listener with a full backlog: alive, just busy
        except OSError as exc:
            raise ApiError(f"cannot check the existing control socket {path}: {exc}") from exc
    raise ApiError(
        f"another so101d is already running: it answers on {path} "
        "(stop it first, e.g. `systemctl stop lerobot`)"
    )


class ApiClient:
    """Calls methods of the running daemon; one connection per call."""

    def __init__(self, path: str | Path, timeout: float = 2.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> Any:
        """The method's result; ApiError (DaemonNotRunning when nothing serves the socket)."""
        request_id = next(self._ids)
        request = _encode_line({"id": request_id, "method": method, "params": params})
        deadline = time.monotonic() + self.timeout
        try:
            with self._connect() as sock:
                sock.sendall(request)
                line = _read_line(sock, deadline)
        except TimeoutError:
            raise ApiError(
                f"so101d did not answer {method!r} within {self.timeout:g} s on {self.path}"
            ) from None
        except OSError as exc:
            raise ApiError(f"lost the connection to so101d on {self.path}: {exc}") from exc
        return _result(line, request_id, self.path)

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except FileNotFoundError:
            sock.close()
            raise DaemonNotRunning(
                f"so101d is not running (no control socket at {self.path}); {_START_HINT}"
            ) from None
        except ConnectionRefusedError:
            sock.close()
            raise DaemonNotRunning(
                f"so101d is not running (nothing answers on {self.path}); {_START_HINT}"
            ) from None
        except PermissionError:
            sock.close()
            raise ApiError(
                f"permission denied on {self.path}: run as a member of its group, or with sudo"
            ) from None
        except BlockingIOError:
            sock.close()
            raise ApiError(f"so101d is too busy to accept a connection on {self.path}") from None
        except BaseException:
            sock.close()
            raise
        return sock


def _read_line(sock: socket.socket, deadline: float) -> bytes:
    received = bytearray()
    while (end := received.find(b"\n")) < 0:
        if len(received) > MAX_PENDING_REPLIES:
            raise ApiError(f"reply from so101d longer than {MAX_PENDING_REPLIES} bytes")
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = sock.recv(_RECV_CHUNK)
        if not chunk:
            raise ApiError("so101d closed the connection without replying")
        received += chunk
    return bytes(received[:end])


def _result(line: bytes, request_id: int, path: Path) -> Any:
    try:
        reply = json.loads(line)
    except ValueError as exc:
        raise ApiError(f"unreadable reply from so101d on {path}: {exc}") from None
    if not isinstance(reply, dict) or reply.get("id") != request_id:
        raise ApiError(f"unexpected reply from so101d on {path}: {line[:200]!r}")
    if "error" in reply:
        error = reply["error"]
        if not isinstance(error, dict):
            raise ApiError(str(error))
        details = {k: v for k, v in error.items() if k not in ("message", "code")}
        code = error.get("code") if isinstance(error.get("code"), int) else None
        raise ApiError(str(error.get("message") or error), code, **details)
    if "result" not in reply:
        raise ApiError(f"reply from so101d on {path} has neither result nor error")
    return reply["result"]
