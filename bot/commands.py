"""The bot's commands: its registry, gathered from the handler modules in /help order, and the text parser.

Adding a command is one ``Spec`` entry beside its handler (see the README, "Adding a command"); Telegram,
Discord, the playground and /help all follow from this registry.
"""

from __future__ import annotations

from typing import Any

from bot.command_words import CommandError, colour
from bot.handlers import curation, drawing, info, models, sketches
from bot.handlers.curation import Forget, Review
from bot.handlers.drawing import Grid, Morph, Waifu
from bot.handlers.info import Colors, Help, Stats, Top
from bot.handlers.models import Models, Retrain, Rollback
from bot.handlers.sketches import Sketch, Submit
from bot.registry import Registry

__all__ = ["COMMANDS", "CommandError", "colour", "parse", "Waifu", "Grid", "Morph", "Sketch", "Submit", "Top",
           "Stats", "Help", "Colors", "Review", "Forget", "Retrain", "Models", "Rollback"]

COMMANDS = Registry([*drawing.SPECS, *sketches.SPECS, info.TOP, info.STATS, info.COLORS, curation.FORGET,
                     models.SPECS[0], curation.REVIEW, *models.SPECS[1:], info.HELP], press=curation.press)


def parse(text: str, max_count: int = 4) -> Any:
    """The bot's command in ``text`` (``/name args``); CommandError with the answer for the user."""
    return COMMANDS.parse(text, {"max_count": max_count})
