"""Users, the pictures sent to chats, and the votes on them (which can make a drawn face training data)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from bot.curation import CurationRules, decide
from bot.store.database import Database, Session
from bot.store.files import put_file, store_face
from bot.store.items import log_change
from bot.store.records import Counts, NewPicture, NewUpload

# Generated pictures of one face that votes can make training data: kind -> where the face is in the
# picture, as (cell, columns) of the grid it was tiled in (a sketch shows the drawing, then the face); None: all
FACE_CELL: dict[str, tuple[int, int] | None] = {"face": None, "sketch": (1, 2)}
COUNTS = ("SELECT COUNT(*) FILTER (WHERE value = 1), COUNT(*) FILTER (WHERE value = -1), "
          "COALESCE(SUM(value) FILTER (WHERE user_id = ?), 0) FROM votes WHERE picture_id = ?")


class _FaceNeeded(Exception):
    """A vote decided that a drawn face enters the training set, and its face file is not cut out yet: the
    transaction is rolled back, the file written outside it, and the vote run again."""

    def __init__(self, path: str, cell: tuple[int, int] | None):
        self.path, self.cell = path, cell


class Votes:
    db: Database
    data_dir: Path

    async def user(self, platform: str, external_id: str, name: str) -> int:
        """The internal id of a platform user, created on first sight; the name is kept current. A known user
        under the same name costs no write (so reading commands work on a full disk)."""
        known = await self.db.fetchone("SELECT id, name FROM users WHERE platform = ? AND external_id = ?",
                                       (platform, external_id))
        if known is not None and known["name"] == name[:100]:
            return known["id"]
        return await self.db.fetchval(
            "INSERT INTO users (platform, external_id, name) VALUES (?, ?, ?) "
            "ON CONFLICT (platform, external_id) DO UPDATE SET name = excluded.name RETURNING id",
            (platform, external_id, name[:100]))

    async def add_picture(self, data: bytes, suffix: str, meta: NewPicture) -> int:
        """Write the file (once per content) and its row; returns the picture id."""
        sha, rel = await put_file(self.data_dir, "pictures", data, suffix)
        return await self.db.fetchval(
            "INSERT INTO pictures (sha256, path, kind, user_id, platform, chat_id, hair, eye, seed, count, "
            "tags, model_version, upload_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (sha, rel, meta.kind, meta.user_id, meta.platform, meta.chat_id, meta.hair, meta.eye,
             meta.seed, meta.count, meta.tags, meta.model_version, meta.upload_id))

    async def add_upload(self, data: bytes, suffix: str, meta: NewUpload) -> int:
        """Keep an uploaded drawing's original bytes (once per content) and who sent it when; returns its id."""
        sha, rel = await put_file(self.data_dir, "uploads", data, suffix)
        return await self.db.fetchval(
            "INSERT INTO uploads (sha256, path, user_id, platform, chat_id, filename) VALUES (?, ?, ?, ?, ?, ?) "
            "RETURNING id", (sha, rel, meta.user_id, meta.platform, meta.chat_id, meta.filename[:200]))

    async def vote(self, picture_id: int, user_id: int, value: int,
                   rules: CurationRules | None = None) -> Counts | None:
        """One vote per user per picture: the same vote again withdraws it, the other one replaces it.

        With ``rules``, the votes are judged in the same transaction: an undecided training item of the
        picture becomes curated or rejected (a generated face enters the training set then), so a vote is
        never counted without its consequence. None when the picture does not exist. The vote that makes a
        face training data runs twice: the face file is cut out between the tries, outside any transaction.
        """
        try:
            return await self._vote(picture_id, user_id, value, rules, None)
        except _FaceNeeded as need:
            face = await asyncio.to_thread(store_face, self.data_dir, need.path, need.cell)
        return await self._vote(picture_id, user_id, value, rules, face)

    async def _vote(self, picture_id: int, user_id: int, value: int, rules: CurationRules | None,
                    face: tuple[str, str, int] | None) -> Counts | None:
        async with self.db.transaction() as tx:
            await tx.serialize(f"picture:{picture_id}")  # its votes are counted and judged one at a time
            if await tx.fetchone("SELECT 1 FROM pictures WHERE id = ?", (picture_id,)) is None:
                return None
            withdrawn = await tx.execute("DELETE FROM votes WHERE picture_id = ? AND user_id = ? AND value = ?",
                                         (picture_id, user_id, value))
            if not withdrawn:
                await tx.execute(
                    "INSERT INTO votes (picture_id, user_id, value) VALUES (?, ?, ?) ON CONFLICT (picture_id, "
                    "user_id) DO UPDATE SET value = excluded.value, voted_at = excluded.voted_at",
                    (picture_id, user_id, value))
            counts = await counts_of(tx, picture_id, user_id)
            if rules is not None:
                counts = dataclasses.replace(counts, decided=await _judge(tx, picture_id, counts, rules, face))
        return counts

    async def counts(self, picture_id: int, user_id: int | None = None) -> Counts:
        return await counts_of(self.db, picture_id, user_id)


async def counts_of(db: Session, picture_id: int, user_id: int | None) -> Counts:
    up, down, mine = await db.fetchone(COUNTS, (user_id, picture_id))
    return Counts(up, down, mine)


async def _judge(tx: Session, picture_id: int, counts: Counts, rules: CurationRules,
                 face: tuple[str, str, int] | None) -> str | None:
    """Apply the votes to the picture's training item, inside the vote's transaction; the new status or None.

    Only undecided items change: a pending submission, or a generated face not yet in the training set
    (which enters it curated or rejected, with the tags it was drawn for; ``face`` is its (sha256, path, size),
    else _FaceNeeded). A decision by votes or by an admin is not undone by later votes.
    """
    item = await tx.fetchone("SELECT id, status, hair, eye FROM images WHERE picture_id = ?", (picture_id,))
    if item is not None and item["status"] != "pending":
        return None
    picture = await tx.fetchone("SELECT kind, count, path, hair, eye FROM pictures WHERE id = ?", (picture_id,))
    if item is None and not (picture["kind"] in FACE_CELL and picture["count"] == 1
                             and picture["hair"] is not None and picture["eye"] is not None):
        return None
    decision = decide(counts.up, counts.down, rules)
    if decision is None:
        return None
    if item is not None:
        if not await tx.execute("UPDATE images SET status = ? WHERE id = ? AND status = 'pending'",
                                (decision.status, item["id"])):
            return None  # an admin decided it meanwhile
        await log_change(tx, item["id"], picture_id, "pending", decision.status, item["hair"], item["eye"], "votes",
                         decision.reason)
        return decision.status
    if face is None:
        raise _FaceNeeded(picture["path"], FACE_CELL[picture["kind"]])
    sha, rel, size = face
    image_id = await tx.fetchval(
        "INSERT INTO images (sha256, path, hair, eye, source, source_name, status, picture_id, size) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING RETURNING id",
        (sha, rel, picture["hair"], picture["eye"], f"chat:{picture['kind']}", f"picture {picture_id}",
         decision.status, picture_id, size))
    if image_id is None:  # the very same face is in the training set already
        return None
    await log_change(tx, image_id, picture_id, None, decision.status, picture["hair"], picture["eye"], "votes",
                     decision.reason)
    return decision.status
