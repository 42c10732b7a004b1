"""Chat commands as typed values, and the parser that turns a message's text into one.

Both platforms end up here: Telegram passes the raw text to ``parse``, Discord
builds the same values from its slash-command options. A bad command raises
``CommandError`` whose message is the answer the user sees.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal, Union

from bot import colors

MAX_SEED = 2**31 - 1
PERIODS = ("day", "week", "all")
GRID_MODES = ("hair", "eye", "all")


class CommandError(ValueError):
    """A command the bot cannot run; ``str(e)`` is the polite answer."""


@dataclass(frozen=True)
class Waifu:
    hair: int | None = None  # None = a random colour
    eye: int | None = None
    count: int = 1
    seed: int | None = None  # None = a random seed


@dataclass(frozen=True)
class Grid:
    mode: Literal["hair", "eye", "all"] = "all"
    hair: int | None = None
    eye: int | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Morph:
    hair: int | None = None
    eye: int | None = None
    hair2: int | None = None
    eye2: int | None = None
    seed: int | None = None
    seed2: int | None = None


@dataclass(frozen=True)
class Sketch:
    """Paint an uploaded drawing as a face; the upload travels beside the command (see ``Core.handle``)."""
    hair: int | None = None  # None = drawn from the seed
    eye: int | None = None
    seed: int | None = None  # None = a random seed


@dataclass(frozen=True)
class Submit:
    """Offer a picture's face(s) as training data; the upload travels beside the command, as for Sketch."""
    hair: int | None = None  # None = read off the face by the evaluation classifier
    eye: int | None = None


@dataclass(frozen=True)
class Top:
    period: Literal["day", "week", "all"] = "week"


@dataclass(frozen=True)
class Stats:
    pass


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Colors:
    pass


@dataclass(frozen=True)
class Review:
    """Admins: the oldest pending training items, with approve / reject / re-tag buttons."""


@dataclass(frozen=True)
class Forget:
    """Delete everything the caller sent, and their votes."""


@dataclass(frozen=True)
class Retrain:
    """Admins: start a retraining run now."""


@dataclass(frozen=True)
class Models:
    """Model versions, their figures and grids."""


@dataclass(frozen=True)
class Rollback:
    """Admins: serve an earlier model version again."""
    version: str | None = None  # None = the one that served before the current one


Command = Union[Waifu, Grid, Morph, Sketch, Submit, Top, Stats, Help, Colors, Review, Forget, Retrain, Models,
                Rollback]
DRAWING = (Waifu, Grid, Morph, Sketch)  # commands that use the generator, and so the limits and the queue
SLOW = (*DRAWING, Submit)  # commands under the limits, answered after "thinking…" / "sending a photo…"
WITH_UPLOAD = (Sketch, Submit)  # commands that come with a picture

# name -> (usage, one-line description); the order is the order of /help and of the command menus.
COMMANDS: dict[str, tuple[str, str]] = {
    "waifu": ("/waifu [hair] [eye] [count] [seed]", "draw faces, e.g. /waifu pink blue, /waifu blonde 4"),
    "grid": ("/grid hair|eye|all [hair] [eye] [seed]", "one face in every hair colour, eye colour or pair"),
    "morph": ("/morph [hair] [eye] [hair2] [eye2]", "an animated GIF morphing between two faces"),
    "sketch": ("/sketch [hair] [eye] [seed]", "paint your drawing as a face (send a picture with it)"),
    "submit": ("/submit [hair] [eye]", "offer a picture's face as training data (send a picture with it)"),
    "top": ("/top [day|week|all]", "the best-voted pictures"),
    "stats": ("/stats", "pictures made, votes, dataset size, model version"),
    "colors": ("/colors", "every colour word I understand"),
    "forget": ("/forget", "delete everything you sent me, and your votes"),
    "models": ("/models", "model versions, their figures and sample grids"),
    "review": ("/review", "admins: approve, reject or re-tag waiting training items"),
    "retrain": ("/retrain", "admins: retrain the model on the curated faces now"),
    "rollback": ("/rollback [version]", "admins: serve an earlier model version again"),
    "help": ("/help", "this list"),
}
VERSION = re.compile(r"^[\w.@+-]{1,64}$")  # e.g. ft-20261126-175000, acgan@6250

_KEY_VALUE = re.compile(r"^(hair|eyes?|seed|count|seed2)[:=](.+)$")


def parse(text: str, max_count: int = 4) -> Command:
    """Parse ``/name args`` (``/name@botname`` too); raises CommandError with the answer for the user."""
    head, _, rest = text.strip().partition(" ")
    name = head.lstrip("/").split("@", 1)[0].lower()
    if name == "waifu":
        return parse_waifu(rest, max_count)
    if name == "grid":
        return parse_grid(rest)
    if name == "morph":
        return parse_morph(rest)
    if name == "sketch":
        return parse_sketch(rest)
    if name == "submit":
        return parse_submit(rest)
    if name == "top":
        return parse_top(rest)
    if name in ("stats", "help", "colors", "start", "review", "forget", "retrain", "models"):
        return {"stats": Stats(), "colors": Colors(), "review": Review(), "forget": Forget(), "retrain": Retrain(),
                "models": Models()}.get(name, Help())
    if name == "rollback":
        return parse_rollback(rest)
    raise CommandError(_unknown_command(name, rest))


def parse_waifu(args: str, max_count: int = 4) -> Waifu:
    items, numbers = _items(args, numeric=("count", "seed"))
    hair, eye = _assign(items, ["hair", "eye"])
    count = numbers.get("count", 1)
    if not 1 <= count <= max_count:
        raise CommandError(f"count must be between 1 and {max_count} (to choose a seed, write seed:{count})")
    return Waifu(hair, eye, count, _seed(numbers.get("seed")))


def parse_grid(args: str) -> Grid:
    words = args.split(maxsplit=1)
    mode = "all"
    if words and words[0].lower() in ("hair", "eye", "eyes", "all"):
        mode = "eye" if words[0].lower().startswith("eye") else words[0].lower()
        args = words[1] if len(words) > 1 else ""
    items, numbers = _items(args, numeric=("seed",))
    hair, eye = _assign(items, ["hair", "eye"])
    return Grid(mode, hair, eye, _seed(numbers.get("seed")))  # type: ignore[arg-type]


def parse_morph(args: str) -> Morph:
    items, numbers = _items(args, numeric=("seed", "seed2"))
    hair, eye, hair2, eye2 = _assign(items, ["hair", "eye", "hair", "eye"])
    return Morph(hair, eye, hair2, eye2, _seed(numbers.get("seed")), _seed(numbers.get("seed2")))


def parse_sketch(args: str) -> Sketch:
    items, numbers = _items(args, numeric=("seed",))
    hair, eye = _assign(items, ["hair", "eye"])
    return Sketch(hair, eye, _seed(numbers.get("seed")))


def parse_submit(args: str) -> Submit:
    items, _ = _items(args, numeric=())
    hair, eye = _assign(items, ["hair", "eye"])
    return Submit(hair, eye)


def parse_rollback(args: str) -> Rollback:
    version = args.strip()
    if version and not VERSION.match(version):
        raise CommandError(f"{version[:32]!r} is not a model version; /models lists them")
    return Rollback(version or None)


def colour(word: str, part: str) -> int:
    """The index of one colour word for ``part`` ('hair' or 'eye'); CommandError with a suggestion otherwise."""
    index = colors.index_of(word, part)
    if index is None:
        raise CommandError(_unknown(word, part))
    return index


def parse_top(args: str) -> Top:
    word = args.strip().lower() or "week"
    if word not in PERIODS:
        raise CommandError(f"/top takes day, week or all, not {word[:32]!r}")
    return Top(word)  # type: ignore[arg-type]


def _seed(value: int | None) -> int | None:
    if value is not None and not 0 <= value <= MAX_SEED:
        raise CommandError(f"seed must be between 0 and {MAX_SEED}")
    return value


# An item is (word, part) where part is 'hair', 'eye' or None (not said which).
Item = tuple[str, str | None]


def _items(args: str, numeric: tuple[str, ...]) -> tuple[list[Item], dict[str, int]]:
    """Split arguments into colour words (bound to hair/eye where the user said so) and named numbers.

    A hair/eye word binds the colour right before it ("pink hair") or, when that
    one is taken, the one right after it ("cheveux roses").
    """
    tokens: list[str] = []
    numbers: dict[str, int] = {}
    positional: list[int] = []
    for word in colors.split_words(args):
        if m := _KEY_VALUE.match(word):
            key, value = m.groups()
            if key in numeric:
                numbers[key] = _int(key, value)
            elif key in ("seed", "count", "seed2"):
                raise CommandError(f"this command takes no {key}")
            else:
                tokens += [value, "hair" if key == "hair" else "eyes"]
        elif re.fullmatch(r"[+-]?\d+", word):
            positional.append(_int("number", word))
        else:
            tokens.append(word)
    free = [k for k in numeric if k not in numbers]
    if len(positional) > len(free):
        raise CommandError(f"too many numbers: this command takes {' and '.join(numeric)}")
    numbers.update(zip(free, positional))

    items: list[list] = []  # [word, part]
    for i, word in enumerate(tokens):
        if not word:
            continue
        part = "hair" if word in colors.HAIR_WORDS else "eye" if word in colors.EYE_WORDS else None
        if part is None:
            items.append([word, None])
            continue
        if items and items[-1][1] is None and i > 0 and tokens[i - 1] == items[-1][0]:
            items[-1][1] = part
        elif i + 1 < len(tokens) and tokens[i + 1] not in colors.HAIR_WORDS | colors.EYE_WORDS:
            items.append([tokens[i + 1], part])
            tokens[i + 1] = ""  # consumed
        # a lone "hair" or "eyes" adds nothing
    return [(w, p) for w, p in items if w], numbers


def _int(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise CommandError(f"{name} must be a whole number, not {text[:32]!r}") from None
    if abs(value) > 10**12:
        raise CommandError(f"{name} {text[:16]}… is too large")
    return value


def _assign(items: list[Item], slots: list[str]) -> list[int | None]:
    """Fill ``slots`` (parts in order): said parts take the first free slot of their part, others the first free one."""
    out: list[int | None] = [None] * len(slots)
    for word, part in items:
        free = [i for i, s in enumerate(slots) if out[i] is None and (part is None or s == part)]
        if part is None:  # an unsaid part goes where its colour exists, e.g. "white" never to an eye slot
            free = [i for i in free if colors.index_of(word, slots[i]) is not None] or free
        if not free:
            raise CommandError(_too_many(items, slots, part))
        slot = free[0]
        out[slot] = colour(word, slots[slot])
    return out


def _too_many(items: list[Item], slots: list[str], part: str | None) -> str:
    said = ", ".join(w for w, _ in items)
    if part is not None:
        return f"too many {part} colours in '{said[:80]}': this command takes {slots.count(part)}"
    return f"too many colours in '{said[:80]}': this command takes {len(slots)} ({', '.join(slots)})"


def _unknown_command(name: str, rest: str) -> str:
    """The refusal of an unknown command, naming the command it is a typo of when one is close (/wafu: /waifu)."""
    close = difflib.get_close_matches(name, COMMANDS, n=1, cutoff=0.6)
    if not close:
        return f"I don't know the command /{name[:32]}. Try /help."
    again = f"/{close[0]} {rest.strip()[:64]}".strip()
    return f"I don't know the command /{name[:32]} — did you mean {again}?"


def _unknown(word: str, part: str) -> str:
    label = "hair colour" if part == "hair" else "eye colour"
    if colors.is_colour(word):
        return f"there are no {word[:32]} eyes here; eye colours: {', '.join(colors.names(part))}"
    guess = colors.suggest(word, part)
    if guess:
        return f"unknown {label} '{word[:32]}' — did you mean {guess}?"
    return f"unknown {label} '{word[:32]}'; {label}s: {', '.join(colors.names(part))} (see /colors)"
