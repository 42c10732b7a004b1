"""The playground's real server for tests: a Core with a started generator service and the web app on a free
loopback port, run on an event loop in another thread (Playwright's sync API owns the test's thread)."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.config import WebConfig
from bot.core import Core
from bot.web import server
from fakes.bot_parts import closed, make_core
from generator.sampler import SketchSampler
from generator.weights import BUNDLED_GENERATOR


class Site:
    """One started web app: its URL and port, the CSRF token its pages carry, and plain HTTP requests to it."""

    def __init__(self, app: web.Application, runner: web.AppRunner, url: str):
        self.app, self.runner, self.url = app, runner, url
        self.csrf = app[server.SECURITY].csrf
        self.port = int(url.rstrip("/").rsplit(":", 1)[1])

    def request(self, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, str]:
        """(status, text) of a GET, or of a POST with a JSON body; errors are answers too."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url.rstrip("/") + path, data=data,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")


async def start_site(core: Core, runs_dir: Path, admin_token: str = "", host: str = "127.0.0.1", **web: Any) -> Site:
    """The app on a free port; ``web`` are [web] settings beyond host and port (``max_connections``, ...)."""
    app = server.create_app(core, runs_dir, admin_token)
    return Site(app, *await server.start(app, WebConfig(host, 0, runs_dir, **web)))


class Served(Site):
    """A Core and its site on a loop of their own; ``call`` runs a coroutine there."""

    def __init__(self, data_dir: Path, runs_dir: Path, weights: Path, admin_token: str = "",
                 host: str = "127.0.0.1"):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        sketch = SketchSampler.bundled if weights == BUNDLED_GENERATOR else None  # real faces: real sketches too
        self.core = self.call(make_core(data_dir, weights=weights, sketch_weights=sketch, compile=False))
        self.core.display_size = 256  # as in bot.toml: the screenshots show what a user sees
        site = self.call(start_site(self.core, runs_dir, admin_token, host))
        super().__init__(site.app, site.runner, site.url)
        self.db = data_dir / "moebot.db"

    def call(self, coro) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(120)

    def close(self) -> None:
        self.call(self.runner.cleanup())
        self.call(closed(self.core))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
