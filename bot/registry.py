"""The command registry: each chat command declared once, everything else derived from its entry.

An entry (``Spec``) names the command, its typed arguments (ranges may come from
config, e.g. ``[limits] max_count``), its kind (drawing, admin only; it is slow
when it draws or takes an upload), its handler, its help line and its
localised names and descriptions. From the registry come the text parser that
Telegram and the playground use, ``/help``, Telegram's handlers and command
menu, Discord's slash commands and their options (``bot.discord_commands``)
and the playground's suggestions; ``Core.handle`` dispatches through it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, make_dataclass
from typing import Any, Awaitable, Callable, Iterable, Iterator, Literal, Mapping

from bot.command_words import CommandError, assign, items, unknown_command

MAX_SEED = 2**31 - 1
HELP_TAIL = ("Colours can come in any order, with or without 'hair'/'eyes', in English, français, 한국어, 日本語 or "
             "中文. Vote with 👍/👎 under each picture.")
Bounds = Mapping[str, int]  # config values that ranges name, e.g. {"max_count": 4}
Handler = Callable[[Any, Any], Awaitable[Any]]  # (core, call) -> Reply; see bot.core.Call


@dataclass(frozen=True)
class Colour:
    """A hair or eye colour: a word in chat, one of the model's colours as a Discord choice; None = random."""
    name: str
    part: Literal["hair", "eye"]
    help: str


@dataclass(frozen=True)
class Number:
    """A whole number from ``low`` to ``high``: a number, or the name of a config bound (``"max_count"``)."""
    name: str
    low: int
    high: int | str
    help: str
    hint: str = ""  # added to the refusal of a number out of range; ``{value}`` is the number given

    def top(self, bounds: Bounds) -> int:
        return bounds[self.high] if isinstance(self.high, str) else self.high

    def check(self, value: int, bounds: Bounds) -> int:
        if not self.low <= value <= self.top(bounds):
            hint = f" {self.hint.format(value=value)}" if self.hint else ""
            raise CommandError(f"{self.name} must be between {self.low} and {self.top(bounds)}{hint}")
        return value


@dataclass(frozen=True)
class Choice:
    """One word of a fixed set, first in the text; ``aliases`` maps other spellings to options."""
    name: str
    options: tuple[str, ...]
    default: str
    help: str
    aliases: Mapping[str, str] = field(default_factory=dict)

    def pick(self, word: str) -> str | None:
        word = self.aliases.get(word.lower(), word.lower())
        return word if word in self.options else None


@dataclass(frozen=True)
class Text:
    """The rest of the text, matching ``pattern``; ``wrong`` is the refusal (``{value}``: what was given)."""
    name: str
    pattern: str
    max_len: int
    help: str
    wrong: str

    def check(self, value: str) -> str:
        if len(value) > self.max_len or not re.fullmatch(self.pattern, value):
            raise CommandError(self.wrong.format(value=value[:32]))
        return value


@dataclass(frozen=True)
class Picture:
    """An upload that travels beside the command (a chat attachment, the playground's pad); not a field."""
    name: str
    help: str


Arg = Colour | Number | Choice | Text | Picture


def seed(name: str = "seed", help: str = "the same seed draws the same face") -> Number:
    return Number(name, 0, MAX_SEED, help)


@dataclass(frozen=True)
class Spec:
    """One command. Its value is ``type`` (a frozen dataclass whose fields are the args but pictures), made
    from the args when not given; ``handler(core, call)`` answers it with a Reply."""
    name: str
    description: str  # one line for /help and the menus; Discord shows at most 100 characters
    handler: Handler
    args: tuple[Arg, ...] = ()
    type: Any = None
    drawing: bool = False  # uses the generator: the limits, the queue and its notices
    admin: bool = False  # refused to anyone but [limits] admins
    aliases: tuple[str, ...] = ()  # other names the text parser accepts (/start)
    names: Mapping[str, str] = field(default_factory=dict)  # Discord locale ("ko", "fr"…) -> localised name
    descriptions: Mapping[str, str] = field(default_factory=dict)  # Discord locale -> localised description

    def __post_init__(self) -> None:
        if self.type is None:
            fields = [(a.name, Any, field(default=None)) for a in self.fields]
            object.__setattr__(self, "type", make_dataclass(self.name.title(), fields, frozen=True))

    @property
    def fields(self) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if not isinstance(a, Picture))

    @property
    def upload(self) -> Picture | None:
        return next((a for a in self.args if isinstance(a, Picture)), None)

    @property
    def slow(self) -> bool:
        """Answered after "thinking…" / "sending a photo…", under the limits: drawing, or reading an upload."""
        return self.drawing or self.upload is not None

    @property
    def usage(self) -> str:
        shown = [f"[{'|'.join(a.options)}]" if isinstance(a, Choice) else f"[{a.name}]" for a in self.fields]
        return " ".join([f"/{self.name}", *shown])

    def make(self, values: Mapping[str, Any], bounds: Bounds) -> Any:
        """The command from argument values (None: not given), each checked against its range or pattern."""
        given = {k: v for k, v in values.items() if v is not None}
        for arg in self.fields:
            if arg.name in given and isinstance(arg, (Number, Text)):
                given[arg.name] = arg.check(given[arg.name], bounds) if isinstance(arg, Number) else \
                    arg.check(given[arg.name])
        return self.type(**given)

    def read(self, text: str, bounds: Bounds, number_names: Iterable[str]) -> Any:
        """The command from the text after its name; CommandError with the answer for the user."""
        values: dict[str, Any] = {}
        rest = text.strip()
        colours = [a for a in self.fields if isinstance(a, Colour)]
        numbers = [a for a in self.fields if isinstance(a, Number)]
        if choice := next((a for a in self.fields if isinstance(a, Choice)), None):
            first, _, after = rest.partition(" ")
            if picked := choice.pick(first):
                values[choice.name], rest = picked, after.strip()
            elif rest and not (colours or numbers):
                said = ", ".join(choice.options[:-1]) + f" or {choice.options[-1]}"
                raise CommandError(f"/{self.name} takes {said}, not {first[:32].lower()!r}")
        if text_arg := next((a for a in self.fields if isinstance(a, Text)), None):
            values[text_arg.name] = rest or None
        elif colours or numbers:
            found, said = items(rest, tuple(n.name for n in numbers), number_names)
            values.update(zip((c.name for c in colours), assign(found, [c.part for c in colours])))
            values.update(said)
        return self.make(values, bounds)


class Registry:
    """The commands in /help order, and ``press``: what a review or tag button does (see ``Core.press``)."""

    def __init__(self, specs: Iterable[Spec], press: Handler | None = None):
        self.specs = tuple(specs)
        self.press = press
        self._names = {n: s for s in self.specs for n in (s.name, *s.aliases)}
        self._types = {s.type: s for s in self.specs}
        self._numbers = {a.name for s in self.specs for a in s.fields if isinstance(a, Number)}

    def __iter__(self) -> Iterator[Spec]:
        return iter(self.specs)

    def plus(self, *specs: Spec) -> Registry:
        """These commands and ``specs`` (a bot with a command of its own)."""
        return Registry((*self.specs, *specs), self.press)

    def get(self, name: str) -> Spec | None:
        return self._names.get(name)

    def of(self, command: Any) -> Spec:
        """The entry of a command value; KeyError for a value no entry makes."""
        return self._types[type(command)]

    def parse(self, text: str, bounds: Bounds) -> Any:
        """Parse ``/name args`` (``/name@botname`` too); raises CommandError with the answer for the user."""
        head, _, rest = text.strip().partition(" ")
        name = head.lstrip("/").split("@", 1)[0].lower()
        spec = self.get(name)
        if spec is None:
            raise CommandError(unknown_command(name, rest, (s.name for s in self.specs)))
        return spec.read(rest, bounds, self._numbers)

    def help_text(self) -> str:
        lines = ["I draw anime faces. Commands:", *(f"{s.usage} — {s.description}" for s in self.specs), HELP_TAIL]
        return "\n".join(lines)
