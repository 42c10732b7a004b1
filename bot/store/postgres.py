"""The PostgreSQL backend: a psycopg 3 connection pool, for several bot processes or machines on one database.

Statements are written for both engines with ``?`` placeholders, turned into psycopg's ``%s`` here. Connections
are in autocommit mode, so a statement outside a transaction commits on its own; a transaction runs at READ
COMMITTED on one pooled connection, and whatever must not interleave with another process's work says so with
``serialize`` (an advisory lock held until it ends) or is written as one statement.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, AsyncIterator, Sequence

import psycopg
from psycopg_pool import AsyncConnectionPool

from bot.store.database import Database, DatabaseUnavailable, Session, shown_target
from migrations import postgres as postgres_migrations

POOL_SIZE = 10  # connections per process at most: the transactions that may run at once
CONNECT_TIMEOUT_S = 10


class Row(tuple):
    """A result row read by position or by column name, like sqlite3.Row."""
    _names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> "Row":
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key):  # type: ignore[override]
        return super().__getitem__(self._names[key] if isinstance(key, str) else key)


def _rows(cursor: psycopg.AsyncCursor) -> Any:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, names)


@functools.lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """``?`` -> ``%s`` (a literal % doubled): the shared SQL in psycopg's style."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Connection(Session):
    def __init__(self, conn: psycopg.AsyncConnection):
        self._conn = conn

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        cur = await self._conn.execute(_placeholders(sql), params)
        return await cur.fetchall()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = await self._conn.execute(_placeholders(sql), params)
        return cur.rowcount

    async def serialize(self, key: str) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))


class PostgresDatabase(Database):
    dialect = "postgres"

    def __init__(self, pool: AsyncConnectionPool):
        self._pool = pool

    @classmethod
    async def open(cls, url: str) -> "PostgresDatabase":
        try:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.OperationalError as e:
            raise DatabaseUnavailable(f"cannot connect to the database at {shown_target(url)}: "
                                      f"{' '.join(str(e).split())}") from None
        async with conn:
            await postgres_migrations.upgrade(conn)
        pool = AsyncConnectionPool(url, min_size=1, max_size=POOL_SIZE, open=False,
                                   kwargs={"autocommit": True, "row_factory": _rows})
        await pool.open(wait=True, timeout=30)
        return cls(pool)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self._pool.connection() as conn:
            return await _Connection(conn).fetchall(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._pool.connection() as conn:
            return await _Connection(conn).execute(sql, params)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        async with self._pool.connection() as conn, conn.transaction():
            yield _Connection(conn)

    async def close(self) -> None:
        await self._pool.close()
