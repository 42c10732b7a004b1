"""The chat tables: created from empty, re-running is a no-op, a newer schema is refused."""

import asyncio
import sqlite3

import pytest

import migrations
from bot.store import Store


def test_upgrade_from_empty_creates_chat_tables_and_rerun_is_a_noop(tmp_path):
    conn = migrations.connect(tmp_path / "m.db")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"images", "users", "pictures", "votes"} <= tables
    assert conn.execute("PRAGMA user_version").fetchone()[0] == migrations.latest_version() >= 2
    conn.execute("INSERT INTO users (platform, external_id) VALUES ('telegram', '1')")
    assert migrations.upgrade(conn) == migrations.latest_version()
    assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 1
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO users (platform, external_id) VALUES ('telegram', '1')")
    conn.close()


def test_upgrade_from_the_dataset_only_schema_keeps_its_rows(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript((migrations._DIR / "001_dataset.sql").read_text())
    conn.execute("INSERT INTO images (sha256, path, source) VALUES ('ab', 'x.png', 'test')")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    conn = migrations.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == 0
    conn.close()


def test_store_refuses_a_newer_schema(tmp_path):
    db = tmp_path / "new.db"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {migrations.latest_version() + 1}")
    conn.close()
    with pytest.raises(migrations.SchemaTooNew, match="upgrade moebot"):
        asyncio.run(Store.open(db, tmp_path))


def test_store_opens_in_wal_mode(tmp_path):
    async def go():
        store = await Store.open(tmp_path / "w.db", tmp_path)
        try:
            return await store.db.fetchval("PRAGMA journal_mode")
        finally:
            await store.close()
    assert asyncio.run(go()) == "wal"
