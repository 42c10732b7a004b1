"""The playground's server at the HTTP level, over real loopback sockets: idle and half-sent connections,
the connection cap, floods in the log, admin token strength and throttling, headers on every answer, and
clients that send nonsense or hang up. (The pages themselves: test_web.py, in Chromium.)"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import secrets
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest

from bot.config import WebConfig
from bot.web import server
from bot.web.logs import RepeatFilter
from bot.web.throttle import LoginThrottle
from fakes.bot_parts import tiny_weights
from fakes.served_web import Served, Site, start_site

TOKEN = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("web-http")
    s = Served(root / "data", root / "runs", tiny_weights(root / "tiny.safetensors"))
    yield s
    s.close()


@contextlib.contextmanager
def another(served: Served, admin_token: str = "", **web) -> Iterator[Site]:
    """A second site on the same Core and loop, with other [web] settings."""
    site = served.call(start_site(served.core, Path("runs"), admin_token, **web))
    try:
        yield site
    finally:
        served.call(site.runner.cleanup())


def raw(port: int, data: bytes) -> bytes:
    """Send bytes exactly as given (no Host header, say) and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def closed_by_server(sock: socket.socket, within_s: float) -> bool:
    sock.settimeout(within_s)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def post_form(s: Site, path: str, form: str, headers: dict | None = None) -> http.client.HTTPResponse:
    """A POST as a browser's form sends it, redirects not followed (the sign-in answers with one)."""
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
    conn.request("POST", path, form, {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def tracebacks(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_idle_and_half_sent_connections_are_closed_after_the_idle_timeout(served):
    with another(served, idle_timeout_s=1) as s:
        idle = socket.create_connection(("127.0.0.1", s.port))
        half = socket.create_connection(("127.0.0.1", s.port))
        half.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # a header that never ends
        assert closed_by_server(idle, 20) and closed_by_server(half, 20)
        idle.close(), half.close()
        assert s.request("/api/history")[0] == 200


def test_idle_sockets_beyond_the_cap_close_the_oldest_and_requests_are_still_served(served):
    with another(served, max_connections=4, idle_timeout_s=600) as s:
        idle = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(30)]
        try:
            assert s.request("/api/history")[0] == 200
            assert all(closed_by_server(sock, 10) for sock in idle[:26])  # the oldest made room
            assert len(s.runner.server.connections) <= 4
        finally:
            for sock in idle:
                sock.close()


def test_a_flood_of_one_log_line_is_collapsed(served, caplog):
    """A full file table makes asyncio log every failed accept(); the server's start put a filter on it."""
    listening = socket.socket()
    context = {"message": "socket.accept() out of system resource", "exception": OSError(24, "Too many open files"),
               "socket": listening}

    async def flood() -> None:
        for _ in range(2000):
            asyncio.get_running_loop().call_exception_handler(context)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        served.call(flood())
    listening.close()
    logged = [r for r in caplog.records if "out of system resource" in r.getMessage()]
    assert 1 <= len(logged) <= 5
    assert "counted, not logged" in logged[-1].getMessage()


def test_the_repeat_filter_reports_what_it_left_out():
    now = [0.0]
    repeats = RepeatFilter(burst=3, window_s=60, clock=lambda: now[0])

    def record(address: str) -> logging.LogRecord:
        return logging.LogRecord("aiohttp.server", logging.INFO, __file__, 1, "bad request from %s", (address,), None)
    passed = [r.getMessage() for r in (record(f"10.0.0.{i}") for i in range(100)) if repeats.filter(r)]
    assert passed[:2] == ["bad request from 10.0.0.0", "bad request from 10.0.0.1"] and len(passed) == 3
    assert repeats.filter(logging.LogRecord("other", logging.INFO, __file__, 1, "hello", (), None))  # another kind
    now[0] = 61
    later = record("10.0.0.200")
    assert repeats.filter(later) and "97 more like this in 61 s not logged" in later.getMessage()


def test_a_weak_admin_token_is_refused_wherever_it_would_be_served(served):
    for host in ("0.0.0.0", "192.168.1.10", "127.0.0.1"):
        for weak in ("x", "s3cret-admin", "a" * 40, "abababababababababababababab"):
            assert "too easy to guess" in server.bind_refusal(host, weak), (host, weak)
        assert server.bind_refusal(host, TOKEN) is None
    with pytest.raises(server.CannotServe, match="MOEBOT_WEB_TOKEN is too easy to guess"):
        served.call(server.start(server.create_app(served.core, Path("runs"), "x"), WebConfig("0.0.0.0", 0)))


def test_wrong_tokens_are_throttled_per_address(served):
    with another(served, TOKEN) as s:
        now = [0.0]
        s.app[server.SECURITY].throttle = LoginThrottle(free=3, clock=lambda: now[0])
        assert [post_form(s, "/login", "token=guess").status for _ in range(3)] == [401, 401, 401]
        locked = post_form(s, "/login", f"token={TOKEN}")  # even the right one waits: guessing is slow
        assert locked.status == 429 and locked.getheader("Retry-After") == "1"
        assert s.request("/api/history", headers={"Authorization": "Bearer guess"})[0] == 429  # scripts too
        now[0] = 1.5
        assert s.request("/api/history", headers={"Authorization": "Bearer guess"})[0] == 401
        assert post_form(s, "/login", f"token={TOKEN}").status == 429  # 4 wrong in a row: locked 2 s
        now[0] = 4
        assert post_form(s, "/login", f"token={TOKEN}").status == 303
        assert s.request("/api/history", headers={"Authorization": "Bearer guess"})[0] == 401  # a fresh start


def test_the_session_cookie_is_secure_when_a_trusted_proxy_says_https(served):
    https = {"X-Forwarded-Proto": "https"}
    with another(served, TOKEN, behind_https_proxy=True) as s:
        cookie = post_form(s, "/login", f"token={TOKEN}", https).getheader("Set-Cookie")
        assert {"Secure", "HttpOnly", "SameSite=Strict"} <= set(cookie.split("; "))
        assert "Secure" not in post_form(s, "/login", f"token={TOKEN}").getheader("Set-Cookie")
        origin = {"Origin": f"https://127.0.0.1:{s.port}", "Authorization": f"Bearer {TOKEN}",
                  "X-CSRF-Token": s.csrf}
        assert s.request("/api/command", {"text": "/help"}, {**origin, **https})[0] == 200  # the https page's origin
    with another(served, TOKEN) as s:  # no proxy vouched for: a client's own header changes nothing
        assert "Secure" not in post_form(s, "/login", f"token={TOKEN}", https).getheader("Set-Cookie")


def test_nonsense_requests_get_an_answer_and_no_traceback(served, caplog):
    caplog.set_level(logging.INFO)
    nested = b"[" * 100_000 + b"]" * 100_000
    answer = raw(served.port, b"POST /api/command HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-CSRF-Token: %s\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                 % (served.port, served.csrf.encode(), len(nested)) + nested)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"expected a JSON body" in answer
    assert raw(served.port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.0 400 ")  # no Host
    assert raw(served.port, b"\x16\x03\x01 TLS hello to a plain port\r\n\r\n").startswith(b"HTTP/1.0 400 ")
    assert tracebacks(caplog) == []


def test_every_answer_carries_the_security_headers(served):
    """Streamed drawing answers and error pages too, not only pages."""
    csrf = {"X-CSRF-Token": served.csrf}
    for method, path, body, headers, status in (("POST", "/api/command", {"text": "/help"}, csrf, 200),
                                                ("GET", "/no/such/page", None, {}, 404),
                                                ("POST", "/api/vote", {"id": "vote:1:up"}, {}, 403),
                                                ("GET", "/", None, {"Host": "evil.example"}, 421)):
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
        conn.request(method, path, json.dumps(body) if body else None, headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == status, path
        assert "frame-ancestors 'none'" in response.getheader("Content-Security-Policy", ""), path
        assert response.getheader("X-Content-Type-Options") == "nosniff", path


def test_a_page_closed_while_drawing_leaves_no_traceback_and_keeps_the_picture(served, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    gate = asyncio.Event()
    real_faces = type(served.core.generator).faces

    async def slow_faces(self, *args, **kwargs):
        await gate.wait()
        return await real_faces(self, *args, **kwargs)
    monkeypatch.setattr(type(served.core.generator), "faces", slow_faces)
    before = json.loads(served.request("/api/history")[1])["messages"]
    body = json.dumps({"text": "/waifu aqua green"}).encode()
    page = socket.create_connection(("127.0.0.1", served.port), timeout=30)
    page.sendall(b"POST /api/command HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-CSRF-Token: %s\r\nContent-Length: %d\r\n\r\n"
                 % (served.port, served.csrf.encode(), len(body)) + body)
    received = b""
    while b'"drawing"' not in received:
        received += page.recv(4096)
    page.close()  # the user closes the tab while the picture is drawn

    async def until_gone() -> None:  # the server has seen the hang-up, then the drawing finishes
        while any(h.transport is not None for h in served.runner.server.connections):
            await asyncio.sleep(0.01)
        gate.set()
        while served.runner.server.connections:
            await asyncio.sleep(0.01)
    served.call(asyncio.wait_for(until_gone(), 60))
    after = json.loads(served.request("/api/history")[1])["messages"]
    assert after[-1]["text"] == "aqua hair, green eyes" and len(after) == min(len(before) + 1, 20)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("aiohttp")] == []  # a closed tab is normal
