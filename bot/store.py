"""The bot's memory: users, pictures and votes in SQLite, picture files on disk by content hash.

Every write is committed before the bot answers (WAL, synchronous=FULL) and a
file is fsynced before its row points at it, so a crash or restart loses
nothing a user has seen.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import aiosqlite

import migrations


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


@dataclass(frozen=True)
class GalleryFilter:
    """What the dashboard's gallery shows: every field narrows it; empty means any."""
    tags: str = ""  # words that must all appear in the tags, e.g. "pink blue"
    votes: str = ""  # "up" (has a 👍), "down" (has a 👎), "none" (no votes yet)
    platform: str = ""
    kind: str = ""


VOTE_FILTERS = {"up": "EXISTS (SELECT 1 FROM votes WHERE picture_id = p.id AND value = 1)",
                "down": "EXISTS (SELECT 1 FROM votes WHERE picture_id = p.id AND value = -1)",
                "none": "NOT EXISTS (SELECT 1 FROM votes WHERE picture_id = p.id)"}


@dataclass(frozen=True)
class Counts:
    up: int
    down: int
    mine: int  # this user's vote now: 1, -1 or 0 (none)


@dataclass(frozen=True)
class Totals:
    pictures: int
    votes: int
    voters: int
    users: int
    dataset: int  # training faces not rejected


class Store:
    def __init__(self, db: aiosqlite.Connection, data_dir: Path):
        self._db = db
        self.data_dir = data_dir
        self._write = asyncio.Lock()  # one connection: multi-statement writes must not interleave

    @classmethod
    async def open(cls, db_path: Path, data_dir: Path) -> "Store":
        """Upgrade the schema (SchemaTooNew stops the bot), then open the async connection."""
        await asyncio.to_thread(lambda: migrations.connect(db_path).close())
        db = await aiosqlite.connect(db_path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000"):
            await db.execute(f"PRAGMA {pragma}")
        db.row_factory = aiosqlite.Row
        return cls(db, data_dir)

    async def close(self) -> None:
        await self._db.close()

    async def user(self, platform: str, external_id: str, name: str) -> int:
        """The internal id of a platform user, created on first sight; the name is kept current."""
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

    async def vote(self, picture_id: int, user_id: int, value: int) -> Counts | None:
        """One vote per user per picture: the same vote again withdraws it, the other one replaces it.

        None when the picture does not exist.
        """
        async with self._write:
            if not await self._exists(picture_id):
                return None
            cur = await self._db.execute(
                "DELETE FROM votes WHERE picture_id = ? AND user_id = ? AND value = ?", (picture_id, user_id, value))
            withdrawn = cur.rowcount > 0
            await cur.close()
            if not withdrawn:
                await self._db.execute(
                    "INSERT INTO votes (picture_id, user_id, value) VALUES (?, ?, ?) ON CONFLICT (picture_id, "
                    "user_id) DO UPDATE SET value = excluded.value, voted_at = excluded.voted_at",
                    (picture_id, user_id, value))
        return await self.counts(picture_id, user_id)

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
        sql_where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        async with self._db.execute(f"SELECT COUNT(*) FROM pictures p {sql_where}", params) as cur:
            (total,) = await cur.fetchone()
        async with self._db.execute(
                "SELECT p.id, p.kind, p.tags, p.platform, p.model_version, p.created_at, "
                "(SELECT COUNT(*) FROM votes WHERE picture_id = p.id AND value = 1), "
                "(SELECT COUNT(*) FROM votes WHERE picture_id = p.id AND value = -1) "
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


def _write_durably(path: Path, data: bytes) -> None:
    """Atomic and fsynced: a crash leaves either no file or the whole file, never a torn one."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")  # unique: two writers may race
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
