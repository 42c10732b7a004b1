"""Discord slash commands of curation (/submit, /review, /forget) and of the models (/retrain, /models, /rollback).

Who may do what is the core's decision (admins are ``[limits] admins``); these
only turn options into core Commands.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Optional

import discord
from discord import app_commands
from discord.ext import commands

from bot.commands import Forget, Models, Retrain, Review, Rollback, Submit
from bot.core import Upload
from bot.discord_cogs import EYE, HAIR, Colour, _description, _download, _value, _within_limits

if TYPE_CHECKING:
    from bot.discord_adapter import MoeBot


class Curation(commands.Cog):
    """What becomes training data, and taking back what you sent."""

    def __init__(self, bot: MoeBot):
        self.bot = bot

    @app_commands.command(name="submit", description=_description("submit"))
    @app_commands.describe(image="a picture with one or more anime faces", hair="its hair colour (read off the face "
                           "if empty)", eye="its eye colour (read off the face if empty)")
    @app_commands.choices(hair=HAIR, eye=EYE)
    @app_commands.check(_within_limits)
    async def submit(self, interaction: discord.Interaction, image: discord.Attachment, hair: Colour = None,
                     eye: Colour = None) -> None:
        await self.bot.answer(interaction, Submit(_value(hair), _value(eye)),
                              Upload(image.filename, image.size, partial(_download, image)))

    @app_commands.command(name="review", description=_description("review"))
    async def review(self, interaction: discord.Interaction) -> None:
        await self.bot.answer(interaction, Review())

    @app_commands.command(name="forget", description=_description("forget"))
    async def forget(self, interaction: discord.Interaction) -> None:
        await self.bot.answer(interaction, Forget())


class Admin(commands.Cog):
    """The model versions: retrain now, list them, roll back."""

    def __init__(self, bot: MoeBot):
        self.bot = bot

    @app_commands.command(name="retrain", description=_description("retrain"))
    async def retrain(self, interaction: discord.Interaction) -> None:
        await self.bot.answer(interaction, Retrain())

    @app_commands.command(name="models", description=_description("models"))
    async def models(self, interaction: discord.Interaction) -> None:
        await self.bot.answer(interaction, Models())

    @app_commands.command(name="rollback", description=_description("rollback"))
    @app_commands.describe(version="the version to serve again (see /models); empty: the one before the current")
    async def rollback(self, interaction: discord.Interaction,
                       version: Optional[app_commands.Range[str, 1, 64]] = None) -> None:
        await self.bot.answer(interaction, Rollback(version))
