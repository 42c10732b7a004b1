"""Training items from chat: submissions, the queues admins curate, their decisions and tags, and /forget.

Every change of an item's state or tags is logged in curation_log, in the transaction that makes it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from PIL import Image

from bot.store.database import Database, Session
from bot.store.files import put_file, remove_files
from bot.store.records import Forgotten, Item, NewPicture
from training.importer import pixel_hash, store_image

ITEM_COLUMNS = ("i.id, i.path, i.hair, i.eye, i.status, i.source, i.picture_id, i.user_id, "
                "(SELECT COUNT(*) FROM votes WHERE picture_id = i.picture_id AND value = 1), "
                "(SELECT COUNT(*) FROM votes WHERE picture_id = i.picture_id AND value = -1)")


class _AlreadyThere(Exception):
    """The face entered the training set while its submission was being written: roll the submission back."""


async def log_change(db: Session, image_id: int, picture_id: int | None, old: str | None, new: str,
                     hair: int | None, eye: int | None, actor: str, reason: str) -> None:
    await db.execute(
        "INSERT INTO curation_log (image_id, picture_id, old_status, new_status, hair, eye, actor, reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (image_id, picture_id, old, new, hair, eye, actor, reason[:500]))


def marks(values: list) -> str:
    """Placeholders for ``IN (...)``; NULL for none, which matches nothing (``IN ()`` is SQLite's alone)."""
    return ",".join("?" * len(values)) or "NULL"


class Items:
    db: Database
    data_dir: Path

    async def add_submission(self, face: Image.Image, shown: bytes, meta: NewPicture, actor: str,
                             source_name: str) -> tuple[int, int] | None:
        """A face someone sent: kept under faces/ by pixel hash like imported ones, shown in chat as a
        'submission' picture (``shown``, which carries its votes), and pending as a training item with the
        picture's tags; (item id, picture id), or None when the very same face is in the training set already.
        Both files are written before the transaction (by content, so a lost race leaves the same files)."""
        sha = pixel_hash(face)
        if await self.db.fetchone("SELECT 1 FROM images WHERE sha256 = ?", (sha,)) is not None:
            return None
        rel = await asyncio.to_thread(store_image, self.data_dir, face, sha)
        picture_sha, picture_rel = await put_file(self.data_dir, "pictures", shown, ".png")
        try:
            async with self.db.transaction() as tx:
                picture_id = await tx.fetchval(
                    "INSERT INTO pictures (sha256, path, kind, user_id, platform, chat_id, hair, eye, count, tags, "
                    "model_version, upload_id) VALUES (?, ?, 'submission', ?, ?, ?, ?, ?, 1, ?, ?, ?) RETURNING id",
                    (picture_sha, picture_rel, meta.user_id, meta.platform, meta.chat_id, meta.hair, meta.eye,
                     meta.tags, meta.model_version, meta.upload_id))
                image_id = await tx.fetchval(
                    "INSERT INTO images (sha256, path, hair, eye, source, source_name, status, picture_id, user_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (sha256) DO NOTHING RETURNING id",
                    (sha, rel, meta.hair, meta.eye, f"submit:{meta.platform}", source_name[:200], picture_id,
                     meta.user_id))
                if image_id is None:
                    raise _AlreadyThere
                await log_change(tx, image_id, picture_id, None, "pending", meta.hair, meta.eye, actor, "submitted")
        except _AlreadyThere:
            return None
        return image_id, picture_id

    async def faces(self) -> list[tuple[int, str, str]]:
        """Every face of the training set as (id, sha256, path), for the near-duplicate index."""
        return [tuple(r) for r in await self.db.fetchall("SELECT id, sha256, path FROM images ORDER BY id")]

    async def item(self, image_id: int) -> Item | None:
        """A training item from chat by id (imported faces are not items: admins curate only what chat sent)."""
        items = await self._items("i.id = ? AND i.picture_id IS NOT NULL", (image_id,), 1)
        return items[0] if items else None

    async def pending(self, limit: int) -> list[Item]:
        """Items waiting for a decision, oldest first."""
        return await self._items("i.status = 'pending'", (), limit)

    async def queue(self, status: str, page: int, per_page: int) -> tuple[list[Item], int]:
        """One page of the chat's training items in ``status`` (pending, curated or rejected), oldest first,
        and how many are in it."""
        total = await self.db.fetchval("SELECT COUNT(*) FROM images WHERE status = ? AND picture_id IS NOT NULL",
                                       (status,))
        items = await self._items("i.status = ? AND i.picture_id IS NOT NULL", (status,), per_page,
                                  (page - 1) * per_page)
        return items, total

    async def queue_sizes(self) -> dict[str, int]:
        """How many of the chat's training items are in each status."""
        return dict(await self.db.fetchall("SELECT status, COUNT(*) FROM images WHERE picture_id IS NOT NULL "
                                           "GROUP BY status"))

    async def _items(self, where: str, params: tuple, limit: int, offset: int = 0) -> list[Item]:
        rows = await self.db.fetchall(f"SELECT {ITEM_COLUMNS} FROM images i WHERE {where} ORDER BY i.id LIMIT ? "
                                      "OFFSET ?", (*params, limit, offset))
        return [Item(r[0], self.data_dir / r[1], *r[2:]) for r in rows]

    async def decide_item(self, image_id: int, status: str, actor: str, reason: str) -> str | None:
        """Decide a pending item ('curated' or 'rejected'), logged with who and why; returns its status before
        (None when there is no such item). An item decided already is left as it is."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone("UPDATE images SET status = ? WHERE id = ? AND picture_id IS NOT NULL AND "
                                    "status = 'pending' RETURNING picture_id, hair, eye", (status, image_id))
            if row is None:
                return await tx.fetchval("SELECT status FROM images WHERE id = ? AND picture_id IS NOT NULL",
                                         (image_id,))
            await log_change(tx, image_id, row["picture_id"], "pending", status, row["hair"], row["eye"], actor,
                             reason)
        return "pending"

    async def retag(self, image_id: int, actor: str, *, hair: int | None = None, eye: int | None = None) -> bool:
        """Change an item's hair and/or eye tag, logged with who did it; False when there is no such item."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone("UPDATE images SET hair = COALESCE(?, hair), eye = COALESCE(?, eye) WHERE id = ? "
                                    "AND picture_id IS NOT NULL RETURNING status, picture_id, hair, eye",
                                    (hair, eye, image_id))
            if row is None:
                return False
            await log_change(tx, image_id, row["picture_id"], row["status"], row["status"], row["hair"], row["eye"],
                             actor, "re-tagged")
        return True

    async def forget(self, user_id: int, user_key: str) -> Forgotten:
        """Delete what a user sent and their votes; every training item removed is logged as 'forgotten'.

        Their submissions (faces, the pictures showing them, every vote on those), their uploads (files, and
        the sketch pictures that show the drawing, with their votes and any face curated from them) and
        their own votes go; the log keeps the removed items' history with the user's name replaced. Files are
        deleted after the commit, and only when no remaining row shares them.
        """
        async with self.db.transaction() as tx:
            uploads = [r[0] for r in await tx.fetchall("SELECT id FROM uploads WHERE user_id = ?", (user_id,))]
            pictures = [r[0] for r in await tx.fetchall(
                "SELECT id FROM pictures WHERE (kind = 'submission' AND user_id = ?) OR upload_id IN "
                "(SELECT id FROM uploads WHERE user_id = ?)", (user_id, user_id))]
            items = await tx.fetchall(f"SELECT id, picture_id, status, hair, eye, path, user_id FROM images WHERE "
                                      f"user_id = ? OR picture_id IN ({marks(pictures)})", (user_id, *pictures))
            for r in items:
                await log_change(tx, r["id"], r["picture_id"], r["status"], "forgotten", r["hair"], r["eye"], "forget",
                                 "the submitter asked to be forgotten (/forget)")
            await tx.execute("UPDATE curation_log SET actor = 'a forgotten user' WHERE actor = ?", (user_key,))
            files = [("images", r["path"]) for r in items]
            files += [("pictures", p) for p in await _paths(tx, "pictures", pictures)]
            files += [("uploads", p) for p in await _paths(tx, "uploads", uploads)]
            await tx.execute(f"DELETE FROM images WHERE id IN ({marks(items)})", [r["id"] for r in items])
            on_them = await tx.execute(f"DELETE FROM votes WHERE picture_id IN ({marks(pictures)}) AND user_id != ?",
                                       (*pictures, user_id))
            votes = await tx.execute("DELETE FROM votes WHERE user_id = ?", (user_id,))
            await tx.execute(f"DELETE FROM pictures WHERE id IN ({marks(pictures)})", pictures)
            await tx.execute("DELETE FROM uploads WHERE user_id = ?", (user_id,))
            unused = [(table, path) for table, path in files if not await _uses(tx, table, path)]
        await asyncio.to_thread(remove_files, [self.data_dir / path for _, path in unused])
        return Forgotten(sum(r["user_id"] == user_id for r in items), len(items), len(uploads), len(pictures),
                         on_them, votes)


async def _paths(db: Session, table: str, ids: list[int]) -> list[str]:
    return [r[0] for r in await db.fetchall(f"SELECT path FROM {table} WHERE id IN ({marks(ids)})", ids)]


async def _uses(db: Session, table: str, path: str) -> bool:
    """Whether a row of ``table`` still points at the file (pictures and uploads share files by content)."""
    return await db.fetchone(f"SELECT 1 FROM {table} WHERE path = ? LIMIT 1", (path,)) is not None
