"""An in-process fake Discord REST API on 127.0.0.1 (aiohttp), plus builders for interaction payloads.

A real ``commands.Bot`` talks to it once ``discord.http.Route.BASE`` points
here; tests feed interactions through the library's own parser
(``bot._connection.parse_interaction_create``) and read what the bot sent.
Files attached to a slash command are served on loopback, as Discord's CDN would.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import discord
from aiohttp import web

from fakes.loopback import serve_on_loopback

APP_ID = 777000000000000001
BOT_USER = {"id": str(APP_ID), "username": "moebot", "discriminator": "0", "global_name": "Moe", "avatar": None,
            "bot": True}


@dataclass
class Call:
    method: str  # HTTP method
    path: str  # after /api/v10
    json: dict[str, Any]  # the JSON body, or multipart payload_json
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # field -> (filename, bytes)


class FakeDiscord:
    def __init__(self, token: str | None = None) -> None:
        self.token = token  # the only bot token accepted (as Discord answers 401 to others); None: any
        self.calls: list[Call] = []
        self._changed = asyncio.Condition()
        self._ids = itertools.count(900000000000000001)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.attachments: dict[str, bytes] = {}  # attachment id -> the bytes a user attached

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    async def start(self) -> None:
        app = web.Application(client_max_size=50 * 2**20)
        app.router.add_route("*", "/api/v10/{path:.*}", self._handle)
        app.router.add_get("/attachments/{id}/{name}", self._attachment)
        self._runner, self.port = await serve_on_loopback(app)

    async def stop(self) -> None:
        await self._runner.cleanup()

    def of(self, method: str, path_part: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and path_part in c.path]

    async def wait_for(self, method: str, path_part: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        async def enough() -> list[Call]:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.of(method, path_part)) >= count)
            return self.of(method, path_part)
        return await asyncio.wait_for(enough(), timeout)

    # --- interactions as the gateway would deliver them ---------------------------------------

    def slash(self, name: str, options: dict[str, Any], user_id: int = 1, channel_id: int = 50,
              created: datetime | None = None, files: dict[str, tuple[str, bytes]] | None = None) -> dict:
        """A slash command; ``files`` maps attachment options to (file name, bytes), resolved as Discord does."""
        opts = [{"name": k, "type": 4 if isinstance(v, int) else 3, "value": v} for k, v in options.items()]
        data = {"id": str(next(self._ids)), "name": name, "type": 1, "options": opts}
        for option, (filename, content) in (files or {}).items():
            attachment_id = str(next(self._ids))
            self.attachments[attachment_id] = content
            url = f"http://127.0.0.1:{self.port}/attachments/{attachment_id}/{filename}"
            opts.append({"name": option, "type": 11, "value": attachment_id})
            data.setdefault("resolved", {"attachments": {}})["attachments"][attachment_id] = {
                "id": attachment_id, "filename": filename, "size": len(content), "url": url, "proxy_url": url,
                "content_type": "image/png"}
        return self._interaction(2, data, user_id, channel_id, created)

    def button(self, custom_id: str, message: dict, user_id: int = 1, channel_id: int = 50) -> dict:
        payload = self._interaction(3, {"custom_id": custom_id, "component_type": 2}, user_id, channel_id, None)
        payload["message"] = message
        return payload

    def _interaction(self, kind: int, data: dict, user_id: int, channel_id: int, created: datetime | None) -> dict:
        when = created or datetime.now(timezone.utc)
        return {"id": str(discord.utils.time_snowflake(when) + next(self._ids) % 4096), "application_id": str(APP_ID),
                "type": kind, "data": data, "token": f"tok{next(self._ids)}", "version": 1,
                "channel_id": str(channel_id), "channel": {"id": str(channel_id), "type": 1},
                "user": user(user_id),
                "locale": "en-US", "app_permissions": "0", "entitlements": [], "context": 1,
                "attachment_size_limit": 10 * 2**20,
                "authorizing_integration_owners": {"1": str(user_id)}}

    # --- the REST API ---------------------------------------------------------------------------

    async def _attachment(self, request: web.Request) -> web.Response:
        content = self.attachments.get(request.match_info["id"])
        return web.Response(body=content) if content is not None else web.Response(status=404)

    async def _handle(self, request: web.Request) -> web.Response:
        if self.token is not None and request.headers.get("Authorization") != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        path = request.match_info["path"]
        body, files = await _read(request)
        async with self._changed:
            self.calls.append(Call(request.method, path, body, files))
            self._changed.notify_all()
        if path == "users/@me":
            return _json(BOT_USER)
        if path == "users/@me/channels":  # open a direct-message channel with body["recipient_id"]
            recipient = user(int(body["recipient_id"]))
            return _json({"id": str(8000 + int(body["recipient_id"]) % 1000), "type": 1, "recipients": [recipient]})
        if path.startswith("users/") and path.split("/")[1].isdigit():
            return _json(user(int(path.split("/")[1])))
        if path == "oauth2/applications/@me":
            return _json({"id": str(APP_ID), "name": "moebot", "description": "", "icon": None,
                                      "bot_public": True, "bot_require_code_grant": False, "owner": BOT_USER,
                                      "verify_key": "00", "flags": 0, "team": None, "summary": ""})
        if path.startswith("applications/") and path.endswith("/commands"):
            return _json([])
        if path.startswith("interactions/") and path.endswith("/callback"):
            interaction_id = path.split("/")[1]
            return _json({"interaction": {"id": interaction_id, "type": 2,
                                                      "response_message_loading": body.get("type") == 5},
                                      "resource": {"type": body.get("type", 4)}})
        if path.startswith(("webhooks/", "channels/")) and request.method in ("POST", "PATCH"):
            channel = path.split("/")[1] if path.startswith("channels/") else "50"
            return _json(self.message(body, files, channel))
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def message(self, body: dict, files: dict[str, tuple[str, bytes]], channel_id: str = "50") -> dict:
        """A message object as Discord returns it for a sent or edited message."""
        return {"id": str(next(self._ids)), "channel_id": channel_id, "type": 0, "content": body.get("content") or "",
                "author": BOT_USER, "attachments": [
                    {"id": str(next(self._ids)), "filename": name, "size": len(data), "url": f"http://127.0.0.1/{name}",
                     "proxy_url": f"http://127.0.0.1/{name}"} for name, data in files.values()],
                "embeds": [], "mentions": [], "mention_roles": [], "pinned": False, "mention_everyone": False,
                "tts": False, "timestamp": datetime.now(timezone.utc).isoformat(), "edited_timestamp": None,
                "flags": 0, "components": body.get("components", [])}


def user(user_id: int) -> dict:
    """A Discord user object, as interactions and GET users/<id> carry it."""
    return {"id": str(user_id), "username": f"user{user_id}", "discriminator": "0", "avatar": None,
            "global_name": f"User {user_id}"}


def _json(data: Any, status: int = 200) -> web.Response:
    """Discord sends exactly 'application/json' (no charset), and discord.py checks for exactly that."""
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


async def _read(request: web.Request) -> tuple[dict, dict[str, tuple[str, bytes]]]:
    if not request.can_read_body:
        return {}, {}
    if request.content_type == "application/json":
        return await request.json(), {}
    body: dict = {}
    files: dict[str, tuple[str, bytes]] = {}
    reader = await request.multipart()
    async for part in reader:
        if part.filename:
            files[part.name] = (part.filename, await part.read())
        elif part.name == "payload_json":
            body = json.loads(await part.text())
    return body, files


def buttons_of(call: Call) -> list[tuple[str, str]]:
    """(label, custom_id) of every button in a sent message's or interaction response's components."""
    data = call.json.get("data", call.json)
    return [(b.get("label"), b["custom_id"]) for row in data.get("components", []) for b in row["components"]]
