"""The aiohttp application: pages, the playground and dashboard routes, and the checks every request passes.

Safety, in one middleware: on loopback only requests addressed to a loopback name are
served (a DNS-rebinding page cannot talk to it); every state change is a POST that
carries the per-process CSRF token the page got in its own HTML and, when the browser
sends an Origin, comes from this server's origin; with an admin token set, every page
and every change needs it (a cookie set by /login, or ``Authorization: Bearer``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from aiohttp import web

from bot.config import WebConfig
from bot.core import Core
from bot.web import adapter, dashboard

STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "moebot_session"
TOKEN_ENV = "MOEBOT_WEB_TOKEN"
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
    """Why the server must not start on ``host``, or None: beyond loopback only with an admin token."""
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

    @property
    def session(self) -> str:
        """The cookie value that proves the token was given: a MAC of it, so the cookie is not the token."""
        return hmac.new(self.key, self.admin_token.encode(), hashlib.sha256).hexdigest()

    def signed_in(self, request: web.Request) -> bool:
        if not self.admin_token:
            return True
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return (hmac.compare_digest(bearer.encode(), self.admin_token.encode())
                or hmac.compare_digest(request.cookies.get(SESSION_COOKIE, "").encode(), self.session.encode()))

    def same_origin(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        return origin is None or origin == f"{request.scheme}://{request.host}"

    def write_allowed(self, request: web.Request) -> bool:
        sent = request.headers.get("X-CSRF-Token", "")
        return self.same_origin(request) and hmac.compare_digest(sent.encode(), self.csrf.encode())


SECURITY = web.AppKey("security", Security)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
    response = await handler(request)
    response.headers.update(HEADERS)
    return response


async def page(request: web.Request) -> web.Response:
    """A page with this process's CSRF token in it: only a page read from this origin can make changes."""
    html = (STATIC / PAGES[request.path]).read_text(encoding="utf-8")
    return web.Response(text=html.replace("{{csrf}}", request.app[SECURITY].csrf), content_type="text/html",
                        headers={"Cache-Control": "no-store"})


async def login_form(request: web.Request) -> web.Response:
    return web.FileResponse(STATIC / "login.html", headers={"Cache-Control": "no-store"})


async def login(request: web.Request) -> web.Response:
    """Check the admin token from the form; on success a cookie (HttpOnly, SameSite=Strict) carries a MAC of it."""
    sec = request.app[SECURITY]
    given = str((await request.post()).get("token", ""))
    if not sec.same_origin(request) or not sec.admin_token or \
            not hmac.compare_digest(given.encode(), sec.admin_token.encode()):
        raise web.HTTPUnauthorized(text="Wrong token.")
    response = web.HTTPSeeOther("/dashboard")
    response.set_cookie(SESSION_COOKIE, sec.session, httponly=True, samesite="Strict", path="/")
    raise response


def create_app(core: Core, runs_dir: Path, admin_token: str = "") -> web.Application:
    """The whole site for one Core; request bodies are capped just above the upload limit."""
    app = web.Application(middlewares=[guard], client_max_size=core.uploads.max_bytes + adapter.FORM_OVERHEAD)
    app[SECURITY] = Security(admin_token)
    for path in PAGES:
        app.router.add_get(path, page)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_static("/static/", STATIC)
    adapter.add_routes(app, core)
    dashboard.add_routes(app, runs_dir)
    return app


async def start(app: web.Application, cfg: WebConfig) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on [web] host and port; returns the runner (``cleanup()`` stops it) and the URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
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
