"""One data-access interface for the bot's database, whichever engine holds it.

The store, the limits and the leases write their SQL once, with ``?`` placeholders and what both engines
understand (upserts with RETURNING, aggregate FILTER, no engine's own functions); a backend runs it on SQLite
(aiosqlite, the default: one file in the data directory, for one machine) or PostgreSQL (psycopg 3 with a
connection pool: several bot processes or machines on one database). ``[storage] url`` picks the backend.
"""

from __future__ import annotations

import errno
import sqlite3
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, AsyncContextManager, Sequence
from urllib.parse import urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
DISK_FULL_SQLSTATE = "53100"  # PostgreSQL's disk_full


class DatabaseUnavailable(RuntimeError):
    """The database server cannot be reached or refuses us; the message names it without a password."""


class Session(ABC):
    """Statements on one connection: the database itself (each statement on its own), or one transaction.
    Rows are read by position or by column name."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of a query (or of a write's RETURNING)."""

    @abstractmethod
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; how many rows it changed."""

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None when there is none."""
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def serialize(self, key: str) -> None:
        """Inside a transaction: wait until other transactions that serialize on ``key`` have ended, and keep
        them waiting until this one ends. SQLite's write transactions run one at a time already."""


class Database(Session):
    """The database: statements outside a transaction commit on their own."""
    dialect: str  # 'sqlite' or 'postgres'

    @abstractmethod
    def transaction(self) -> AsyncContextManager[Session]:
        """One atomic write: everything run on the session it yields is committed together, or (on any error)
        none of it. Never do file work inside one: it holds the write lock (SQLite) or row locks meanwhile."""

    @abstractmethod
    async def close(self) -> None:
        ...


def is_postgres(target: str | Path) -> bool:
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


async def open_database(target: str | Path) -> Database:
    """Upgrade the schema (SchemaTooNew when the database is newer than this code) and connect: ``target`` is a
    ``postgresql://`` URL, or else the path of a SQLite file."""
    if is_postgres(target):
        from bot.store.postgres import PostgresDatabase  # psycopg is only needed here
        return await PostgresDatabase.open(str(target))
    from bot.store.sqlite import SqliteDatabase
    return await SqliteDatabase.open(Path(target))


def shown_target(target: str | Path) -> str:
    """``target`` as logs and messages may show it: a URL without its password."""
    if not is_postgres(target):
        return str(target)
    parts = urlsplit(str(target))
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}{f':{parts.port}' if parts.port else ''}"))


def storage_full(error: BaseException) -> bool:
    """Whether ``error`` says the disk (or the user's quota or file-size limit) has no room for a write."""
    if isinstance(error, sqlite3.Error):
        return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    if getattr(error, "sqlstate", None) == DISK_FULL_SQLSTATE:
        return True
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
