"""The bot's memory: users, pictures and votes in SQLite, picture files on disk by content hash.

Every write is committed before the bot answers (WAL, synchronous=FULL) and a
file is fsynced before its row points at it, so a crash or restart loses
nothing a user has seen. A full disk fails the write it hit and nothing else
(``storage_full`` tells such errors apart, for a plain answer to the user),
and leaves no temporary file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator

import aiosqlite
from PIL import Image

import migrations
from bot.curation import CurationRules, decide
from generator.durable import remove_stale, write_durably
from generator.images import grid_cell
from training.importer import pixel_hash, store_image


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


FILE_FOLDERS = ("pictures", "uploads", "faces")  # under data_dir: where the store writes files
VOTE_FILTERS = {"up": "EXISTS (SELECT 1 FROM votes WHERE picture_id = p.id AND value = 1)",
                "down": "EXISTS (SELECT 1 FROM votes WHERE picture_id = p.id AND value = -1)",
                "none": "NOT EXISTS (SELECT 1 FROM votes WHERE picture_id = p.id)"}


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


# Generated pictures of one face that votes can make training data: kind -> where the face is in the
# picture, as (cell, columns) of the grid it was tiled in (a sketch shows the drawing, then the face); None: all
FACE_CELL: dict[str, tuple[int, int] | None] = {"face": None, "sketch": (1, 2)}
ITEM_COLUMNS = ("i.id, i.path, i.hair, i.eye, i.status, i.source, i.picture_id, i.user_id, "
                "(SELECT COUNT(*) FROM votes WHERE picture_id = i.picture_id AND value = 1), "
                "(SELECT COUNT(*) FROM votes WHERE picture_id = i.picture_id AND value = -1)")


@dataclass(frozen=True)
class Totals:
    pictures: int
    votes: int
    voters: int
    users: int
    dataset: int  # training faces not rejected


class Store:
    def __init__(self, db: aiosqlite.Connection, data_dir: Path, database: Path):
        self._db = db
        self.data_dir = data_dir
        self.database = database  # the file, for what opens its own connections (the model lifecycle)
        self._write = asyncio.Lock()  # one connection: multi-statement writes must not interleave

    @classmethod
    async def open(cls, db_path: Path, data_dir: Path) -> "Store":
        """Upgrade the schema (SchemaTooNew stops the bot), then open the async connection; temporary files a
        crash left among the stored files are removed first (one can hold the last free bytes of a disk)."""
        for folder in FILE_FOLDERS:
            await asyncio.to_thread(remove_stale, Path(data_dir) / folder)
        await asyncio.to_thread(lambda: migrations.connect(db_path).close())
        db = await aiosqlite.connect(db_path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000"):
            await db.execute(f"PRAGMA {pragma}")
        db.row_factory = aiosqlite.Row
        return cls(db, data_dir, Path(db_path))

    async def close(self) -> None:
        await self._db.close()

    async def user(self, platform: str, external_id: str, name: str) -> int:
        """The internal id of a platform user, created on first sight; the name is kept current. A known user
        under the same name costs no write (so reading commands work on a full disk)."""
        async with self._db.execute("SELECT id, name FROM users WHERE platform = ? AND external_id = ?",
                                    (platform, external_id)) as cur:
            known = await cur.fetchone()
        if known is not None and known["name"] == name[:100]:
            return known["id"]
        async with self._write:
            cur = await self._db.execute(
                "INSERT INTO users (platform, external_id, name) VALUES (?, ?, ?) "
                "ON CONFLICT (platform, external_id) DO UPDATE SET name = excluded.name RETURNING id",
                (platform, external_id, name[:100]))
            row = await cur.fetchone()
            await cur.close()
        return row[0]

    async def add_picture(self, data: bytes, suffix: str, meta: NewPicture) -> int:
        """Write the file (once per content) and its row; returns the picture id."""
        sha, rel = await self._put("pictures", data, suffix)
        async with self._write:
            cur = await self._db.execute(
                "INSERT INTO pictures (sha256, path, kind, user_id, platform, chat_id, hair, eye, seed, count, "
                "tags, model_version, upload_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sha, rel, meta.kind, meta.user_id, meta.platform, meta.chat_id, meta.hair, meta.eye,
                 meta.seed, meta.count, meta.tags, meta.model_version, meta.upload_id))
            await cur.close()
        return cur.lastrowid

    async def add_upload(self, data: bytes, suffix: str, meta: NewUpload) -> int:
        """Keep an uploaded drawing's original bytes (once per content) and who sent it when; returns its id."""
        sha, rel = await self._put("uploads", data, suffix)
        async with self._write:
            cur = await self._db.execute(
                "INSERT INTO uploads (sha256, path, user_id, platform, chat_id, filename) VALUES (?, ?, ?, ?, ?, ?)",
                (sha, rel, meta.user_id, meta.platform, meta.chat_id, meta.filename[:200]))
            await cur.close()
        return cur.lastrowid

    async def _put(self, folder: str, data: bytes, suffix: str) -> tuple[str, str]:
        """Write ``data`` durably under ``folder/<2 hex>/<sha256><suffix>``; (sha256, path relative to data_dir)."""
        sha = hashlib.sha256(data).hexdigest()
        rel = Path(folder) / sha[:2] / f"{sha}{suffix}"
        await asyncio.to_thread(_write_durably, self.data_dir / rel, data)
        return sha, rel.as_posix()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One atomic write: all of it is committed, or (on any error) none of it."""
        async with self._write:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def vote(self, picture_id: int, user_id: int, value: int,
                   rules: CurationRules | None = None) -> Counts | None:
        """One vote per user per picture: the same vote again withdraws it, the other one replaces it.

        With ``rules``, the votes are judged in the same transaction: an undecided training item of the
        picture becomes curated or rejected (a generated face enters the training set then), so a vote is
        never counted without its consequence. None when the picture does not exist.
        """
        async with self._transaction() as db:
            if not await self._exists(picture_id):
                return None
            cur = await db.execute(
                "DELETE FROM votes WHERE picture_id = ? AND user_id = ? AND value = ?", (picture_id, user_id, value))
            withdrawn = cur.rowcount > 0
            await cur.close()
            if not withdrawn:
                await db.execute(
                    "INSERT INTO votes (picture_id, user_id, value) VALUES (?, ?, ?) ON CONFLICT (picture_id, "
                    "user_id) DO UPDATE SET value = excluded.value, voted_at = excluded.voted_at",
                    (picture_id, user_id, value))
            counts = await self.counts(picture_id, user_id)
            if rules is not None:
                counts = dataclasses.replace(counts, decided=await self._judge(picture_id, counts, rules))
        return counts

    async def _judge(self, picture_id: int, counts: Counts, rules: CurationRules) -> str | None:
        """Apply the votes to the picture's training item, inside the vote's transaction; the new status or None.

        Only undecided items change: a pending submission, or a generated face not yet in the training set
        (which enters it curated or rejected, with the tags it was drawn for). A decision by votes or by an
        admin is not undone by later votes.
        """
        async with self._db.execute("SELECT id, status, hair, eye FROM images WHERE picture_id = ?",
                                    (picture_id,)) as cur:
            item = await cur.fetchone()
        if item is not None and item["status"] != "pending":
            return None
        async with self._db.execute("SELECT kind, count, path, hair, eye FROM pictures WHERE id = ?",
                                    (picture_id,)) as cur:
            picture = await cur.fetchone()
        if item is None and not (picture["kind"] in FACE_CELL and picture["count"] == 1
                                 and picture["hair"] is not None and picture["eye"] is not None):
            return None
        decision = decide(counts.up, counts.down, rules)
        if decision is None:
            return None
        if item is not None:
            await self._db.execute("UPDATE images SET status = ? WHERE id = ?", (decision.status, item["id"]))
            await self._log(item["id"], picture_id, "pending", decision.status, item["hair"], item["eye"], "votes",
                            decision.reason)
            return decision.status
        sha, rel = await asyncio.to_thread(self._store_face, picture["path"], FACE_CELL[picture["kind"]])
        cur = await self._db.execute(
            "INSERT INTO images (sha256, path, hair, eye, source, source_name, status, picture_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
            (sha, rel, picture["hair"], picture["eye"], f"chat:{picture['kind']}", f"picture {picture_id}",
             decision.status, picture_id))
        if cur.rowcount == 0:  # the very same face is in the training set already
            return None
        await self._log(cur.lastrowid, picture_id, None, decision.status, picture["hair"], picture["eye"], "votes",
                        decision.reason)
        return decision.status

    def _store_face(self, picture_path: str, cell: tuple[int, int] | None) -> tuple[str, str]:
        """The 64x64 face of a stored chat picture, kept under faces/ like imported ones; (sha256, path)."""
        with Image.open(self.data_dir / picture_path) as img:
            face = (grid_cell(img, *cell) if cell else img).convert("RGB")
        face = face.resize((64, 64), Image.Resampling.LANCZOS)  # drawn at 64, shown larger: back to 64
        sha = pixel_hash(face)
        return sha, store_image(self.data_dir, face, sha)

    async def _log(self, image_id: int, picture_id: int | None, old: str | None, new: str, hair: int | None,
                   eye: int | None, actor: str, reason: str) -> None:
        await self._db.execute(
            "INSERT INTO curation_log (image_id, picture_id, old_status, new_status, hair, eye, actor, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (image_id, picture_id, old, new, hair, eye, actor, reason[:500]))

    async def add_submission(self, face: Image.Image, shown: bytes, meta: NewPicture, actor: str,
                             source_name: str) -> tuple[int, int] | None:
        """A face someone sent: kept under faces/ by pixel hash like imported ones, shown in chat as a
        'submission' picture (``shown``, which carries its votes), and pending as a training item with the
        picture's tags; (item id, picture id), or None when the very same face is in the training set already."""
        sha = pixel_hash(face)
        async with self._transaction() as db:
            async with db.execute("SELECT 1 FROM images WHERE sha256 = ?", (sha,)) as cur:
                if await cur.fetchone() is not None:
                    return None
            rel = await asyncio.to_thread(store_image, self.data_dir, face, sha)
            picture_sha, picture_rel = await self._put("pictures", shown, ".png")
            cur = await db.execute(
                "INSERT INTO pictures (sha256, path, kind, user_id, platform, chat_id, hair, eye, count, tags, "
                "model_version, upload_id) VALUES (?, ?, 'submission', ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                (picture_sha, picture_rel, meta.user_id, meta.platform, meta.chat_id, meta.hair, meta.eye, meta.tags,
                 meta.model_version, meta.upload_id))
            picture_id = cur.lastrowid
            cur = await db.execute(
                "INSERT INTO images (sha256, path, hair, eye, source, source_name, status, picture_id, user_id) "
                "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                (sha, rel, meta.hair, meta.eye, f"submit:{meta.platform}", source_name[:200], picture_id,
                 meta.user_id))
            await self._log(cur.lastrowid, picture_id, None, "pending", meta.hair, meta.eye, actor, "submitted")
        return cur.lastrowid, picture_id

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
        async with self._db.execute("SELECT COUNT(*) FROM images WHERE status = ? AND picture_id IS NOT NULL",
                                    (status,)) as cur:
            (total,) = await cur.fetchone()
        items = await self._items("i.status = ? AND i.picture_id IS NOT NULL", (status,), per_page,
                                  (page - 1) * per_page)
        return items, total

    async def queue_sizes(self) -> dict[str, int]:
        """How many of the chat's training items are in each status."""
        async with self._db.execute("SELECT status, COUNT(*) FROM images WHERE picture_id IS NOT NULL "
                                    "GROUP BY status") as cur:
            return dict(await cur.fetchall())

    async def _items(self, where: str, params: tuple, limit: int, offset: int = 0) -> list[Item]:
        async with self._db.execute(f"SELECT {ITEM_COLUMNS} FROM images i WHERE {where} ORDER BY i.id LIMIT ? "
                                    "OFFSET ?", (*params, limit, offset)) as cur:
            rows = await cur.fetchall()
        return [Item(r[0], self.data_dir / r[1], *r[2:]) for r in rows]

    async def decide_item(self, image_id: int, status: str, actor: str, reason: str) -> str | None:
        """Decide a pending item ('curated' or 'rejected'), logged with who and why; returns its status before
        (None when there is no such item). An item decided already is left as it is."""
        async with self._transaction() as db:
            async with db.execute("SELECT status, picture_id, hair, eye FROM images WHERE id = ? AND picture_id "
                                  "IS NOT NULL", (image_id,)) as cur:
                row = await cur.fetchone()
            if row is None or row["status"] != "pending":
                return row and row["status"]
            await db.execute("UPDATE images SET status = ? WHERE id = ?", (status, image_id))
            await self._log(image_id, row["picture_id"], row["status"], status, row["hair"], row["eye"], actor, reason)
        return row["status"]

    async def retag(self, image_id: int, actor: str, *, hair: int | None = None, eye: int | None = None) -> bool:
        """Change an item's hair and/or eye tag, logged with who did it; False when there is no such item."""
        async with self._transaction() as db:
            async with db.execute("SELECT status, picture_id, hair, eye FROM images WHERE id = ? AND picture_id "
                                  "IS NOT NULL", (image_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                return False
            new_hair = row["hair"] if hair is None else hair
            new_eye = row["eye"] if eye is None else eye
            await db.execute("UPDATE images SET hair = ?, eye = ? WHERE id = ?", (new_hair, new_eye, image_id))
            await self._log(image_id, row["picture_id"], row["status"], row["status"], new_hair, new_eye, actor,
                            "re-tagged")
        return True

    async def forget(self, user_id: int, user_key: str) -> Forgotten:
        """Delete what a user sent and their votes; every training item removed is logged as 'forgotten'.

        Their submissions (faces, the pictures showing them, every vote on those), their uploads (files, and
        the sketch pictures that show the drawing, with their votes and any face curated from them) and
        their own votes go; the log keeps the removed items' history with the user's name replaced. Files are
        deleted after the commit, and only when no remaining row shares them.
        """
        async with self._transaction() as db:
            async def ids(sql: str, *params) -> list[int]:
                async with db.execute(sql, params) as cur:
                    return [r[0] for r in await cur.fetchall()]
            uploads = await ids("SELECT id FROM uploads WHERE user_id = ?", user_id)
            pictures = await ids(
                "SELECT id FROM pictures WHERE (kind = 'submission' AND user_id = ?) OR upload_id IN "
                "(SELECT id FROM uploads WHERE user_id = ?)", user_id, user_id)
            marks = ",".join("?" * len(pictures))
            async with db.execute(f"SELECT id, picture_id, status, hair, eye, path, user_id FROM images WHERE "
                                  f"user_id = ? OR picture_id IN ({marks})", (user_id, *pictures)) as cur:
                items = await cur.fetchall()
            for r in items:
                await self._log(r["id"], r["picture_id"], r["status"], "forgotten", r["hair"], r["eye"], "forget",
                                "the submitter asked to be forgotten (/forget)")
            await db.execute("UPDATE curation_log SET actor = 'a forgotten user' WHERE actor = ?", (user_key,))
            files = [("images", r["path"]) for r in items]
            files += [("pictures", p) for p in await self._paths("pictures", pictures)]
            files += [("uploads", p) for p in await self._paths("uploads", uploads)]
            await db.execute(f"DELETE FROM images WHERE id IN ({','.join('?' * len(items))})", [r["id"] for r in items])
            on_them = await self._delete(f"DELETE FROM votes WHERE picture_id IN ({marks}) AND user_id != ?",
                                         (*pictures, user_id))
            votes = await self._delete("DELETE FROM votes WHERE user_id = ?", (user_id,))
            await db.execute(f"DELETE FROM pictures WHERE id IN ({marks})", pictures)
            await db.execute("DELETE FROM uploads WHERE user_id = ?", (user_id,))
            unused = [(table, path) for table, path in files if not await self._uses(table, path)]
        await asyncio.to_thread(_remove_files, [self.data_dir / path for _, path in unused])
        return Forgotten(sum(r["user_id"] == user_id for r in items), len(items), len(uploads), len(pictures),
                         on_them, votes)

    async def _paths(self, table: str, ids: list[int]) -> list[str]:
        async with self._db.execute(f"SELECT path FROM {table} WHERE id IN ({','.join('?' * len(ids))})", ids) as cur:
            return [r[0] for r in await cur.fetchall()]

    async def _delete(self, sql: str, params: tuple) -> int:
        cur = await self._db.execute(sql, params)
        await cur.close()
        return cur.rowcount

    async def _uses(self, table: str, path: str) -> bool:
        """Whether a row of ``table`` still points at the file (pictures and uploads share files by content)."""
        async with self._db.execute(f"SELECT 1 FROM {table} WHERE path = ? LIMIT 1", (path,)) as cur:
            return await cur.fetchone() is not None

    async def counts(self, picture_id: int, user_id: int | None = None) -> Counts:
        async with self._db.execute(
                "SELECT COALESCE(SUM(value = 1), 0), COALESCE(SUM(value = -1), 0), "
                "COALESCE(SUM(CASE WHEN user_id = ? THEN value END), 0) FROM votes WHERE picture_id = ?",
                (user_id, picture_id)) as cur:
            up, down, mine = await cur.fetchone()
        return Counts(up, down, mine)

    async def top(self, since: datetime | None, limit: int) -> list[Picture]:
        """Pictures made since ``since`` (all when None) with at least one 👍, best score first."""
        stamp = since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") if since else ""
        async with self._db.execute(
                "SELECT p.id, p.path, p.kind, p.tags, p.seed, p.count, SUM(v.value = 1) AS up, "
                "SUM(v.value = -1) AS down FROM pictures p JOIN votes v ON v.picture_id = p.id "
                "WHERE p.created_at >= ? GROUP BY p.id HAVING up > 0 "
                "ORDER BY up - down DESC, up DESC, p.id LIMIT ?", (stamp, limit)) as cur:
            rows = await cur.fetchall()
        return [Picture(r["id"], self.data_dir / r["path"], r["kind"], r["tags"], r["seed"], r["count"],
                        r["up"], r["down"]) for r in rows]

    async def gallery(self, where: GalleryFilter, page: int, per_page: int) -> tuple[list[GalleryItem], int]:
        """One page of pictures, newest first, with their vote counts; and how many match in all.

        Counts are looked up per shown row (votes' primary key starts with picture_id), so a page
        costs the same at the start and the end of a large table.
        """
        clauses, params = [], []
        for word in where.tags.lower().split()[:8]:
            clauses.append("lower(p.tags) LIKE ? ESCAPE '\\'")
            params.append("%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        for column in ("platform", "kind"):
            if getattr(where, column):
                clauses.append(f"p.{column} = ?")
                params.append(getattr(where, column))
        if where.votes:
            clauses.append(VOTE_FILTERS[where.votes])
        if where.state == "none":
            clauses.append("NOT EXISTS (SELECT 1 FROM images WHERE picture_id = p.id)")
        elif where.state:
            clauses.append("EXISTS (SELECT 1 FROM images WHERE picture_id = p.id AND status = ?)")
            params.append(where.state)
        sql_where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        async with self._db.execute(f"SELECT COUNT(*) FROM pictures p {sql_where}", params) as cur:
            (total,) = await cur.fetchone()
        async with self._db.execute(
                "SELECT p.id, p.kind, p.tags, p.platform, p.model_version, p.created_at, "
                "(SELECT COUNT(*) FROM votes WHERE picture_id = p.id AND value = 1), "
                "(SELECT COUNT(*) FROM votes WHERE picture_id = p.id AND value = -1), "
                "(SELECT status FROM images WHERE picture_id = p.id) "
                f"FROM pictures p {sql_where} ORDER BY p.id DESC LIMIT ? OFFSET ?",
                (*params, per_page, (page - 1) * per_page)) as cur:
            rows = await cur.fetchall()
        return [GalleryItem(*r) for r in rows], total

    async def platforms_and_kinds(self) -> tuple[list[str], list[str]]:
        """The values the gallery's platform and kind filters can take."""
        async with self._db.execute("SELECT DISTINCT platform FROM pictures ORDER BY 1") as cur:
            platforms = [r[0] for r in await cur.fetchall()]
        async with self._db.execute("SELECT DISTINCT kind FROM pictures ORDER BY 1") as cur:
            kinds = [r[0] for r in await cur.fetchall()]
        return platforms, kinds

    async def picture_file(self, picture_id: int) -> Path | None:
        """The stored file of a picture, looked up by id (callers never pass paths)."""
        async with self._db.execute("SELECT path FROM pictures WHERE id = ?", (picture_id,)) as cur:
            row = await cur.fetchone()
        return self.data_dir / row[0] if row else None

    async def totals(self) -> Totals:
        async with self._db.execute(
                "SELECT (SELECT COUNT(*) FROM pictures), (SELECT COUNT(*) FROM votes), "
                "(SELECT COUNT(DISTINCT user_id) FROM votes), (SELECT COUNT(*) FROM users), "
                "(SELECT COUNT(*) FROM images WHERE status != 'rejected')") as cur:
            row = await cur.fetchone()
        return Totals(*row)

    async def _exists(self, picture_id: int) -> bool:
        async with self._db.execute("SELECT 1 FROM pictures WHERE id = ?", (picture_id,)) as cur:
            return await cur.fetchone() is not None


def _remove_files(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _write_durably(path: Path, data: bytes) -> None:
    """Once per content: atomic and fsynced, a crash leaves either no file or the whole file, never a torn one."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_durably(path, data)


def storage_full(error: BaseException) -> bool:
    """Whether ``error`` says the disk (or the user's quota or file-size limit) has no room for a write."""
    if isinstance(error, sqlite3.Error):
        return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
