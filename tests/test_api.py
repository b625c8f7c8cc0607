"""The control socket: round trips, errors, and clients that misbehave in every way we know."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from so101d import api
from so101d.api import (
    MAX_CLIENTS,
    MAX_REQUEST,
    ApiClient,
    ApiError,
    ApiServer,
    DaemonNotRunning,
)
from tests.waiting import wait_for

BIG_REPLY = 100 * 1024


def refuse(params: dict[str, Any]) -> Any:
    raise ApiError(f"no pair named {params.get('pair')!r}")


def crash(params: dict[str, Any]) -> Any:
    raise RuntimeError("handler bug")


HANDLERS = {
    "echo": lambda params: params,
    "refuse": refuse,
    "crash": crash,
    "nan": lambda params: {"temperature": float("nan")},
    "object": lambda params: object(),
    "big": lambda params: "x" * BIG_REPLY,
}


@pytest.fixture
def path() -> Iterator[Path]:
    # AF_UNIX paths are limited to ~107 bytes: pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="so101d-", dir="/tmp") as directory:
        yield Path(directory) / "api.sock"


@pytest.fixture
def server(path: Path) -> Iterator[ApiServer]:
    with ApiServer(path, HANDLERS) as server:
        yield server


@pytest.fixture
def client(server: ApiServer) -> ApiClient:
    return ApiClient(server.path, timeout=10)


def strict_json(line: bytes) -> Any:
    """``line`` parsed as RFC 8259 JSON: NaN, Infinity and out-of-range numbers fail."""

    def refuse(text: str) -> Any:
        raise AssertionError(f"not strict JSON ({text}): {line!r}")

    def finite(text: str) -> float:
        return float(text) if math.isfinite(float(text)) else refuse(text)

    return json.loads(line, parse_constant=refuse, parse_float=finite)


class RawClient:
    """A connection speaking bytes, for requests ApiClient would never send.

    Every reply must be strict JSON, whatever was sent.
    """

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.settimeout(10)
        self._received = b""

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        """Send, ignoring that the server may already have dropped us."""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(data)

    def reply(self) -> dict[str, Any]:
        while b"\n" not in self._received:
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed after {self._received!r}"
            self._received += chunk
        line, _, self._received = self._received.partition(b"\n")
        reply: dict[str, Any] = strict_json(line)
        return reply

    def request(self, message: object) -> dict[str, Any]:
        self.send(json.dumps(message).encode() + b"\n")
        return self.reply()

    def until_closed(self) -> bytes:
        """Everything the server sends until it closes the connection."""
        data, self._received = self._received, b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := self.sock.recv(65536):
                data += chunk
        return data


def assert_serving(client: ApiClient) -> None:
    assert client.call("echo", still="here") == {"still": "here"}


# -- the protocol ------------------------------------------------------------------------


def test_a_call_returns_the_result(client: ApiClient) -> None:
    assert client.call("echo", pair="main", values=[1, 2.5, None]) == {
        "pair": "main",
        "values": [1, 2.5, None],
    }
    assert client.call("echo") == {}


def test_the_wire_format(server: ApiServer) -> None:
    with RawClient(server.path) as raw:
        assert raw.request({"id": "a", "method": "echo", "params": {"x": 1}}) == {
            "id": "a",
            "result": {"x": 1},
        }
        assert raw.request({"method": "echo"}) == {"id": None, "result": {}}
        reply = raw.request({"id": [1], "method": "nope"})
        assert reply["id"] == [1]
        assert "unknown method 'nope'" in reply["error"]["message"]
        assert "echo" in reply["error"]["message"]  # the known methods are listed


def test_the_socket_is_group_accessible(server: ApiServer) -> None:
    assert stat.S_ISSOCK(os.stat(server.path).st_mode)
    assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o660


def test_a_refusal_reaches_the_caller_as_api_error(client: ApiClient) -> None:
    with pytest.raises(ApiError, match="no pair named 'left'"):
        client.call("refuse", pair="left")
    assert_serving(client)


def test_a_crashing_handler_is_logged_and_the_server_keeps_serving(
    client: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="so101d.api"),
        pytest.raises(ApiError, match="internal error in crash: RuntimeError"),
    ):
        client.call("crash")
    assert any(record.exc_info for record in caplog.records)
    assert_serving(client)


@pytest.mark.parametrize("method", ["nan", "object"])
def test_a_result_that_is_not_strict_json_becomes_an_error(client: ApiClient, method: str) -> None:
    with pytest.raises(ApiError, match="not valid JSON"):
        client.call(method)
    assert_serving(client)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (b"\xff\xfe\x00garbage", "invalid JSON"),
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "a request is a JSON object"),
        (b"42", "a request is a JSON object"),
        (b'"status"', "a request is a JSON object"),
        (b'{"id": 3, "method": 5}', "unknown method 5"),
        (b'{"id": 3, "method": "echo", "params": [1]}', "params must be a JSON object"),
        (b"[" * 50_000, "invalid JSON"),  # nesting deeper than the parser's recursion limit
    ],
)
def test_bad_requests_get_an_error_and_the_connection_stays_usable(
    server: ApiServer, line: bytes, fragment: str
) -> None:
    with RawClient(server.path) as raw:
        raw.send(line + b"\n")
        assert fragment in raw.reply()["error"]["message"]
        assert raw.request({"id": 1, "method": "echo"}) == {"id": 1, "result": {}}


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
@pytest.mark.parametrize(
    "template",
    [
        b'{"id": %s, "method": "echo"}',
        b'{"id": %s, "method": "nope"}',
        b'{"id": 1, "method": "echo", "params": {"x": %s}}',
    ],
    ids=["id", "id-unknown-method", "param"],
)
def test_numbers_json_cannot_carry_get_a_strict_json_error(
    server: ApiServer, number: bytes, template: bytes
) -> None:
    with RawClient(server.path) as raw:
        raw.send(template % number + b"\n")
        reply = raw.reply()
        assert reply["id"] is None
        message = reply["error"]["message"]
        assert message.startswith("invalid JSON: ") and number.lstrip(b"-").decode() in message
        assert raw.request({"id": 1, "method": "echo"}) == {"id": 1, "result": {}}


def test_blank_lines_are_ignored(server: ApiServer) -> None:
    with RawClient(server.path) as raw:
        raw.send(b"\n\r\n  \n")
        assert raw.request({"id": 7, "method": "echo"}) == {"id": 7, "result": {}}


def test_pipelined_requests_are_answered_in_order(server: ApiServer) -> None:
    with RawClient(server.path) as raw:
        lines = b"".join(
            json.dumps({"id": i, "method": "echo", "params": {"i": i}}).encode() + b"\n"
            for i in range(50)
        )
        raw.send(lines[:1000])
        raw.send(lines[1000:])
        assert [raw.reply()["id"] for _ in range(50)] == list(range(50))


def test_a_last_request_without_newline_is_answered_before_closing(server: ApiServer) -> None:
    with RawClient(server.path) as raw:
        raw.send(b'{"id": 9, "method": "echo"}')
        raw.sock.shutdown(socket.SHUT_WR)
        assert json.loads(raw.until_closed()) == {"id": 9, "result": {}}


# -- clients that misbehave ----------------------------------------------------------------


def test_a_huge_line_drops_that_client_only(server: ApiServer, client: ApiClient) -> None:
    with RawClient(server.path) as bystander, RawClient(server.path) as flooder:
        flooder.send(b"x" * (MAX_REQUEST + 4096))
        assert flooder.until_closed() == b""
        assert bystander.request({"id": 1, "method": "echo"}) == {"id": 1, "result": {}}
    assert_serving(client)


def test_a_huge_terminated_line_drops_the_client(server: ApiServer, client: ApiClient) -> None:
    with RawClient(server.path) as raw:
        raw.send(b'{"id": 1, "method": "echo", "params": {"x": "' + b"y" * MAX_REQUEST + b'"}}\n')
        assert raw.until_closed() == b""
    assert_serving(client)


def test_a_request_at_the_size_limit_is_served(server: ApiServer) -> None:
    prefix = b'{"id": 1, "method": "echo", "params": {"x": "'
    line = prefix + b"y" * (MAX_REQUEST - len(prefix) - 3) + b'"}}'
    assert len(line) == MAX_REQUEST
    with RawClient(server.path) as raw:
        raw.send(line + b"\n")
        assert len(raw.reply()["result"]["x"]) == MAX_REQUEST - len(prefix) - 3


def test_a_client_vanishing_mid_request_disturbs_nobody(
    server: ApiServer, client: ApiClient
) -> None:
    for partial in (b'{"id": 1, "meth', b"", b"\xff" * 1000):
        with RawClient(server.path) as raw:
            raw.send(partial)
    with RawClient(server.path) as raw:
        raw.send(b'{"id": 1, "method": "big"}\n')  # gone before its large reply is written
    assert_serving(client)


def test_a_client_that_never_reads_its_replies_is_dropped(
    server: ApiServer, client: ApiClient
) -> None:
    requests = b'{"id": 1, "method": "big"}\n' * 200  # 20 MB of replies
    with RawClient(server.path) as raw:
        raw.send(requests)
        assert_serving(client)  # the server does not wait for the slow reader
        received = raw.until_closed()
    assert len(received) < 200 * BIG_REPLY


def test_many_clients_at_once(client: ApiClient) -> None:
    def calls(worker: int) -> list[Any]:
        return [client.call("echo", worker=worker, n=n) for n in range(20)]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(calls, range(32)))
    for worker, replies in enumerate(results):
        assert replies == [{"worker": worker, "n": n} for n in range(20)]


def test_idle_clients_at_the_limit_make_room_for_a_new_call(
    server: ApiServer, client: ApiClient
) -> None:
    """64 idle connections must never keep out an emergency stop."""
    with contextlib.ExitStack() as stack:
        idle = [stack.enter_context(RawClient(server.path)) for _ in range(MAX_CLIENTS)]
        assert idle[-1].request({"id": 1, "method": "echo"}) == {"id": 1, "result": {}}
        for _ in range(3):
            assert client.call("echo", n=1) == {"n": 1}
        assert idle[0].until_closed() == b""  # the longest idle one made room


def test_busy_clients_at_the_limit_refuse_and_log_once_with_a_count(
    server: ApiServer, client: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    with contextlib.ExitStack() as stack:
        busy = [stack.enter_context(RawClient(server.path)) for _ in range(MAX_CLIENTS)]
        for raw in busy:
            raw.send(b'{"id": 1, "method": "ec')  # half a request: not idle

        def all_read() -> bool:
            clients = list(server._clients.values())
            return len(clients) == MAX_CLIENTS and all(c.inbox for c in clients)

        wait_for(all_read, timeout=30)
        for _ in range(5):
            with pytest.raises(ApiError, match="connection"):  # closed or reset, by timing
                client.call("echo")
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and "refused 1 connection" in refusals[0].getMessage()
    wait_for(lambda: _serves(client))


def test_idle_clients_are_dropped_after_the_timeout(
    server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "CLIENT_IDLE_TIMEOUT_S", 0.2)
    with RawClient(server.path) as raw:
        assert raw.request({"id": 1, "method": "echo"}) == {"id": 1, "result": {}}
        assert raw.until_closed() == b""


def _serves(client: ApiClient) -> bool:
    try:
        assert_serving(client)
    except ApiError:
        return False
    return True


# -- the socket file -----------------------------------------------------------------------


def stale_socket(path: Path) -> None:
    """A socket file that nothing listens on, as a killed daemon leaves behind."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))


def test_a_stale_socket_file_is_replaced(path: Path) -> None:
    stale_socket(path)
    with ApiServer(path, HANDLERS):
        assert_serving(ApiClient(path))


def test_a_live_daemon_is_not_displaced(server: ApiServer, client: ApiClient) -> None:
    with pytest.raises(ApiError, match="already running"):
        ApiServer(server.path, HANDLERS).start()
    assert_serving(client)


def test_a_file_that_is_not_a_socket_is_left_alone(path: Path) -> None:
    path.write_text("precious")
    with pytest.raises(ApiError, match="not a socket"):
        ApiServer(path, HANDLERS).start()
    assert path.read_text() == "precious"


def test_a_missing_directory_is_a_clear_error(path: Path) -> None:
    with pytest.raises(ApiError, match=r"cannot serve the control socket .*: no directory"):
        ApiServer(path.parent / "missing" / "api.sock", HANDLERS).start()


def test_close_removes_the_socket_and_clients_learn_the_daemon_is_gone(path: Path) -> None:
    server = ApiServer(path, HANDLERS)
    server.start()
    server.close()
    assert not path.exists()
    with pytest.raises(DaemonNotRunning) as caught:
        ApiClient(path).call("status")
    message = str(caught.value)
    assert "not running" in message and str(path) in message
    assert "systemctl start lerobot" in message and "so101d run" in message


def test_a_stale_socket_means_not_running(path: Path) -> None:
    stale_socket(path)
    with pytest.raises(DaemonNotRunning, match="not running"):
        ApiClient(path).call("status")


def test_close_keeps_a_socket_file_that_is_no_longer_ours(path: Path) -> None:
    server = ApiServer(path, HANDLERS)
    server.start()
    path.unlink()
    stale_socket(path)  # another daemon's, say
    server.close()
    assert path.exists()


# -- the client against servers that misbehave --------------------------------------------


class CannedServer:
    """Accepts one connection, reads one request, answers with ``reply`` (or never)."""

    def __init__(self, path: Path, reply: bytes | None) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.reply = reply
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.recv(65536)
            if self.reply is not None:
                conn.sendall(self.reply)
            self.done.wait(10)

    def close(self) -> None:
        self.done.set()
        self.thread.join(10)
        self.listener.close()


@pytest.mark.parametrize(
    ("reply", "fragment"),
    [
        (None, "did not answer 'status' within 0.2 s"),
        (b"not json\n", "unreadable reply"),
        (b'{"id": 999, "result": 1}\n', "unexpected reply"),
        (b'["id", 1]\n', "unexpected reply"),
        (b'{"id": 1}\n', "neither result nor error"),
        (b'{"id": 1, "error": "plain"}\n', "plain"),
        (b'{"id": 1, "resu', "closed the connection without replying"),
    ],
)
def test_the_client_reports_bad_replies(path: Path, reply: bytes | None, fragment: str) -> None:
    canned = CannedServer(path, reply)
    try:
        if reply == b'{"id": 1, "resu':
            canned.done.set()  # close right after the partial reply
        with pytest.raises(ApiError, match=fragment):
            ApiClient(path, timeout=0.2 if reply is None else 10).call("status")
    finally:
        canned.close()
