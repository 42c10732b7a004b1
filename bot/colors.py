"""Colour words users type, in five languages, resolved to the model's hair and eye indices.

The model knows 12 hair and 10 eye colours (``generator.tags``); people say
"blond", "grey", "cyan", "rose" or "金髪". Everything that maps a word to an index
lives here, so the Telegram parser, Discord choices and /colors agree.
"""

from __future__ import annotations

import difflib
import re

from generator.tags import EYE_COLORS, HAIR_COLORS

# colour concept -> words for it (English synonyms, French, Korean, Japanese, Chinese).
# A concept names a hair colour, an eye colour or both; see _HAIR_OF / _EYE_OF.
_WORDS: dict[str, tuple[str, ...]] = {
    "orange": ("orange", "ginger", "オレンジ", "橙", "橙色", "橘色", "주황", "주황색", "오렌지"),
    "white": ("white", "blanc", "blanche", "blancs", "blanches", "白", "白い", "白色", "흰", "흰색", "하얀",
              "하얀색", "하양"),
    "aqua": ("aqua", "cyan", "teal", "turquoise", "水色", "青色", "浅蓝", "浅蓝色", "天蓝色",
             "하늘색", "청록", "청록색"),
    "gray": ("gray", "grey", "silver", "gris", "grise", "argent", "argenté", "argentés", "灰色", "銀", "銀色",
             "银", "银色", "회색", "은색"),
    "green": ("green", "vert", "verte", "verts", "vertes", "緑", "緑色", "绿", "绿色", "초록", "초록색", "녹색"),
    "red": ("red", "crimson", "scarlet", "rouge", "rouges", "赤", "赤い", "红", "红色", "紅", "빨강", "빨간",
            "빨간색", "붉은"),
    "purple": ("purple", "violet", "lavender", "violette", "violets", "紫", "紫色", "보라", "보라색"),
    "pink": ("pink", "rose", "roses", "ピンク", "桃色", "粉", "粉色", "粉红", "粉红色", "분홍", "분홍색", "핑크"),
    "blue": ("blue", "navy", "bleu", "bleue", "bleus", "bleues", "青", "青い", "蓝", "蓝色", "藍", "파랑",
             "파란", "파란색"),
    "black": ("black", "dark", "noir", "noire", "noirs", "noires", "黒", "黒い", "黑", "黑色", "검정", "검은",
              "검은색", "까만"),
    "brown": ("brown", "brunette", "chestnut", "brun", "brune", "bruns", "marron", "茶", "茶色", "棕", "棕色",
              "褐色", "갈색"),
    "yellow": ("yellow", "blonde", "blond", "blondes", "blonds", "gold", "golden", "jaune", "jaunes", "doré",
               "dorés", "金", "金色", "黄", "黄色", "黄い", "黄色い", "노랑", "노란", "노란색", "금", "금색"),
}
# concept -> index, for each part; a concept missing here is not drawable for that part
_HAIR_OF = {c: HAIR_COLORS.index("blonde" if c == "yellow" else c) for c in _WORDS}
_EYE_OF = {c: EYE_COLORS.index(c) for c in _WORDS if c in EYE_COLORS}

HAIR_WORDS = frozenset({"hair", "haired", "cheveux", "머리", "머리카락", "머리에", "발", "髪", "髪の毛", "头发", "頭髮",
                        "发", "髮"})
EYE_WORDS = frozenset({"eye", "eyes", "eyed", "yeux", "oeil", "œil", "눈", "目", "瞳", "眼", "眼睛"})
# glue between CJK words ("ピンクの髪と青い目", "粉色的头发") that carries no meaning here
_FILLER = frozenset("のとい的和與与色에의와과한은는이가を")

_CONCEPT_OF: dict[str, str] = {w: c for c, words in _WORDS.items() for w in words}
_VOCAB = sorted({*_CONCEPT_OF, *HAIR_WORDS, *EYE_WORDS}, key=len, reverse=True)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_ASCII_WORDS = {part: sorted(w for w, c in _CONCEPT_OF.items() if w.isascii() and c in of)
                for part, of in (("hair", _HAIR_OF), ("eye", _EYE_OF))}


def names(part: str) -> tuple[str, ...]:
    """The model's colour names for ``part`` ('hair' or 'eye'), in index order."""
    return HAIR_COLORS if part == "hair" else EYE_COLORS


def index_of(word: str, part: str) -> int | None:
    """The colour index ``word`` names for ``part``, or None when it names none."""
    concept = _CONCEPT_OF.get(word.lower())
    if concept is None:
        return None
    return (_HAIR_OF if part == "hair" else _EYE_OF).get(concept)


def is_colour(word: str) -> bool:
    return word.lower() in _CONCEPT_OF


def suggest(word: str, part: str) -> str | None:
    """The model's name of the colour whose spelling is nearest to ``word``, or None if nothing is close."""
    close = difflib.get_close_matches(word.lower(), _ASCII_WORDS[part], n=1, cutoff=0.6)
    if not close:
        return None
    return names(part)[index_of(close[0], part)]


def split_words(text: str) -> list[str]:
    """Lower-case words; CJK runs (written without spaces) are cut at known words, fillers dropped."""
    words: list[str] = []
    for token in re.split(r"[\s,;，、。.!?！？]+", text.lower()):
        if not token:
            continue
        if not _CJK.search(token):
            words.append(token)
            continue
        unknown = ""
        i = 0
        while i < len(token):
            match = next((w for w in _VOCAB if token.startswith(w, i)), None)
            if match is None and token[i] in _FILLER:
                match = ""
            if match is None:
                unknown += token[i]
                i += 1
                continue
            if unknown:
                words.append(unknown)
                unknown = ""
            if match:
                words.append(match)
            i += max(len(match), 1)
        if unknown:
            words.append(unknown)
    return words


def colour_table() -> str:
    """The /colors answer: every colour with a few of the other words that name it."""
    lines = ["Hair colours: " + ", ".join(HAIR_COLORS), "Eye colours: " + ", ".join(EYE_COLORS), "",
             "Other words I understand:"]
    for concept, words in _WORDS.items():
        others = [w for w in words if w != concept]
        lines.append(f"• {concept}: {', '.join(others)}")
    lines.append("")
    lines.append("'yellow' hair is drawn blonde; there are no white or gray eyes.")
    return "\n".join(lines)
