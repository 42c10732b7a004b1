"""A command is one registry entry plus its handler: a toy command registered here works on Telegram (the fake
Bot API, real python-telegram-bot), Discord (the fake REST API, real discord.py) and the playground (real
HTTP), with its options and ranges derived from the entry and from config."""

import asyncio
import dataclasses

import aiohttp
import discord
import pytest

from bot.commands import COMMANDS
from bot.config import DiscordConfig, TelegramConfig
from bot.core import Call, Core, Reply
from bot.discord_adapter import MoeBot
from bot.registry import Colour, Number, Spec
from bot.telegram_adapter import build_application, start, stop
from fakes.bot_parts import closed, make_core
from fakes.discord_server import APP_ID, FakeDiscord
from fakes.served_web import start_site
from fakes.telegram_server import FakeTelegram
from generator.tags import HAIR_COLORS

MESSAGE, EPHEMERAL = 4, 64


async def echo(core: Core, call: Call) -> Reply:
    """The toy's handler: the hair colour said back ``times`` times."""
    word = HAIR_COLORS[call.command.hair] if call.command.hair is not None else "nothing"
    return Reply(" ".join([word] * (call.command.times or 1)))


ECHO = Spec("echo", "say a hair colour back, a few times", echo, args=(
    Colour("hair", "hair", "the colour to say"), Number("times", 1, "max_count", "how many times")),
    names={"fr": "écho"}, descriptions={"fr": "répète une couleur de cheveux"})
TOY = COMMANDS.plus(ECHO)


def test_the_parser_and_help_come_from_the_registry():
    assert TOY.parse("/echo rose 3", {"max_count": 3}) == ECHO.type(hair=HAIR_COLORS.index("pink"), times=3)
    with pytest.raises(ValueError, match="times must be between 1 and 2"):
        TOY.parse("/echo pink 3", {"max_count": 2})
    assert "/echo [hair] [times] — say a hair colour back, a few times" in TOY.help_text()
    assert "/echo" not in COMMANDS.help_text()  # registering made a new registry; the bot's own is unchanged


def test_every_entry_s_value_has_a_field_per_argument():
    """The typed values the handlers get match their entries: a field per argument but the picture."""
    for spec in COMMANDS:
        assert [f.name for f in dataclasses.fields(spec.type)] == [a.name for a in spec.fields], spec.name


def test_a_toy_command_works_on_telegram(tmp_path):
    async def go():
        server = FakeTelegram()
        await server.start()
        core = await make_core(tmp_path, commands=TOY, max_count=3)
        cfg = TelegramConfig(base_url=server.base_url, base_file_url=server.base_file_url, poll_timeout_s=1)
        app = build_application(core, cfg, "123:TEST")
        try:
            await start(app, cfg)
            menu = (await server.wait_for("setMyCommands"))[0].params["commands"]
            assert {"command": "echo", "description": "say a hair colour back, a few times"} in menu
            await server.send_command("/echo rose 3", chat_id=-100, chat_type="group")  # a group: its own handler
            await server.send_command("/help", chat_id=-100, chat_type="group")
            said = [c.params["text"] for c in await server.wait_for("sendMessage", count=2)]
            assert said[0] == "pink pink pink"
            assert "/echo [hair] [times] — say a hair colour back, a few times" in said[1]
            await server.send_command("/echo pink 4", chat_id=-100, chat_type="group")  # beyond max_count
            refused = (await server.wait_for("sendMessage", count=3))[-1]
            assert refused.params["text"] == "times must be between 1 and 3"
        finally:
            await stop(app)
            await closed(core)
            await server.stop()
    asyncio.run(asyncio.wait_for(go(), 60))


@pytest.fixture
def discord_server(monkeypatch):
    fake = FakeDiscord()
    monkeypatch.setattr(discord.http.Route, "BASE", "http://127.0.0.1:1/api/v10")  # restored after the test
    return fake


async def synced(server: FakeDiscord, core: Core) -> tuple[MoeBot, dict[str, dict]]:
    """A bot logged in on ``core``, and the slash commands it published, by name."""
    discord.http.Route.BASE = server.base
    bot = MoeBot(core, DiscordConfig())
    await bot.login("TEST.TOKEN")
    sync = (await server.wait_for("PUT", f"applications/{APP_ID}/commands"))[0]
    return bot, {c["name"]: c for c in sync.json}


def test_a_toy_command_works_on_discord(tmp_path, discord_server):
    async def go():
        await discord_server.start()
        core = await make_core(tmp_path, commands=TOY, max_count=3)
        try:
            bot, published = await synced(discord_server, core)
            toy = published["echo"]
            assert toy["description"] == "say a hair colour back, a few times"
            assert toy["name_localizations"]["fr"] == "écho"
            assert toy["description_localizations"]["fr"] == "répète une couleur de cheveux"
            hair, times = toy["options"]
            assert [c["name"] for c in hair["choices"]] == list(HAIR_COLORS) and not hair["required"]
            assert (times["name"], times["min_value"], times["max_value"]) == ("times", 1, 3)

            slash = discord_server.slash("echo", {"hair": HAIR_COLORS.index("pink"), "times": 2})
            bot._connection.parse_interaction_create(slash)
            answer = (await discord_server.wait_for(
                "POST", f"interactions/{slash['id']}/{slash['token']}/callback"))[0]
            assert answer.json["type"] == MESSAGE and answer.json["data"]["content"] == "pink pink"
            await bot.close()
        finally:
            await closed(core)
            await discord_server.stop()
    asyncio.run(asyncio.wait_for(go(), 60))


def test_discord_count_follows_the_limits_max_count(tmp_path, discord_server):
    """`[limits] max_count` bounds /waifu's count option on Discord as it does in text (it was fixed at 4)."""
    async def go():
        await discord_server.start()
        core = await make_core(tmp_path, max_count=2)
        try:
            bot, published = await synced(discord_server, core)
            count = next(o for o in published["waifu"]["options"] if o["name"] == "count")
            assert (count["min_value"], count["max_value"]) == (1, 2)
            await bot.close()
        finally:
            await closed(core)
            await discord_server.stop()
    asyncio.run(asyncio.wait_for(go(), 60))


def test_a_toy_command_works_in_the_playground(tmp_path):
    async def go():
        core = await make_core(tmp_path, commands=TOY, max_count=3)
        site = await start_site(core, tmp_path / "runs")
        try:
            async with aiohttp.ClientSession(site.url) as http:
                async with http.get("/api/commands") as r:
                    suggested = {c["name"]: c for c in (await r.json())["commands"]}
                assert suggested["echo"] == {"name": "echo", "usage": "/echo [hair] [times]",
                                             "description": "say a hair colour back, a few times", "upload": False}
                assert list(suggested)[:3] == ["waifu", "grid", "morph"] and suggested["sketch"]["upload"]
                async with http.post("/api/command", json={"text": "/echo rose 2"},
                                     headers={"X-CSRF-Token": site.csrf}) as r:
                    reply = await r.json(content_type=None)
                assert reply["type"] == "reply" and reply["text"] == "pink pink" and not reply["refusal"]
        finally:
            await site.runner.cleanup()
            await closed(core)
    asyncio.run(asyncio.wait_for(go(), 60))
