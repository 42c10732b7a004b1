"""Discord slash commands made from the command registry: one app command per entry, one option per argument.

Colours become choices of the model's colours, numbers ranges (``count`` up to ``[limits] max_count``),
a fixed set of words choices, a picture a required attachment; the entry's localised names and
descriptions go through ``Translations``. Every command ends in the ``answer`` it is given (``MoeBot.answer``).
"""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any, Awaitable, Callable, Optional

import aiohttp
import discord
from discord import app_commands

from bot.command_words import CommandError
from bot.core import Upload
from bot.registry import Bounds, Choice, Colour, Number, Picture, Registry, Spec, Text
from generator.sketch_input import SketchRejected
from generator.tags import EYE_COLORS, HAIR_COLORS

COLOURS = {"hair": [app_commands.Choice(name=name, value=i) for i, name in enumerate(HAIR_COLORS)],
           "eye": [app_commands.Choice(name=name, value=i) for i, name in enumerate(EYE_COLORS)]}
Answer = Callable[[discord.Interaction, Any, Optional[Upload]], Awaitable[None]]
Check = Callable[[discord.Interaction], Awaitable[bool]]


class Refused(app_commands.CheckFailure):
    """A limit or an argument said no; the message is the answer."""


def slash_commands(registry: Registry, bounds: Bounds, answer: Answer, check: Check) -> list[app_commands.Command]:
    """An app command per entry; ``check`` (the limits) guards the slow ones before they defer."""
    return [slash_command(spec, bounds, answer, check) for spec in registry]


def option(arg: Any, bounds: Bounds) -> tuple[Any, list[app_commands.Choice] | None]:
    """The option type of one argument and its choices (None: free within the type)."""
    if isinstance(arg, Colour):
        return Optional[app_commands.Choice[int]], COLOURS[arg.part]
    if isinstance(arg, Number):
        return Optional[app_commands.Range[int, arg.low, arg.top(bounds)]], None
    if isinstance(arg, Choice):
        return Optional[app_commands.Choice[str]], [app_commands.Choice(name=o, value=o) for o in arg.options]
    if isinstance(arg, Text):
        return Optional[app_commands.Range[str, 1, arg.max_len]], None
    if isinstance(arg, Picture):
        return discord.Attachment, None
    raise TypeError(f"no Discord option for {arg!r}")


def slash_command(spec: Spec, bounds: Bounds, answer: Answer, check: Check) -> app_commands.Command:
    """The entry as an app command: its callback's signature is what discord.py reads the options from."""
    async def callback(interaction: discord.Interaction, **values: Any) -> None:
        picture = values.pop(spec.upload.name) if spec.upload else None
        upload = Upload(picture.filename, picture.size, partial(download, picture)) if picture else None
        values = {k: v.value if isinstance(v, app_commands.Choice) else v for k, v in values.items()}
        try:
            command = spec.make(values, bounds)
        except CommandError as e:
            raise Refused(str(e)) from None
        await answer(interaction, command, upload)

    params = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction)]
    choices = {}
    for arg in spec.args:
        kind, choices[arg.name] = option(arg, bounds)
        default = inspect.Parameter.empty if isinstance(arg, Picture) else None
        params.append(inspect.Parameter(arg.name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default))
    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    callback.__discord_app_commands_param_choices__ = {k: v for k, v in choices.items() if v}  # type: ignore
    callback.__discord_app_commands_param_description__ = {a.name: a.help[:100] for a in spec.args}  # type: ignore
    command = app_commands.Command(name=spec.name, description=spec.description[:100], callback=callback,
                                   extras={"spec": spec})
    if spec.slow:
        command.add_check(check)
    return command


async def download(attachment: discord.Attachment) -> bytes:
    """The attachment's bytes; a failed download is a refusal the user reads, not an error."""
    try:
        return await attachment.read()
    except (discord.HTTPException, aiohttp.ClientError) as e:
        why = e.status if isinstance(e, discord.HTTPException) else type(e).__name__
        raise SketchRejected(f"I couldn't download your picture from Discord ({why}) — please attach it "
                             "again.") from None


class Translations(app_commands.Translator):
    """A command's localised name and description, from its registry entry; everything else stays as written."""

    async def translate(self, string: app_commands.locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContextTypes) -> str | None:
        spec = getattr(context.data, "extras", {}).get("spec") if context.data is not None else None
        if spec is None:
            return None
        if context.location is app_commands.TranslationContextLocation.command_name:
            return spec.names.get(locale.value)
        if context.location is app_commands.TranslationContextLocation.command_description:
            return spec.descriptions.get(locale.value)
        return None
