"""The hair and eye colour vocabularies, in the order of the public ACGAN anime models.

Keeping that order lets their ``tags.pickle`` one-hot files import unchanged.
"""

from __future__ import annotations

HAIR_COLORS: tuple[str, ...] = (
    "orange", "white", "aqua", "gray", "green", "red",
    "purple", "pink", "blue", "black", "brown", "blonde",
)
EYE_COLORS: tuple[str, ...] = (
    "black", "orange", "pink", "yellow", "aqua",
    "purple", "green", "brown", "red", "blue",
)
N_HAIR = len(HAIR_COLORS)
N_EYE = len(EYE_COLORS)


def hair_index(name: str) -> int:
    """Index of an exact hair colour name; ValueError names the valid ones."""
    try:
        return HAIR_COLORS.index(name)
    except ValueError:
        raise ValueError(f"unknown hair colour {name!r}; choose from {', '.join(HAIR_COLORS)}") from None


def eye_index(name: str) -> int:
    """Index of an exact eye colour name; ValueError names the valid ones."""
    try:
        return EYE_COLORS.index(name)
    except ValueError:
        raise ValueError(f"unknown eye colour {name!r}; choose from {', '.join(EYE_COLORS)}") from None


def parse_tag_text(text: str) -> tuple[int, int] | None:
    """Parse ``'<hair> hair <eye> eyes'`` (the tags.csv form); None when it is not that form."""
    words = text.lower().split()
    if len(words) != 4 or words[1] != "hair" or words[3] not in ("eyes", "eye"):
        return None
    if words[0] not in HAIR_COLORS or words[2] not in EYE_COLORS:
        return None
    return HAIR_COLORS.index(words[0]), EYE_COLORS.index(words[2])


def tag_text(hair: int, eye: int) -> str:
    return f"{HAIR_COLORS[hair]} hair {EYE_COLORS[eye]} eyes"
