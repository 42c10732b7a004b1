"""What the model registry needs of a database: the bot's store interface (bot/store/database.py), as a protocol.

``training/`` must not import ``bot/``, so the registry and the lifecycle name the few methods they call, and
the bot hands them its store's database (SQLite or PostgreSQL): one access style for votes and models alike.
Statements use ``?`` placeholders and SQL both engines understand.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, AsyncContextManager, Protocol, Sequence


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
