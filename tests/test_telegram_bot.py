"""Telegram end to end: a real python-telegram-bot Application against the fake Bot API on loopback."""

import asyncio
import io
import sqlite3

from PIL import Image

from bot.config import TelegramConfig
from bot.telegram_adapter import build_application, start, stop
from fakes.bot_parts import closed, make_core
from fakes.telegram_server import FakeTelegram

TOKEN = "123:TEST"


async def running_bot(server: FakeTelegram, data_dir, as_document=False, **core_args):
    core = await make_core(data_dir, **core_args)
    cfg = TelegramConfig(base_url=server.base_url, base_file_url=server.base_file_url, poll_timeout_s=1,
                         send_as_document=as_document)
    app = build_application(core, cfg, TOKEN)
    await start(app, cfg)
    return app, core


async def stopped(app, core):
    await stop(app)
    await closed(core)


FASTEST = 0  # the compression level a zlib stream's header names: 0 fastest … 3 smallest


def zlib_level(png: bytes) -> int:
    """The level named in the header of the zlib stream that a PNG's first IDAT chunk starts."""
    at = png.index(b"IDAT") + 4
    return png[at + 1] >> 6


def keyboard_of(call):
    return [[(b["text"], b["callback_data"]) for b in row] for row in call.params["reply_markup"]["inline_keyboard"]]


def test_waifu_vote_restart_and_typo(tmp_path):
    async def go():
        server = FakeTelegram()
        await server.start()
        try:
            app, core = await running_bot(server, tmp_path)
            assert [c["command"] for c in (await server.wait_for("setMyCommands"))[0].params["commands"]][:3] == \
                ["waifu", "grid", "morph"]
            await server.send_command("/waifu pink blue", user_id=1)
            photo = (await server.wait_for("sendPhoto"))[0]
            assert server.of("sendChatAction")[0].params["action"] == "upload_photo"
            png = Image.open(io.BytesIO(photo.file("photo")))
            assert png.format == "PNG" and zlib_level(photo.file("photo")) == FASTEST  # cheap to make in a burst
            assert "pink hair, blue eyes" in photo.params["caption"] and "seed " in photo.params["caption"]
            (up, up_id), (down, down_id) = keyboard_of(photo)[0]
            assert (up, down) == ("👍 0", "👎 0") and up_id.endswith(":up") and down_id.endswith(":down")

            sent = {"message_id": 5000, "date": 0, "chat": {"id": 1, "type": "private"}, "text": ""}
            query = await server.press(sent, up_id, user_id=1)
            answered = await server.wait_for("answerCallbackQuery")
            assert answered[0].params["callback_query_id"] == query
            assert answered[0].params["text"] == "You voted 👍"  # the voter's toast
            edit = (await server.wait_for("editMessageReplyMarkup"))[0]
            assert keyboard_of(edit)[0][0] == ("👍 1", up_id) and edit.params["message_id"] == 5000
            await stopped(app, core)

            app, core = await running_bot(server, tmp_path)  # a restart on the same database
            await server.press(sent, down_id, user_id=2, name="Bob")
            edit = (await server.wait_for("editMessageReplyMarkup", count=2))[-1]
            assert [label for label, _ in keyboard_of(edit)[0]] == ["👍 1", "👎 1"]
            await server.press(sent, up_id, user_id=1)  # Alice withdraws her 👍
            edit = (await server.wait_for("editMessageReplyMarkup", count=3))[-1]
            assert [label for label, _ in keyboard_of(edit)[0]] == ["👍 0", "👎 1"]
            assert [c.params["text"] for c in server.of("answerCallbackQuery")] == \
                ["You voted 👍", "You voted 👎", "Vote withdrawn"]  # each press answered once, with its toast

            await server.send_command("/waifu pnk", user_id=3)
            text = (await server.wait_for("sendMessage"))[-1]
            assert text.params["text"] == "unknown hair colour 'pnk' — did you mean pink?"
            await server.send_command("/frobnicate", user_id=3)
            text = (await server.wait_for("sendMessage", count=2))[-1]
            assert text.params["text"] == "I don't know the command /frobnicate. Try /help."
            await server.press(sent, up_id, user_id=3)
            await server.wait_for("editMessageReplyMarkup", count=4)
            await server.send_command("/top all", user_id=3)
            best = (await server.wait_for("sendPhoto", count=2))[-1]
            assert best.params["caption"].splitlines()[1].endswith("👍 1 👎 1") and "reply_markup" not in best.params
            assert best.file("photo") == photo.file("photo")
            await stopped(app, core)
        finally:
            await server.stop()
    asyncio.run(asyncio.wait_for(go(), 60))


def test_groups_info_commands_gif_and_cooldown(tmp_path):
    async def go():
        server = FakeTelegram()
        await server.start()
        try:
            app, core = await running_bot(server, tmp_path, as_document=True, cooldown_s=60)
            await server.send_command("/morph@moe_bot pink blue blonde red", user_id=7, chat_id=-100,
                                      chat_type="group")
            gif = (await server.wait_for("sendAnimation"))[0]
            assert gif.params["chat_id"] == -100 and gif.file("animation")[:6] == b"GIF89a"
            assert len(keyboard_of(gif)[0]) == 2
            gif_message = {"message_id": 7000, "date": 0, "chat": {"id": -100, "type": "group", "title": "g"}}
            await server.send_command("/waifu", user_id=7, chat_id=-100, chat_type="group")
            await server.send_command("/waifu 2", user_id=9, chat_id=-100, chat_type="group")
            document = (await server.wait_for("sendDocument"))[0]  # send_as_document: full quality
            assert Image.open(io.BytesIO(document.file("document"))).size == (134, 68)  # 2 faces side by side
            await server.send_command("/nonsense", user_id=7, chat_id=-100, chat_type="group")  # another bot's
            await server.send_command("/help", user_id=8)
            await server.send_command("/stats", user_id=8)
            texts = [c.params["text"] for c in await server.wait_for("sendMessage", count=3)]
            assert any(t.startswith("Slow down a little") for t in texts)
            assert any("/waifu [hair] [eye] [count] [seed]" in t for t in texts)
            assert any("Pictures made: 2" in t and "Model: test-v1" in t for t in texts)
            assert not any("nonsense" in t for t in texts)
            await server.send_command("/waifu blonde", user_id=10, chat_id=-100, chat_type="group")
            second = (await server.wait_for("sendDocument", count=2))[-1]
            for picture in (gif, document, second):  # /top: an album of the two stills, then the GIF
                await server.press(gif_message, keyboard_of(picture)[0][0][1], user_id=8)
            await server.wait_for("editMessageReplyMarkup", count=3)
            await server.send_command("/top", user_id=8)
            album = (await server.wait_for("sendMediaGroup"))[0]
            assert [m["type"] for m in album.params["media"]] == ["photo", "photo"]
            assert album.params["media"][0]["caption"].startswith("Best-voted pictures this week:")
            animations = await server.wait_for("sendAnimation", count=2)
            assert animations[-1].file("animation") == gif.file("animation")
            await stopped(app, core)
        finally:
            await server.stop()
    asyncio.run(asyncio.wait_for(go(), 60))


def test_a_vote_that_fails_still_answers_the_voter(tmp_path):
    """A vote the database cannot record gets a toast that says so, not a button that spins until it times out."""
    async def go():
        server = FakeTelegram()
        await server.start()
        try:
            app, core = await running_bot(server, tmp_path)
            await server.send_command("/waifu", user_id=1)
            up_id = keyboard_of((await server.wait_for("sendPhoto"))[0])[0][0][1]
            with sqlite3.connect(tmp_path / "moebot.db") as db:
                db.execute("DROP TABLE votes")  # as good as a full disk for the vote's transaction
            sent = {"message_id": 5000, "date": 0, "chat": {"id": 1, "type": "private"}, "text": ""}
            await server.press(sent, up_id, user_id=1)
            answer = (await server.wait_for("answerCallbackQuery"))[0]
            await stopped(app, core)
            return answer.params.get("text", "")
        finally:
            await server.stop()
    assert asyncio.run(asyncio.wait_for(go(), 60)).startswith("Sorry")
