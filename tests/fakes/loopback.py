"""Serve a fake API on a free port of 127.0.0.1 (never any other address)."""

from __future__ import annotations

from aiohttp import web


async def serve_on_loopback(app: web.Application, port: int = 0) -> tuple[web.AppRunner, int]:
    """Start ``app`` on ``port`` (0: one the OS picks); return its runner (``cleanup()`` stops it) and the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]
