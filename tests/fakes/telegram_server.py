"""An in-process fake Telegram Bot API server on 127.0.0.1 (aiohttp).

It feeds updates to a real python-telegram-bot ``Application`` through
``getUpdates`` and records every call the bot makes, files included, so tests
can assert on exactly what a chat would have received. Pictures users send
are served back through ``getFile`` and the file download URL, as Telegram does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fakes.loopback import serve_on_loopback

BOT_USER = {"id": 4242, "is_bot": True, "first_name": "Moe", "username": "moe_bot", "can_join_groups": True,
            "can_read_all_group_messages": False, "supports_inline_queries": False}
SENDS = {"sendMessage", "sendPhoto", "sendDocument", "sendAnimation", "sendMediaGroup"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]  # JSON values decoded
    files: dict[str, bytes]  # multipart field name -> bytes
    at: float = field(default_factory=time.monotonic)

    def file(self, param: str) -> bytes:
        """The bytes sent for ``param``, whether uploaded under its own name or via attach://."""
        value = self.params.get(param)
        if isinstance(value, str) and value.startswith("attach://"):
            return self.files[value.removeprefix("attach://")]
        return self.files[param]


class FakeTelegram:
    def __init__(self, token: str | None = None) -> None:
        self.token = token  # the only token accepted (as Telegram answers 401 to others); None: any
        self.calls: list[Call] = []
        self._updates: list[dict] = []
        self._confirmed = 0  # updates up to this id were confirmed and are never sent again
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self.files: dict[str, bytes] = {}  # file_id -> the bytes a user sent
        self._held: set[str] = set()  # methods whose calls are recorded but not answered until release()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def start(self, port: int = 0) -> None:
        """Serve on ``port`` of 127.0.0.1 (0: any free one, see ``port`` afterwards)."""
        app = web.Application(client_max_size=50 * 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.*}", self._download)
        self._runner, self.port = await serve_on_loopback(app, port)

    async def stop(self) -> None:
        await self._runner.cleanup()

    # --- what users do -------------------------------------------------------------------------

    async def send_command(self, text: str, user_id: int = 1, chat_id: int | None = None,
                           chat_type: str = "private", name: str = "Alice", reply_to: dict | None = None) -> dict:
        """A user types ``text`` (starting with a /command) in a chat, maybe as a reply to ``reply_to``."""
        command = text.split()[0]
        message = {**self._new_message(user_id, chat_id, chat_type, name), "text": text,
                   "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}],
                   **({"reply_to_message": reply_to} if reply_to else {})}
        await self._push({"message": message})
        return message

    async def send_picture(self, data: bytes, caption: str = "", as_document: str | None = None, user_id: int = 1,
                           chat_id: int | None = None, chat_type: str = "private", name: str = "Alice",
                           as_animation: bool = False) -> dict:
        """A user sends ``data`` as a photo, as a file named ``as_document``, or as a GIF (which Telegram turns
        into an MP4 animation, also offered as a document), with ``caption``."""
        file_id = f"f{next(self._ids)}"
        self.files[file_id] = data
        media = {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(data)}
        message = self._new_message(user_id, chat_id, chat_type, name)
        if as_animation:
            message["animation"] = {**media, "width": 320, "height": 240, "duration": 1, "mime_type": "video/mp4"}
            message["document"] = {**media, "mime_type": "video/mp4"}
        elif as_document:
            message["document"] = {**media, "file_name": as_document, "mime_type": "application/octet-stream"}
        else:  # Telegram offers several sizes; the last is the largest
            message["photo"] = [{**media, "file_id": f"{file_id}-thumb", "width": 90, "height": 90},
                                {**media, "width": 800, "height": 600}]
        if caption:
            message["caption"] = caption
            if caption.startswith("/"):
                message["caption_entities"] = [{"type": "bot_command", "offset": 0,
                                                "length": len(caption.split()[0])}]
        await self._push({"message": message})
        return message

    def _new_message(self, user_id: int, chat_id: int | None, chat_type: str, name: str) -> dict:
        chat_id = user_id if chat_id is None else chat_id
        return {"message_id": next(self._message_ids), "date": int(time.time()), "chat": _chat(chat_id, chat_type),
                "from": _user(user_id, name)}

    async def press(self, message: dict, callback_data: str, user_id: int = 1, name: str = "Alice") -> str:
        """A user presses an inline button with ``callback_data`` under the bot's ``message``."""
        query_id = f"q{next(self._ids)}"
        await self._push({"callback_query": {"id": query_id, "from": _user(user_id, name), "message": message,
                                             "chat_instance": "ci", "data": callback_data}})
        return query_id

    # --- what the bot did ----------------------------------------------------------------------

    def of(self, *methods: str) -> list[Call]:
        return [c for c in self.calls if c.method in methods]

    async def wait_for(self, *methods: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """The calls to ``methods``, once there are at least ``count`` of them."""
        async def enough() -> list[Call]:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.of(*methods)) >= count)
            return self.of(*methods)
        return await asyncio.wait_for(enough(), timeout)

    def hold(self, *methods: str) -> None:
        """Keep the bot's calls to ``methods`` waiting for their answers (a slow upload) until ``release()``."""
        self._held.update(methods)
        self._release.clear()

    def release(self) -> None:
        self._held.clear()
        self._release.set()

    # --- the Bot API ---------------------------------------------------------------------------

    async def _push(self, update: dict) -> None:
        async with self._changed:
            self._updates.append({"update_id": len(self._updates) + 1, **update})
            self._changed.notify_all()

    async def _handle(self, request: web.Request) -> web.Response:
        if self.token is not None and request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params, files = await _read_params(request)
        if method == "getUpdates":
            return _ok(await self._get_updates(params))
        call = Call(method, params, files)
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        if method in self._held:
            await self._release.wait()
        if method == "getMe":
            return _ok(BOT_USER)
        if method in ("deleteWebhook", "setMyCommands", "sendChatAction", "answerCallbackQuery"):
            return _ok(True)
        if method == "getFile":
            file_id = str(params.get("file_id"))
            if file_id not in self.files:
                return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"},
                                         status=400)
            return _ok({"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(self.files[file_id]),
                        "file_path": f"files/{file_id}"})
        if method in SENDS or method.startswith("editMessage"):
            return _ok(self._message(method, params))
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found: method not found"})

    async def _download(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].removeprefix("files/")
        if file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")

    async def _get_updates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        self._confirmed = max(self._confirmed, offset - 1)  # as Telegram: a higher offset confirms, for good
        wait = min(float(params.get("timeout") or 0), 0.5)  # short polls keep shutdown quick

        def fresh() -> list[dict]:
            return [u for u in self._updates if u["update_id"] > self._confirmed][: int(params.get("limit") or 100)]
        async with self._changed:
            if not fresh() and wait:
                try:
                    await asyncio.wait_for(self._changed.wait_for(lambda: bool(fresh())), wait)
                except asyncio.TimeoutError:
                    pass
            return fresh()

    def _message(self, method: str, params: dict) -> dict | list[dict]:
        chat_id = int(params["chat_id"])
        base = {"message_id": int(params.get("message_id") or next(self._message_ids)), "date": int(time.time()),
                "chat": _chat(chat_id, "private" if chat_id > 0 else "group"), "from": BOT_USER}
        if method == "sendMediaGroup":
            return [{**base, "message_id": next(self._message_ids), "photo": _photo()} for _ in params["media"]]
        if "reply_markup" in params:
            base["reply_markup"] = params["reply_markup"]
        if method == "sendPhoto":
            base["photo"] = _photo()
        elif method in ("sendDocument", "sendAnimation"):
            base["document"] = {"file_id": "doc", "file_unique_id": "doc"}
        if "caption" in params:
            base["caption"] = params["caption"]
        if "text" in params:
            base["text"] = params["text"]
        return base


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    if request.content_type == "application/json":
        return await request.json(), files
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            files[key] = value.file.read()
            continue
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params, files


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _user(user_id: int, name: str) -> dict:
    return {"id": user_id, "is_bot": False, "first_name": name}


def _chat(chat_id: int, chat_type: str) -> dict:
    return {"id": chat_id, "type": chat_type, **({"title": "group"} if chat_type != "private" else {})}


def _photo() -> list[dict]:
    return [{"file_id": "p1", "file_unique_id": "u1", "width": 256, "height": 256}]
