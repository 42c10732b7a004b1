"""Discord slash commands: options with choices and bounds, each turned into one core Command."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Awaitable, Optional

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.commands import COMMANDS, MAX_SEED, Colors, Grid, Help, Morph, Sketch, Stats, Top, Waifu
from bot.core import Upload
from generator.sketch_input import SketchRejected
from generator.tags import EYE_COLORS, HAIR_COLORS

if TYPE_CHECKING:
    from bot.discord_adapter import MoeBot

HAIR = [app_commands.Choice(name=name, value=i) for i, name in enumerate(HAIR_COLORS)]
EYE = [app_commands.Choice(name=name, value=i) for i, name in enumerate(EYE_COLORS)]
Colour = Optional[app_commands.Choice[int]]
Seed = Optional[app_commands.Range[int, 0, MAX_SEED]]


def _value(choice: Colour) -> int | None:
    return choice.value if choice is not None else None


def _description(name: str) -> str:
    return COMMANDS[name][1][:100]


def _within_limits(interaction: discord.Interaction) -> Awaitable[bool]:
    return interaction.client.within_limits(interaction)  # type: ignore[attr-defined]


class Drawing(commands.Cog):
    """The commands that use the generator: limited per user and chat, answered after "thinking…"."""

    def __init__(self, bot: MoeBot):
        self.bot = bot

    @app_commands.command(name="waifu", description=_description("waifu"))
    @app_commands.describe(hair="hair colour (random if empty)", eye="eye colour (random if empty)",
                           count="how many faces, 1-4", seed="the same seed draws the same face")
    @app_commands.choices(hair=HAIR, eye=EYE)
    @app_commands.check(_within_limits)
    async def waifu(self, interaction: discord.Interaction, hair: Colour = None, eye: Colour = None,
                    count: app_commands.Range[int, 1, 4] = 1, seed: Seed = None) -> None:
        await self.bot.answer(interaction, Waifu(_value(hair), _value(eye), min(count, self.bot.core.max_count),
                                                 seed))

    @app_commands.command(name="grid", description=_description("grid"))
    @app_commands.describe(mode="which colours change across the grid")
    @app_commands.choices(mode=[app_commands.Choice(name=m, value=m) for m in ("hair", "eye", "all")],
                          hair=HAIR, eye=EYE)
    @app_commands.check(_within_limits)
    async def grid(self, interaction: discord.Interaction, mode: app_commands.Choice[str], hair: Colour = None,
                   eye: Colour = None, seed: Seed = None) -> None:
        await self.bot.answer(interaction, Grid(mode.value, _value(hair), _value(eye), seed))  # type: ignore[arg-type]

    @app_commands.command(name="morph", description=_description("morph"))
    @app_commands.choices(hair=HAIR, eye=EYE, hair2=HAIR, eye2=EYE)
    @app_commands.check(_within_limits)
    async def morph(self, interaction: discord.Interaction, hair: Colour = None, eye: Colour = None,
                    hair2: Colour = None, eye2: Colour = None, seed: Seed = None, seed2: Seed = None) -> None:
        await self.bot.answer(interaction, Morph(_value(hair), _value(eye), _value(hair2), _value(eye2), seed, seed2))

    @app_commands.command(name="sketch", description=_description("sketch"))
    @app_commands.describe(image="your drawing: dark lines on light paper (or light on dark), one face",
                           hair="hair colour (from the seed if empty)", eye="eye colour (from the seed if empty)",
                           seed="the same drawing and seed paint the same face")
    @app_commands.choices(hair=HAIR, eye=EYE)
    @app_commands.check(_within_limits)
    async def sketch(self, interaction: discord.Interaction, image: discord.Attachment, hair: Colour = None,
                     eye: Colour = None, seed: Seed = None) -> None:
        await self.bot.answer(interaction, Sketch(_value(hair), _value(eye), seed),
                              Upload(image.filename, image.size, partial(_download, image)))


async def _download(attachment: discord.Attachment) -> bytes:
    """The attachment's bytes; a failed download is a refusal the user reads, not an error."""
    try:
        return await attachment.read()
    except (discord.HTTPException, aiohttp.ClientError) as e:
        why = e.status if isinstance(e, discord.HTTPException) else type(e).__name__
        raise SketchRejected(f"I couldn't download your picture from Discord ({why}) — please attach it "
                             "again.") from None


class Info(commands.Cog):
    """Commands that only read: answered at once."""

    def __init__(self, bot: MoeBot):
        self.bot = bot

    @app_commands.command(name="top", description=_description("top"))
    @app_commands.choices(period=[app_commands.Choice(name=p, value=p) for p in ("day", "week", "all")])
    async def top(self, interaction: discord.Interaction, period: Optional[app_commands.Choice[str]] = None) -> None:
        await self.bot.answer(interaction, Top(period.value if period else "week"))  # type: ignore[arg-type]

    @app_commands.command(name="stats", description=_description("stats"))
    async def stats(self, interaction: discord.Interaction) -> None:
        await self.bot.answer(interaction, Stats())

    @app_commands.command(name="colors", description=_description("colors"))
    async def colors(self, interaction: discord.Interaction) -> None:
        await self.bot.answer(interaction, Colors())

    @app_commands.command(name="help", description=_description("help"))
    async def help(self, interaction: discord.Interaction) -> None:
        await self.bot.answer(interaction, Help())
