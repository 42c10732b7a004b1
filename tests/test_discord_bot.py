"""Discord end to end: a real commands.Bot against the fake REST API, interactions parsed by discord.py itself."""

import asyncio
import io
from datetime import datetime, timedelta, timezone

import discord
import pytest
from PIL import Image

from bot.config import DiscordConfig
from bot.discord_adapter import MoeBot
from fakes.bot_parts import closed, make_core
from fakes.discord_server import APP_ID, FakeDiscord, buttons_of

DEFERRED, MESSAGE, UPDATE = 5, 4, 7  # interaction callback types
EPHEMERAL = 64


@pytest.fixture
def server(monkeypatch):
    fake = FakeDiscord()
    monkeypatch.setattr(discord.http.Route, "BASE", "http://127.0.0.1:1/api/v10")  # restored after the test
    return fake


async def running_bot(server: FakeDiscord, data_dir, **core_args) -> MoeBot:
    discord.http.Route.BASE = server.base
    bot = MoeBot(await make_core(data_dir, **core_args), DiscordConfig())
    await bot.login("TEST.TOKEN")
    return bot


async def stopped(bot: MoeBot) -> None:
    await bot.close()
    await closed(bot.core)


def callback_of(server, payload):
    return f"interactions/{payload['id']}/{payload['token']}/callback"


def test_waifu_vote_and_restart(tmp_path, server):
    async def go():
        await server.start()
        try:
            bot = await running_bot(server, tmp_path)
            sync = (await server.wait_for("PUT", f"applications/{APP_ID}/commands"))[0]
            waifu = next(c for c in sync.json if c["name"] == "waifu")
            assert [c["name"] for c in waifu["options"][0]["choices"]][:3] == ["orange", "white", "aqua"]
            assert len(waifu["options"][0]["choices"]) == 12 and len(waifu["options"][1]["choices"]) == 10
            assert (waifu["options"][2]["min_value"], waifu["options"][2]["max_value"]) == (1, 4)
            assert waifu["description_localizations"]["ko"].startswith("얼굴을 그립니다")
            assert set(waifu["description_localizations"]) >= {"ko", "ja", "zh-CN", "fr"}

            slash = server.slash("waifu", {"hair": 7, "eye": 9})  # pink, blue
            bot._connection.parse_interaction_create(slash)
            deferred = (await server.wait_for("POST", callback_of(server, slash)))[0]
            assert deferred.json["type"] == DEFERRED
            followup = (await server.wait_for("POST", f"webhooks/{APP_ID}/{slash['token']}"))[0]
            (filename, png), = followup.files.values()
            assert filename.endswith(".png") and Image.open(io.BytesIO(png)).format == "PNG"
            assert "pink hair, blue eyes" in followup.json["content"]
            (up, up_id), (down, down_id) = buttons_of(followup)
            assert (up, down) == ("👍 0", "👎 0") and up_id.startswith("vote:") and down_id.endswith(":down")
            message = server.message(followup.json, followup.files)

            press = server.button(up_id, message, user_id=1)
            bot._connection.parse_interaction_create(press)
            update = (await server.wait_for("POST", callback_of(server, press)))[0]
            assert update.json["type"] == UPDATE
            assert buttons_of(update) == [("👍 1", up_id), ("👎 0", down_id)]
            toast = (await server.wait_for("POST", f"webhooks/{APP_ID}/{press['token']}"))[0]
            assert toast.json["content"] == "You voted 👍" and toast.json["flags"] == EPHEMERAL
            await stopped(bot)

            bot = await running_bot(server, tmp_path)  # restart: the old message's buttons still work
            press = server.button(down_id, message, user_id=2)
            bot._connection.parse_interaction_create(press)
            update = (await server.wait_for("POST", callback_of(server, press)))[0]
            assert buttons_of(update) == [("👍 1", up_id), ("👎 1", down_id)]
            toast = (await server.wait_for("POST", f"webhooks/{APP_ID}/{press['token']}"))[0]
            assert toast.json["content"] == "You voted 👎" and toast.json["flags"] == EPHEMERAL
            again = server.button(down_id, message, user_id=2)  # the same vote again withdraws it
            bot._connection.parse_interaction_create(again)
            toast = (await server.wait_for("POST", f"webhooks/{APP_ID}/{again['token']}"))[0]
            assert toast.json["content"] == "Vote withdrawn" and toast.json["flags"] == EPHEMERAL
            stale = server.message({"components": [{"type": 1, "components": [
                {"type": 2, "style": 1, "label": "👍 3", "custom_id": "vote:99999:up"}]}]}, {})
            gone = server.button("vote:99999:up", stale, user_id=2)  # a picture this database never had
            bot._connection.parse_interaction_create(gone)
            answer = (await server.wait_for("POST", callback_of(server, gone)))[0]
            assert answer.json["type"] == MESSAGE and answer.json["data"]["flags"] == EPHEMERAL
            await stopped(bot)
        finally:
            await server.stop()
    asyncio.run(asyncio.wait_for(go(), 60))


def test_cooldown_info_and_expiring_token(tmp_path, server):
    async def go():
        await server.start()
        try:
            bot = await running_bot(server, tmp_path, cooldown_s=60)
            old = server.slash("waifu", {"seed": 3}, user_id=5, channel_id=60,
                               created=datetime.now(timezone.utc) - timedelta(minutes=14, seconds=50))
            bot._connection.parse_interaction_create(old)
            posted = (await server.wait_for("POST", "channels/60/messages"))[0]
            assert posted.json["content"].startswith("<@5> ") and "seed 3" in posted.json["content"]
            assert len(buttons_of(posted)) == 2 and not server.of("POST", f"webhooks/{APP_ID}/{old['token']}")

            again = server.slash("morph", {}, user_id=5, channel_id=60)
            bot._connection.parse_interaction_create(again)
            refused = (await server.wait_for("POST", callback_of(server, again)))[0]
            assert refused.json["type"] == MESSAGE and refused.json["data"]["flags"] == EPHEMERAL
            assert refused.json["data"]["content"].startswith("Slow down a little")

            stats = server.slash("stats", {}, user_id=6)
            bot._connection.parse_interaction_create(stats)
            answer = (await server.wait_for("POST", callback_of(server, stats)))[0]
            assert "Pictures made: 1" in answer.json["data"]["content"]

            stale = server.slash("sketchy", {}, user_id=7)  # e.g. a command removed since the last sync
            bot._connection.parse_interaction_create(stale)
            polite = (await server.wait_for("POST", callback_of(server, stale)))[0]
            assert polite.json["data"]["flags"] == EPHEMERAL
            assert polite.json["data"]["content"] == "That command no longer exists — try /help."
            await stopped(bot)
        finally:
            await server.stop()
    asyncio.run(asyncio.wait_for(go(), 60))


def test_a_queued_user_sees_their_position(tmp_path, server):
    async def go():
        await server.start()
        try:
            # batches of 2 faces; the first request (1 face) waits up to 3 s for company; the second (2 faces)
            # comes meanwhile, does not fit beside it, and so waits for the next batch: it is told its place
            bot = await running_bot(server, tmp_path, max_wait_ms=3000, max_batch=2)
            first, second = server.slash("waifu", {}, user_id=1), server.slash("waifu", {"count": 2}, user_id=2)
            bot._connection.parse_interaction_create(first)
            await server.wait_for("POST", callback_of(server, first))
            bot._connection.parse_interaction_create(second)
            edit = (await server.wait_for("PATCH", f"webhooks/{APP_ID}/{second['token']}/messages/@original"))[0]
            assert edit.json["content"] == "⏳ You're number 1 in the queue…"
            for payload in (first, second):
                done = (await server.wait_for("POST", f"webhooks/{APP_ID}/{payload['token']}"))[0]
                assert len(done.files) == 1 and len(buttons_of(done)) == 2
            await stopped(bot)
        finally:
            await server.stop()
    asyncio.run(asyncio.wait_for(go(), 60))
