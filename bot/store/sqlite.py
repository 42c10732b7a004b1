"""The SQLite backend (the default): one aiosqlite connection to a file in the data directory.

WAL mode, and synchronous=FULL so a write is on disk before the bot answers. Statements take turns on the one
connection, so a transaction never sees another's statements; other processes on the same file wait for the
file's write lock (busy_timeout), which is why no transaction may hold it while files are written.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

import aiosqlite

import migrations
from bot.store.database import Database, Session

PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000")


class _Transaction(Session):
    """The statements of one transaction, on the connection the database lent it."""

    def __init__(self, conn: aiosqlite.Connection):
        self._conn = conn

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self._conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._conn.execute(sql, params) as cur:
            return cur.rowcount


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection):
        self._session = _Transaction(conn)
        self._conn = conn
        self._turn = asyncio.Lock()  # one connection: a transaction's statements must not interleave with others

    @classmethod
    async def open(cls, path: Path) -> "SqliteDatabase":
        await asyncio.to_thread(lambda: migrations.connect(path).close())
        conn = await aiosqlite.connect(path, isolation_level=None)
        for pragma in PRAGMAS:
            await conn.execute(f"PRAGMA {pragma}")
        conn.row_factory = aiosqlite.Row
        return cls(conn)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self._turn:
            return await self._session.fetchall(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._turn:
            return await self._session.execute(sql, params)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        async with self._turn:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._session
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def close(self) -> None:
        await self._conn.close()
