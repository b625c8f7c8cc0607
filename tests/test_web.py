"""The web process at the HTTP level: the real ``so101d web`` beside the real daemon on the
simulator. Access (401 everywhere without the token, the cookie exchange, Origin, backoff),
the token file, ``so101d web-url``, the live stream, and the daemon's refusals as statuses."""

from __future__ import annotations

import http.client
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.commands import so101d
from tests.daemon_harness import Daemon, PairSetup, StartDaemon
from tests.waiting import wait_for
from tests.web_harness import WebProcess, daemon_and_web, free_port, web_beside, web_table

ROUTES = (
    "/",
    "/static/app.js",
    "/static/style.css",
    "/static/index.html",
    "/api/stream",
    "/api/snapshot",
    "/favicon.ico",
    "/no/such/page",
)
HOW = "sudo so101d web-url"


@pytest.fixture
def running(
    pair: PairSetup, start_daemon: StartDaemon, work: Path
) -> Iterator[tuple[Daemon, WebProcess]]:
    with daemon_and_web(pair, start_daemon, work) as both:
        yield both


def test_every_route_and_the_stream_answer_401_without_a_valid_token(
    running: tuple[Daemon, WebProcess],
) -> None:
    _, web = running
    assert web.request("GET", "/").status == 200  # with the cookie
    assert web.request("GET", "/static/app.js").status == 200
    assert web.request("GET", "/api/stream").text.startswith("data: {")
    for path in ROUTES:
        reply = web.request("GET", path, authorized=False)
        assert reply.status == 401, (path, reply.status)
        assert HOW in reply.text, path
    for method in ("estop", "pause", "calibrate.start"):
        reply = web.request(
            "POST", f"/api/{method}", body={}, authorized=False, headers={"Origin": web.origin}
        )
        assert reply.status == 401, (method, reply.status)
    # A wrong token counts as an attempt: after a few, the address waits (429).
    wrong = {"Cookie": "so101d_token=" + "x" * 43}
    for path in ROUTES:
        for headers, query in ((wrong, ""), ({}, "?token=wrong")):
            reply = web.request("GET", path + query, headers=headers, authorized=False)
            assert reply.status in (401, 429), (path, headers, query, reply.status)
            assert HOW in reply.text, path


def test_the_token_in_the_url_becomes_a_strict_http_only_cookie_and_leaves_the_url(
    running: tuple[Daemon, WebProcess],
) -> None:
    _, web = running
    reply = web.request("GET", f"/?token={web.token}", authorized=False)
    assert reply.status == 303
    assert reply.headers["Location"] == "/"
    cookie = reply.headers["Set-Cookie"]
    assert cookie.startswith(f"so101d_token={web.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    page = web.request("GET", "/", headers={"Cookie": cookie.split(";")[0]}, authorized=False)
    assert page.status == 200 and "<title>so101d</title>" in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


def test_a_post_with_a_foreign_or_no_origin_is_refused_and_changes_nothing(
    running: tuple[Daemon, WebProcess],
) -> None:
    daemon, web = running
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": ""}):
        reply = web.request("POST", "/api/pause", body={"pair": "main"}, headers=headers)
        assert reply.status == 403, (headers, reply.status)
        assert "Origin" in reply.json()["message"]
    bare = web.request(
        "POST",
        "/api/pause",
        body={"pair": "main"},
        headers={"Cookie": web.cookie},
        authorized=False,
    )
    assert bare.status == 403
    assert daemon.pair()["state"] == "teleop"
    assert web.request("POST", "/api/pause", body={"pair": "main"}).json() == {"paused": ["main"]}
    daemon.wait_state("paused")


def test_wrong_tokens_are_slowed_down_per_address_and_logged_with_a_count(
    running: tuple[Daemon, WebProcess],
) -> None:
    _, web = running
    statuses = [web.request("GET", "/?token=guess", authorized=False).status for _ in range(12)]
    assert statuses[:3] == [401] * 3  # a typo or two costs nothing
    assert 429 in statuses
    limited = web.request("GET", "/?token=" + web.token, authorized=False)
    assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
    log = wait_for(lambda: "wrong token" in web.log and web.log)
    assert "1 request(s) with a wrong token since the last report (latest from 127.0.0.1)" in log


def test_the_token_file_is_made_with_mode_0640_and_web_url_prints_the_address(
    running: tuple[Daemon, WebProcess], work: Path
) -> None:
    daemon, web = running
    token_file = work / "web-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o640
    assert len(web.token) >= 40
    result = so101d("web-url", "--config", str(daemon.config))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"http://{socket.gethostname()}.local:{web.port}/?token={web.token}\n"
    token_file.chmod(0)
    if token_file.stat().st_uid != 0:  # root reads it anyway
        denied = so101d("web-url", "--config", str(daemon.config))
        assert denied.returncode == 1 and "run with sudo" in denied.stderr


def test_the_daemon_s_409_and_422_come_back_as_http_statuses_with_the_details(
    running: tuple[Daemon, WebProcess],
) -> None:
    daemon, web = running
    assert web.request("POST", "/api/calibrate.start", body={"arm": "leader"}).status == 200
    second = web.request("POST", "/api/calibrate.start", body={"arm": "follower"})
    assert second.status == 409
    assert "calibration session 1 (main leader 'main_leader') is active" in second.json()["message"]
    wait_for(lambda: daemon.call("calibrate.state")["step"] == "homing", timeout=30)
    assert web.request("POST", "/api/calibrate.capture", body={"session": "1"}).status == 200
    early = web.request("POST", "/api/calibrate.done", body={"session": "1"})
    assert early.status == 422
    assert set(early.json()["unswept"]) >= {"shoulder_lift", "elbow_flex"}
    assert web.request("POST", "/api/calibrate.abort", body={"session": "1"}).json()["step"] == (
        "aborted"
    )
    assert web.request("POST", "/api/calibrate.forget", body={}).status == 404


def test_the_web_process_outlives_the_daemon_and_says_it_is_not_reachable(
    pair: PairSetup, start_daemon: StartDaemon, work: Path
) -> None:
    port = free_port()
    daemon = start_daemon(pair, top=web_table(work, port))
    daemon.wait_state("teleop")
    with web_beside(daemon, port) as web:
        daemon.terminate()
        snapshot = web.request("GET", "/api/snapshot").json()
        assert snapshot["daemon"] is None and "so101d is not running" in snapshot["error"]
        assert web.request("POST", "/api/estop", body={}).status == 503
        assert web.request("GET", "/api/stream").text.startswith('data: {"daemon": null')
        assert web.process.poll() is None


def test_an_empty_listen_disables_the_web_process(work: Path, pair: PairSetup) -> None:
    config = work / "config.toml"
    config.write_text(f'socket = "{work / "api.sock"}"\n[web]\nlisten = ""\n\n' + pair.toml())
    result = so101d("web", "--config", str(config))
    assert result.returncode == 0
    assert '[web] listen = "": the web process is disabled' in result.stderr


def test_sigterm_with_a_page_open_stops_the_web_process_cleanly(
    running: tuple[Daemon, WebProcess],
) -> None:
    daemon, web = running
    stream = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
    try:
        stream.request("GET", "/api/stream", headers={"Cookie": web.cookie})
        assert stream.getresponse().read(6) == b"data: "
        web.process.terminate()
        assert web.process.wait(timeout=30) == 0, web.log  # the open stream does not hold it
    finally:
        stream.close()
    assert "stopping" in web.log
    assert daemon.pair()["state"] == "teleop"
