"""Discord (discord.py 2.x): the bot, its persistent vote buttons and the error handler.

Slash commands are made from the core's command registry (``bot.discord_commands``); every one ends in
``MoeBot.answer``.
A vote button is a ``DynamicItem`` whose ``custom_id`` (``vote:<picture id>:up``)
is all the state it needs, so buttons on old messages work after a restart.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.config import DiscordConfig
from bot.core import ACTION_ID, VOTE_ID, Buttons, Core, Reply, Rows, Upload, Who, vote_id
from bot.discord_commands import Refused, Translations, slash_commands

if TYPE_CHECKING:
    from bot.retraining import RunOutcome

log = logging.getLogger(__name__)

TOKEN_MARGIN = timedelta(seconds=30)  # answer in the channel when the interaction token is about to expire


class MoeBot(commands.Bot):
    def __init__(self, core: Core, cfg: DiscordConfig):
        super().__init__(command_prefix=commands.when_mentioned, intents=discord.Intents.default(),
                         help_command=None)
        self.core = core
        self.cfg = cfg

    async def setup_hook(self) -> None:
        await self.tree.set_translator(Translations())
        for command in slash_commands(self.core.commands, self.core.bounds, self.answer, self.within_limits):
            self.tree.add_command(command)
        self.add_dynamic_items(VoteButton, ActionButton)
        self.tree.on_error = self.on_tree_error
        if self.cfg.sync_commands:
            guild = discord.Object(self.cfg.guild_id) if self.cfg.guild_id else None
            if guild:
                self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        if self.core.retrainer is not None:  # last: a login that failed before here is retried with a fresh bot
            self.core.retrainer.subscribe(self.tell_admins)

    async def within_limits(self, interaction: discord.Interaction) -> bool:
        """The cooldown check of drawing commands: refuse before deferring, so the refusal can be private."""
        who = who_of(interaction)
        refusal = await self.core.limits.check(who.user_key, who.chat_key)
        if refusal:
            raise Refused(refusal)
        return True

    async def answer(self, interaction: discord.Interaction, command: Any, upload: Upload | None = None) -> None:
        """Run ``command`` (with the picture of a /sketch or /submit) through the core and send its reply and
        further messages; drawing and submitting are deferred with "thinking…"."""
        if not self.core.commands.of(command).slow:
            reply = await self.core.handle(who_of(interaction), command)
            await interaction.response.send_message(reply.text, files=_files(reply), view=reply_view(reply),
                                                    ephemeral=reply.refusal)
            for extra in reply.more:
                await interaction.followup.send(extra.text, files=_files(extra), view=reply_view(extra),
                                                ephemeral=extra.refusal)
            return
        await interaction.response.defer(thinking=True)

        async def on_queued(position: int) -> None:
            await interaction.edit_original_response(content=f"⏳ You're number {position} in the queue…")
        reply = await self.core.handle(who_of(interaction), command, on_queued, upload)
        in_time = datetime.now(timezone.utc) + TOKEN_MARGIN < interaction.expires_at or interaction.channel is None
        for i, part in enumerate((reply, *reply.more)):
            if in_time:
                await interaction.followup.send(part.text, files=_files(part), view=reply_view(part))
            else:  # the 15-minute token is (nearly) gone: post in the channel instead
                mention = f"{interaction.user.mention} " if i == 0 else ""
                await interaction.channel.send(f"{mention}{part.text}", files=_files(part), view=reply_view(part))

    async def tell_admins(self, outcome: RunOutcome) -> None:
        """A retraining run ended: each Discord admin gets its summary and before/after grid as a direct message."""
        reply = await self.core.run_report(outcome)
        for admin in self.core.admin_ids("discord"):
            try:
                user = await self.fetch_user(int(admin))
                await user.send(reply.text, files=_files(reply))
            except (discord.HTTPException, ValueError):
                log.warning("could not tell admin discord:%s about run %s", admin, outcome.version, exc_info=True)

    async def on_tree_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """Every failure gets a polite, private answer; the traceback goes to the log only."""
        if isinstance(error, Refused):
            text = str(error)
        elif isinstance(error, app_commands.CommandNotFound):
            text = "That command no longer exists — try /help."
        elif isinstance(error, app_commands.CheckFailure):
            text = "You can't use that command here."
        else:
            log.error("discord command failed", exc_info=error)
            text = "Sorry, something went wrong on my side. Please try again in a moment."
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not tell the user about an error", exc_info=True)


class VoteButton(discord.ui.DynamicItem[discord.ui.Button], template=VOTE_ID):
    def __init__(self, picture_id: int, up: bool, label: str = ""):
        super().__init__(discord.ui.Button(label=label or ("👍" if up else "👎"), custom_id=vote_id(picture_id, up),
                                           style=discord.ButtonStyle.success if up else discord.ButtonStyle.secondary))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match) -> "VoteButton":
        return cls(int(match.group(1)), match.group(2) == "up", item.label or "")

    async def callback(self, interaction: discord.Interaction) -> None:
        """New counts on the picture for everyone, and the core's notice for the voter alone."""
        bot: MoeBot = interaction.client  # type: ignore[assignment]
        result = await bot.core.vote(who_of(interaction), self.custom_id)
        if result.buttons is None:
            await interaction.response.send_message(result.notice, ephemeral=True)
        else:
            await interaction.response.edit_message(view=vote_view(result.buttons))
            await interaction.followup.send(result.notice, ephemeral=True)


class ActionButton(discord.ui.DynamicItem[discord.ui.Button], template=ACTION_ID):
    """A review (rev:<item>:ok|no|tag) or tag card (tag:<item>:h|e:<colour>) button; the core says what it does."""

    def __init__(self, custom_id: str, label: str, row: int | None = None):
        style = {":ok": discord.ButtonStyle.success, ":no": discord.ButtonStyle.danger}.get(
            custom_id[-3:], discord.ButtonStyle.primary if label.startswith("✓") else discord.ButtonStyle.secondary)
        super().__init__(discord.ui.Button(label=label, custom_id=custom_id, style=style, row=row))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match) -> "ActionButton":
        return cls(item.custom_id, item.label or "")

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: MoeBot = interaction.client  # type: ignore[assignment]
        result = await bot.core.press(who_of(interaction), self.custom_id)
        if result.reply is not None:  # a tag card: for the presser's eyes only
            await interaction.response.send_message(result.reply.text, files=_files(result.reply),
                                                    view=reply_view(result.reply), ephemeral=True)
        elif result.text is not None or result.rows is not None:
            edit = {"content": result.text} if result.text is not None else {}
            if result.rows is not None:
                edit["view"] = rows_view(result.rows) if result.rows else None
            await interaction.response.edit_message(**edit)
        else:
            await interaction.response.send_message(result.notice, ephemeral=True)


def vote_view(buttons: Buttons) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for up, (label, _) in zip((True, False), buttons.labelled()):
        view.add_item(VoteButton(buttons.picture_id, up, label))
    return view


def rows_view(rows: Rows, view: discord.ui.View | None = None, first_row: int = 0) -> discord.ui.View:
    """Review or tag buttons, one Discord row per row (at most five rows in all)."""
    view = view or discord.ui.View(timeout=None)
    for i, row in enumerate(rows, first_row):
        for label, custom_id in row:
            view.add_item(ActionButton(custom_id, label, i))
    return view


def reply_view(reply: Reply) -> discord.ui.View:
    """The reply's vote buttons, then its other rows; MISSING (no components) when it has none."""
    if reply.buttons is None and not reply.actions:
        return discord.utils.MISSING
    view = vote_view(reply.buttons) if reply.buttons else None
    return rows_view(reply.actions, view, 1 if view else 0)


def who_of(interaction: discord.Interaction) -> Who:
    user = interaction.user
    return Who("discord", str(user.id), user.display_name, str(interaction.channel_id or user.id))


def _files(reply: Reply) -> list[discord.File]:
    return [discord.File(io.BytesIO(f.data), filename=f.filename) for f in reply.files]
