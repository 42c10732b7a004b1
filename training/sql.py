"""What the model registry needs of a database: the bot's store interface (bot/store/database.py), as a protocol.

``training/`` must not import ``bot/``, so the registry and the lifecycle name the few methods they call, and
the bot hands them its store's database (SQLite or PostgreSQL): one access style for votes and models alike.
Statements use ``?`` placeholders and SQL both engines understand. ``on_sqlite`` runs the same code on a plain
sqlite3 connection, for the callers that hold one (tests, scripts on a data directory's file).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import datetime, timezone
from typing import Any, AsyncContextManager, AsyncIterator, Awaitable, Callable, Protocol, Sequence, TypeVar

T = TypeVar("T")


class Sql(Protocol):
    """Statements on the database itself, or inside one transaction."""

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any | None: ...

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...


class SqlDatabase(Sql, Protocol):
    def transaction(self) -> AsyncContextManager[Sql]:
        """One atomic write (no file work inside it)."""


def now_text() -> str:
    """The time stamp the migrations write (SQLite's ``strftime('%Y-%m-%dT%H:%M:%fZ')``, PostgreSQL's
    ``moebot_now()``), made here so one statement serves both engines."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class SqliteConnection:
    """A sqlite3 connection in autocommit mode (``migrations.connect``) as an ``SqlDatabase``; statements run
    at once, on the caller's thread."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._conn.execute(sql, params).fetchall()

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any | None:
        return self._conn.execute(sql, params).fetchone()

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self._conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Sql]:
        with self._conn:  # commits, or rolls back on any error
            self._conn.execute("BEGIN IMMEDIATE")
            yield self


def on_sqlite(conn: sqlite3.Connection, work: Callable[[SqlDatabase], Awaitable[T]]) -> T:
    """``work`` on a sqlite3 connection, to its end: the synchronous form of code written for ``SqlDatabase``."""
    return asyncio.run(work(SqliteConnection(conn)))
