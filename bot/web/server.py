"""The aiohttp application: pages, the playground and dashboard routes, and the checks every request passes.

Safety, in one middleware: on loopback only requests addressed to a loopback name are
served (a DNS-rebinding page cannot talk to it); every state change is a POST that
carries the per-process CSRF token the page got in its own HTML and, when the browser
sends an Origin, comes from this server's origin; with an admin token set, every page
and every change needs it (a cookie set by /login, or ``Authorization: Bearer``), and wrong guesses of it
are throttled. The security headers go on every response, streamed and error ones included. Connections
are capped and closed when idle, so idle sockets cannot use up the process's file descriptors.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import math
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from bot.config import WebConfig
from bot.core import Core
from bot.web import adapter, dashboard, logs
from bot.web.throttle import LoginThrottle

STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "moebot_session"
TOKEN_ENV = "MOEBOT_WEB_TOKEN"
MIN_TOKEN_LENGTH, MIN_TOKEN_SYMBOLS = 24, 10  # secrets.token_urlsafe(32) has 43 characters
OPEN_PATHS = ("/login", "/static/")  # reachable before signing in: the form and its stylesheet
PAGES = {"/": "index.html", "/dashboard": "dashboard.html"}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",  # other sites cannot even embed the pictures
}


class CannotServe(RuntimeError):
    """The playground's address is taken or cannot be bound; the message says what to change."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_refusal(host: str, admin_token: str) -> str | None:
    """Why the server must not start on ``host``, or None: beyond loopback only with an admin token, and a
    token that is set must be hard to guess wherever it is served (a proxy may expose a loopback server)."""
    if admin_token and (len(admin_token) < MIN_TOKEN_LENGTH or len(set(admin_token)) < MIN_TOKEN_SYMBOLS):
        return (f"refusing to serve the playground: {TOKEN_ENV} is too easy to guess (use at least "
                f"{MIN_TOKEN_LENGTH} random characters, e.g. the output of "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))').")
    if is_loopback(host) or admin_token:
        return None
    return (f"refusing to serve the playground on {host}: anyone who can reach it could use the bot and its "
            f"dashboard. Set {TOKEN_ENV} to a long random secret to serve beyond 127.0.0.1, or set "
            "[web] host = \"127.0.0.1\".")


@dataclass
class Security:
    """The secrets of one server process and the checks built on them."""
    admin_token: str = ""
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    hosts: frozenset[str] | None = None  # Host headers served; None = any (bound beyond loopback)
    https_proxy: bool = False  # [web] behind_https_proxy: trust X-Forwarded-Proto from the proxy in front
    throttle: LoginThrottle = field(default_factory=LoginThrottle)

    @property
    def session(self) -> str:
        """The cookie value that proves the token was given: a MAC of it, so the cookie is not the token."""
        return hmac.new(self.key, self.admin_token.encode(), hashlib.sha256).hexdigest()

    def signed_in(self, request: web.Request) -> bool:
        if not self.admin_token or hmac.compare_digest(request.cookies.get(SESSION_COOKIE, "").encode(),
                                                       self.session.encode()):
            return True
        bearer = request.headers.get("Authorization")
        return bearer is not None and self.token_given(request, bearer.removeprefix("Bearer "))

    def token_given(self, request: web.Request, given: str) -> bool:
        """Whether ``given`` is the admin token; a wrong one counts against the sender's address, and while
        it is locked out every try is refused with 429 unread."""
        address = request.remote or ""
        wait = self.throttle.wait(address)
        if wait:
            raise web.HTTPTooManyRequests(text=f"Too many wrong tokens: try again in {math.ceil(wait)} s.",
                                          headers={"Retry-After": str(math.ceil(wait))})
        if hmac.compare_digest(given.encode(), self.admin_token.encode()):
            self.throttle.succeeded(address)
            return True
        self.throttle.failed(address)
        return False

    def scheme(self, request: web.Request) -> str:
        """http or https as the browser sees it: behind a TLS proxy the operator vouches for, what it says."""
        if self.https_proxy:
            forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
            if forwarded in ("http", "https"):
                return forwarded
        return request.scheme

    def same_origin(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        return origin is None or origin == f"{self.scheme(request)}://{request.host}"

    def write_allowed(self, request: web.Request) -> bool:
        sent = request.headers.get("X-CSRF-Token", "")
        return self.same_origin(request) and hmac.compare_digest(sent.encode(), self.csrf.encode())


SECURITY = web.AppKey("security", Security)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ConnectionCap:
    """At most ``limit`` open connections: each one beyond it closes the oldest idle one, so idle sockets
    cannot use up the file descriptors and lock everyone out. A connection busy with a request is not cut."""

    def __init__(self) -> None:
        self._busy: set[RequestHandler] = set()

    @web.middleware
    async def track(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self._busy.add(request.protocol)
        try:
            return await handler(request)
        finally:
            self._busy.discard(request.protocol)

    def watch(self, server: web.Server, limit: int) -> None:
        """Check every new connection of ``server`` (aiohttp has no hook for this, so its method is wrapped)."""
        made = server.connection_made

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            made(handler, transport)
            open_ = [c for c in server.connections if c.transport is not None]  # not those closing already
            for idle in [c for c in open_ if c not in self._busy][:max(0, len(open_) - limit)]:
                idle.force_close()
        server.connection_made = connection_made  # type: ignore[method-assign]


CAP = web.AppKey("cap", ConnectionCap)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    sec = request.app[SECURITY]
    if sec.hosts is not None and request.host not in sec.hosts:
        raise web.HTTPMisdirectedRequest(text="This server answers only to 127.0.0.1 or localhost.")
    if not request.path.startswith(OPEN_PATHS) and not sec.signed_in(request):
        if request.method == "GET" and request.path in PAGES:
            raise web.HTTPSeeOther("/login")
        raise web.HTTPUnauthorized(text="Sign in with the admin token first (/login).")
    if request.method not in ("GET", "HEAD") and request.path != "/login" and not sec.write_allowed(request):
        raise web.HTTPForbidden(text="Refused: this change did not come from the moebot page (reload it).")
    return await handler(request)


async def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response just before its headers go out: pages, streams, files and error pages alike."""
    response.headers.update(HEADERS)


async def page(request: web.Request) -> web.Response:
    """A page with this process's CSRF token in it: only a page read from this origin can make changes."""
    html = (STATIC / PAGES[request.path]).read_text(encoding="utf-8")
    return web.Response(text=html.replace("{{csrf}}", request.app[SECURITY].csrf), content_type="text/html",
                        headers={"Cache-Control": "no-store"})


async def login_form(request: web.Request) -> web.Response:
    return web.FileResponse(STATIC / "login.html", headers={"Cache-Control": "no-store"})


async def login(request: web.Request) -> web.Response:
    """Check the admin token from the form; on success a cookie (HttpOnly, SameSite=Strict, Secure over https)
    carries a MAC of it."""
    sec = request.app[SECURITY]
    given = str((await request.post()).get("token", ""))
    if not sec.same_origin(request) or not sec.admin_token or not sec.token_given(request, given):
        raise web.HTTPUnauthorized(text="Wrong token.")
    response = web.HTTPSeeOther("/dashboard")
    response.set_cookie(SESSION_COOKIE, sec.session, httponly=True, samesite="Strict", path="/",
                        secure=sec.scheme(request) == "https")
    raise response


def create_app(core: Core, runs_dir: Path, admin_token: str = "") -> web.Application:
    """The whole site for one Core; request bodies are capped just above the upload limit."""
    cap = ConnectionCap()
    app = web.Application(middlewares=[cap.track, guard],
                          client_max_size=core.uploads.max_bytes + adapter.FORM_OVERHEAD)
    app[SECURITY], app[CAP] = Security(admin_token), cap
    app.on_response_prepare.append(secure_headers)
    for path in PAGES:
        app.router.add_get(path, page)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_static("/static/", STATIC)
    adapter.add_routes(app, core)
    dashboard.add_routes(app, runs_dir)
    return app


async def start(app: web.Application, cfg: WebConfig) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on [web] host and port; returns the runner (``cleanup()`` stops it) and the URL.

    A connection that has not sent a whole request within ``idle_timeout_s`` (an idle keep-alive, or a
    request header that never ends) is closed, and at most ``max_connections`` stay open.
    """
    if refusal := bind_refusal(cfg.host, app[SECURITY].admin_token):
        raise CannotServe(refusal)
    logs.collapse_floods()
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=cfg.idle_timeout_s, logger=logs.SERVER_LOG)
    await runner.setup()
    app[CAP].watch(runner.server, cfg.max_connections)
    app[SECURITY].https_proxy = cfg.behind_https_proxy
    site = web.TCPSite(runner, cfg.host, cfg.port)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise CannotServe(f"cannot serve the playground on {cfg.host}:{cfg.port} ({e.strerror or e}); "
                          "set another [web] port in bot.toml (or MOEBOT_WEB_PORT; 0 = any free one)") from None
    port = site._server.sockets[0].getsockname()[1]
    if is_loopback(cfg.host):
        app[SECURITY].hosts = frozenset(f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]"))
    shown = "127.0.0.1" if cfg.host in ("0.0.0.0", "::") else cfg.host
    return runner, f"http://{shown if ':' not in shown else f'[{shown}]'}:{port}/"
