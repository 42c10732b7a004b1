"""The web chat as a third platform: typed commands, uploads and button presses become Core calls, replies JSON.

Like the Discord and Telegram adapters it is thin: parse, ``Core.handle``, and
the reply translated back. A drawing command answers with a stream of JSON lines
(``drawing``, then ``queued`` when others are ahead, then ``reply``), so the page can
show progress without a websocket. Files of a reply are kept on a shelf under random keys
(bot/web/shelf.py, a folder all processes share): the page asks for them by key, never by a path.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Awaitable

from aiohttp import BodyPartReader, web

from bot.command_words import CommandError
from bot.core import Buttons, Core, Reply, Rows, Upload, Who
from bot.store import GalleryFilter, GalleryItem
from bot.web.shelf import SHELF_FOLDER, FileShelf

LOCAL = Who("web", "local", "you", "local")  # the one person at the keyboard
# bytes of an upload form beyond the file itself (boundaries, part headers, the command), at most: the file's
# announced size is the body's length minus this, so an early refusal never refuses a file within the limit
FORM_OVERHEAD = 4096
MAX_TEXT = 500  # characters of a typed command
HISTORY = 20  # pictures a reloaded playground shows again
CONTENT_TYPES = {".png": "image/png", ".gif": "image/gif"}
CORE = web.AppKey("core", Core)


SHELF = web.AppKey("shelf", FileShelf)


def buttons_json(buttons: Buttons | None) -> dict[str, Any] | None:
    if buttons is None:
        return None
    return {"picture": buttons.picture_id, "up": buttons.up, "down": buttons.down,
            "labelled": [{"label": label, "id": button_id} for label, button_id in buttons.labelled()]}


def rows_json(rows: Rows | None) -> list[list[dict[str, str]]] | None:
    return None if rows is None else [[{"label": label, "id": button_id} for label, button_id in row] for row in rows]


def reply_json(reply: Reply, shelf: FileShelf) -> dict[str, Any]:
    """A reply and the messages that follow it (``more``), with files on the shelf and every button."""
    return {"type": "reply", "text": reply.text, "refusal": reply.refusal,
            "files": [{"url": f"/files/{shelf.put(f)}", "name": f.filename,
                       "gif": f.filename.endswith(".gif")} for f in reply.files],
            "buttons": buttons_json(reply.buttons), "actions": rows_json(reply.actions),
            "more": [reply_json(m, shelf) for m in reply.more]}


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        raise web.HTTPBadRequest(text="expected a JSON body") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


async def answer(request: web.Request, text: str, picture: Upload | None = None) -> web.StreamResponse:
    """Run the typed command (with the picture for /sketch, /submit) as JSON lines: progress events, the reply."""
    core = request.app[CORE]
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson", "Cache-Control": "no-store"})
    await quietly(response.prepare(request))

    async def send(event: dict[str, Any]) -> None:
        await quietly(response.write(json.dumps(event).encode() + b"\n"))

    try:
        parsed = core.commands.parse(text, core.bounds)
    except CommandError as e:
        reply = Reply(str(e), refusal=True)
    else:
        spec = core.commands.of(parsed)
        if spec.drawing:
            await send({"type": "drawing"})

        async def on_queued(position: int) -> None:
            await send({"type": "queued", "position": position})
        reply = await core.handle(LOCAL, parsed, on_queued, picture if spec.upload else None)
    await send(reply_json(reply, request.app[SHELF]))
    await quietly(response.write_eof())
    return response


async def quietly(write: Awaitable[object]) -> None:
    """Write to the page; a page closed meanwhile is no error: the picture is kept and shows in its history."""
    with contextlib.suppress(ConnectionResetError):
        await write


async def command(request: web.Request) -> web.StreamResponse:
    """``{"text": "/waifu pink blue"}``: what a chat message is on the other platforms."""
    return await answer(request, str((await json_body(request)).get("text", ""))[:MAX_TEXT])


async def upload(request: web.Request) -> web.StreamResponse:
    """A multipart form: ``text``, the command (``/sketch pink blue``, ``/submit``), then ``image``.

    Like a chat platform's attachment, the picture has an announced size (from Content-Length), checked by
    the Core before the file is read, and then the same rules as a chat upload, with the same refusals.
    """
    if request.content_length is None:
        raise web.HTTPLengthRequired(text="send the picture with a Content-Length")
    reader = await request.multipart()
    text, part = "", await reader.next()
    if isinstance(part, BodyPartReader) and part.name == "text":
        text = (await part.text())[:MAX_TEXT]
        part = await reader.next()
    picture = None
    if isinstance(part, BodyPartReader) and part.name == "image":
        image = part

        async def fetch() -> bytes:
            return bytes(await image.read())
        picture = Upload((part.filename or "picture.png")[:100], max(0, request.content_length - FORM_OVERHEAD),
                         fetch)
    return await answer(request, text, picture)


async def vote(request: web.Request) -> web.Response:
    """``{"id": "vote:12:up"}`` → the notice and the new counts, as a chat button press would get."""
    result = await request.app[CORE].vote(LOCAL, str((await json_body(request)).get("id", ""))[:64])
    return web.json_response({"notice": result.notice, "buttons": buttons_json(result.buttons)})


async def press(request: web.Request) -> web.Response:
    """``{"id": "rev:3:ok"}``: a review or tag button; the notice, the message's new text and buttons, or a
    new message, as ``Core.press`` says."""
    pressed = await request.app[CORE].press(LOCAL, str((await json_body(request)).get("id", ""))[:64])
    return web.json_response({"notice": pressed.notice, "text": pressed.text, "rows": rows_json(pressed.rows),
                              "reply": reply_json(pressed.reply, request.app[SHELF]) if pressed.reply else None})


def earlier_json(item: GalleryItem) -> dict[str, Any]:
    """A picture drawn here before, as a reply with its stored file and its vote buttons."""
    return {"type": "reply", "text": item.tags, "refusal": False,
            "files": [{"url": f"/pictures/{item.id}", "name": f"{item.kind} #{item.id}"}],
            "buttons": buttons_json(Buttons(item.id, item.up, item.down)), "actions": None, "more": []}


async def history(request: web.Request) -> web.Response:
    """The playground's latest pictures, oldest first, with their votes: a reloaded page can still vote on them."""
    items, _ = await request.app[CORE].store.gallery(GalleryFilter(platform=LOCAL.platform), 1, HISTORY)
    return web.json_response({"messages": [earlier_json(item) for item in reversed(items)]})


async def file(request: web.Request) -> web.Response:
    found = request.app[SHELF].get(request.match_info["key"])
    if found is None:
        raise web.HTTPNotFound(text="That picture is no longer kept here; draw it again from its caption.")
    suffix = found.filename[found.filename.rfind("."):]
    return web.Response(body=found.data, content_type=CONTENT_TYPES.get(suffix, "application/octet-stream"),
                        headers={"Cache-Control": "private, max-age=3600"})


async def commands(request: web.Request) -> web.Response:
    """The playground's suggestions: every command of the registry, its usage and what it does."""
    return web.json_response({"commands": [{"name": s.name, "usage": s.usage, "description": s.description,
                                            "upload": s.upload is not None} for s in request.app[CORE].commands]})


def add_routes(app: web.Application, core: Core) -> None:
    app[CORE] = core
    app[SHELF] = FileShelf(core.store.data_dir / SHELF_FOLDER)
    app.router.add_post("/api/command", command)
    app.router.add_post("/api/upload", upload)
    app.router.add_post("/api/vote", vote)
    app.router.add_post("/api/press", press)
    app.router.add_get("/files/{key}", file)
    app.router.add_get("/api/history", history)
    app.router.add_get("/api/commands", commands)

