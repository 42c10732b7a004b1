"""Numbered SQL files that create and upgrade the one database: SQLite here, PostgreSQL in ``postgres/``.

Both folders hold the same numbers (a migration is written once per dialect; tests check they match).
On SQLite, ``NNN_name.sql`` runs once, in a transaction that also bumps ``PRAGMA user_version``
to NNN, so a rerun is a no-op and a crash mid-upgrade leaves the old schema.

Foreign keys are off while a migration runs and checked before it commits: that is
SQLite's way to rebuild a table that others reference (to change a CHECK, say), since
dropping the old table would otherwise fail or orphan the rows pointing at it.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

_DIR = Path(__file__).parent
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class SchemaTooNew(RuntimeError):
    """The database was written by a newer moebot than this one."""


def available(folder: Path | None = None) -> list[tuple[int, Path]]:
    """The migrations in ``folder`` (default: SQLite's), by number."""
    found = sorted((int(m.group(1)), p) for p in (folder or _DIR).iterdir() if (m := _NAME.match(p.name)))
    numbers = [n for n, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migrations must be numbered 001, 002, ... without gaps; found {numbers}")
    return found


def latest_version() -> int:
    return len(available())


def connect(db_path: str | Path) -> sqlite3.Connection:
    """Open the database in WAL mode, upgraded to the newest schema this code knows."""
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    upgrade(conn)
    return conn


def upgrade(conn: sqlite3.Connection) -> int:
    """Apply every migration newer than the database's ``user_version``; return the resulting version."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    steps = pending(current, available())
    enforced = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction, so set before BEGIN
    try:
        for number, path in steps:
            script = path.read_text()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(script):
                    conn.execute(statement)
                if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                    raise sqlite3.IntegrityError(f"{path.name} leaves rows that refer to missing rows")
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
    finally:
        conn.execute(f"PRAGMA foreign_keys = {'ON' if enforced else 'OFF'}")
    return latest_version()


def pending(current: int, steps: list[tuple[int, Path]]) -> list[tuple[int, Path]]:
    """The steps a database at version ``current`` still needs; SchemaTooNew when it is ahead of them."""
    if current > len(steps):
        raise SchemaTooNew(
            f"the database schema is version {current}, but this moebot knows only up to {len(steps)}: "
            "upgrade moebot, or point it at another database"
        )
    return steps[current:]


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit on its own, outside our transaction)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip() and not buf.strip().startswith("--"):
        out.append(buf.strip())
    return [s for s in out if s]
