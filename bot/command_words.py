"""The words of a command's text: colour words bound to hair or eyes, named and bare numbers, typos answered.

``bot.registry`` reads a command's arguments with these; a bad word raises
``CommandError`` whose message is the answer the user sees.
"""

from __future__ import annotations

import difflib
import re
from typing import Iterable

from bot import colors


class CommandError(ValueError):
    """A command the bot cannot run; ``str(e)`` is the polite answer."""


# An item is (word, part) where part is 'hair', 'eye' or None (not said which).
Item = tuple[str, str | None]


def colour(word: str, part: str) -> int:
    """The index of one colour word for ``part`` ('hair' or 'eye'); CommandError with a suggestion otherwise."""
    index = colors.index_of(word, part)
    if index is None:
        raise CommandError(_unknown(word, part))
    return index


def items(args: str, numeric: tuple[str, ...], known: Iterable[str]) -> tuple[list[Item], dict[str, int]]:
    """Split arguments into colour words (bound to hair/eye where the user said so) and named numbers.

    ``numeric`` are this command's numbers, in the order bare numbers fill them; ``known`` every number any
    command takes (``count:3`` to a command without a count is refused, not read as a colour).
    A hair/eye word binds the colour right before it ("pink hair") or, when that
    one is taken, the one right after it ("cheveux roses").
    """
    names = sorted({*known, *numeric}, key=len, reverse=True)
    key_value = re.compile(rf"^(hair|eyes?|{'|'.join(map(re.escape, names))})[:=](.+)$" if names else
                           r"^(hair|eyes?)[:=](.+)$")
    tokens: list[str] = []
    numbers: dict[str, int] = {}
    positional: list[int] = []
    for word in colors.split_words(args):
        if m := key_value.match(word):
            key, value = m.groups()
            if key in numeric:
                numbers[key] = whole(key, value)
            elif key in names:
                raise CommandError(f"this command takes no {key}")
            else:
                tokens += [value, "hair" if key == "hair" else "eyes"]
        elif re.fullmatch(r"[+-]?\d+", word):
            positional.append(whole("number", word))
        else:
            tokens.append(word)
    free = [k for k in numeric if k not in numbers]
    if len(positional) > len(free):
        raise CommandError(f"too many numbers: this command takes {' and '.join(numeric) or 'none'}")
    numbers.update(zip(free, positional))

    found: list[list] = []  # [word, part]
    for i, word in enumerate(tokens):
        if not word:
            continue
        part = "hair" if word in colors.HAIR_WORDS else "eye" if word in colors.EYE_WORDS else None
        if part is None:
            found.append([word, None])
            continue
        if found and found[-1][1] is None and i > 0 and tokens[i - 1] == found[-1][0]:
            found[-1][1] = part
        elif i + 1 < len(tokens) and tokens[i + 1] not in colors.HAIR_WORDS | colors.EYE_WORDS:
            found.append([tokens[i + 1], part])
            tokens[i + 1] = ""  # consumed
        # a lone "hair" or "eyes" adds nothing
    return [(w, p) for w, p in found if w], numbers


def whole(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise CommandError(f"{name} must be a whole number, not {text[:32]!r}") from None
    if abs(value) > 10**12:
        raise CommandError(f"{name} {text[:16]}… is too large")
    return value


def assign(found: list[Item], slots: list[str]) -> list[int | None]:
    """Fill ``slots`` (parts in order): said parts take the first free slot of their part, others the first free one."""
    out: list[int | None] = [None] * len(slots)
    for word, part in found:
        free = [i for i, s in enumerate(slots) if out[i] is None and (part is None or s == part)]
        if part is None:  # an unsaid part goes where its colour exists, e.g. "white" never to an eye slot
            free = [i for i in free if colors.index_of(word, slots[i]) is not None] or free
        if not free:
            raise CommandError(_too_many(found, slots, part))
        slot = free[0]
        out[slot] = colour(word, slots[slot])
    return out


def unknown_command(name: str, rest: str, names: Iterable[str]) -> str:
    """The refusal of an unknown command, naming the command it is a typo of when one is close (/wafu: /waifu)."""
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    if not close:
        return f"I don't know the command /{name[:32]}. Try /help."
    again = f"/{close[0]} {rest.strip()[:64]}".strip()
    return f"I don't know the command /{name[:32]} — did you mean {again}?"


def _too_many(found: list[Item], slots: list[str], part: str | None) -> str:
    said = ", ".join(w for w, _ in found)
    if part is not None:
        return f"too many {part} colours in '{said[:80]}': this command takes {slots.count(part)}"
    if not slots:
        return f"this command takes no colours, not '{said[:80]}'"
    return f"too many colours in '{said[:80]}': this command takes {len(slots)} ({', '.join(slots)})"


def _unknown(word: str, part: str) -> str:
    label = "hair colour" if part == "hair" else "eye colour"
    if colors.is_colour(word):
        return f"there are no {word[:32]} eyes here; eye colours: {', '.join(colors.names(part))}"
    guess = colors.suggest(word, part)
    if guess:
        return f"unknown {label} '{word[:32]}' — did you mean {guess}?"
    return f"unknown {label} '{word[:32]}'; {label}s: {', '.join(colors.names(part))} (see /colors)"
