"""What the store reads and writes, as plain values: no SQL, no connection."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NewPicture:
    kind: str  # 'face', 'grid', 'morph' or 'sketch'
    platform: str
    chat_id: str
    user_id: int
    tags: str
    model_version: str
    hair: int | None = None
    eye: int | None = None
    seed: int | None = None
    count: int = 1
    upload_id: int | None = None  # the drawing a sketch picture was made from


@dataclass(frozen=True)
class NewUpload:
    """A drawing someone sent to /sketch, kept as candidate training data."""
    user_id: int
    platform: str
    chat_id: str
    filename: str


@dataclass(frozen=True)
class Picture:
    id: int
    path: Path  # absolute
    kind: str
    tags: str
    seed: int | None
    count: int
    up: int = 0
    down: int = 0


@dataclass(frozen=True)
class GalleryItem:
    id: int
    kind: str
    tags: str
    platform: str
    model_version: str
    created_at: str
    up: int
    down: int
    state: str | None  # its training item's status, or None when it is not training data


@dataclass(frozen=True)
class GalleryFilter:
    """What the dashboard's gallery shows: every field narrows it; empty means any."""
    tags: str = ""  # words that must all appear in the tags, e.g. "pink blue"
    votes: str = ""  # "up" (has a 👍), "down" (has a 👎), "none" (no votes yet)
    platform: str = ""
    kind: str = ""
    state: str = ""  # its training item's status: "pending", "curated", "rejected"; "none": not training data


@dataclass(frozen=True)
class Counts:
    up: int
    down: int
    mine: int  # this user's vote now: 1, -1 or 0 (none)
    decided: str | None = None  # 'curated' or 'rejected' when this vote decided the picture's training item


@dataclass(frozen=True)
class Item:
    """A training face that came from chat: a submission, or a picture whose votes curated or rejected it."""
    id: int  # images.id
    path: Path  # the 64x64 face, absolute
    hair: int | None
    eye: int | None
    status: str  # 'pending', 'curated' or 'rejected'
    source: str  # 'submit:telegram', 'chat:face', 'chat:sketch', ...
    picture_id: int | None  # the chat picture that carries its votes
    user_id: int | None  # who submitted it (None for generated faces)
    up: int = 0
    down: int = 0


@dataclass(frozen=True)
class Forgotten:
    """What /forget deleted, counted for the answer."""
    submissions: int  # training items the user sent
    training_items: int  # every training item removed (theirs, and faces painted from their drawings)
    uploads: int
    pictures: int  # chat pictures that showed what they sent
    votes_on_them: int  # others' votes on those pictures
    votes: int  # the user's own votes


@dataclass(frozen=True)
class Totals:
    pictures: int
    votes: int
    voters: int
    users: int
    dataset: int  # training faces not rejected
