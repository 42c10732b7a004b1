"""The PostgreSQL dialect of the migrations: ``NNN_name.sql`` here does what the SQLite file of the same number
does (``migrations/``), so a database of either engine at version N has the same tables and columns.

Each file runs once, in a transaction that also records its number in ``schema_version``; the whole upgrade
holds an advisory lock, so bot processes that start together upgrade once, one after the other.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from migrations import available, pending

FOLDER = Path(__file__).parent  # the PostgreSQL files; SQLite's are in the folder above
_LOCK = 0x6D6F65626F74  # "moebot": the advisory lock key held while upgrading


async def upgrade(conn: psycopg.AsyncConnection) -> int:
    """Apply every migration newer than the database's recorded version (``conn`` in autocommit mode); return the
    resulting version. SchemaTooNew when the database is ahead of this code."""
    await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK,))
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = await (await conn.execute("SELECT MAX(version) FROM schema_version")).fetchone()
        steps = available(FOLDER)
        for number, path in pending(row[0] or 0, steps):
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK,))
    return len(steps)
