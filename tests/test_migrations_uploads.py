"""Migration 003: uploads, and pictures rebuilt to allow sketches, without losing a picture or a vote."""

import asyncio
import sqlite3

import pytest

import migrations
from bot.store import NewPicture, NewUpload, Store


def _schema_v2(db):
    conn = sqlite3.connect(db, isolation_level=None)
    for name in ("001_dataset.sql", "002_chat.sql"):
        conn.executescript((migrations._DIR / name).read_text())
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO users (platform, external_id) VALUES ('telegram', '1')")
    conn.execute("INSERT INTO pictures (sha256, path, kind, user_id, platform, chat_id, tags, model_version) "
                 "VALUES ('ab', 'pictures/ab.png', 'face', 1, 'telegram', '1', 'pink hair', 'v1')")
    conn.execute("INSERT INTO votes (picture_id, user_id, value) VALUES (1, 1, 1)")
    conn.close()


def test_upgrade_keeps_pictures_and_votes_and_allows_sketches(tmp_path):
    db = tmp_path / "old.db"
    _schema_v2(db)
    conn = migrations.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] >= 3
    assert conn.execute("SELECT id, kind, tags, upload_id FROM pictures").fetchall() == [(1, "face", "pink hair", None)]
    assert conn.execute("SELECT picture_id, value FROM votes").fetchall() == [(1, 1)]
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # enforced again after the rebuild
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO votes (picture_id, user_id, value) VALUES (99, 1, 1)")  # votes still point here
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO pictures (sha256, path, kind, user_id, platform, chat_id, tags, model_version) "
                     "VALUES ('cd', 'x.png', 'collage', 1, 'telegram', '1', '', 'v1')")
    assert "pictures_created" in {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    conn.close()


def test_a_migration_that_orphans_rows_is_rolled_back(tmp_path, monkeypatch):
    db = tmp_path / "m.db"
    migrations.connect(db).close()
    bad = tmp_path / "migrations"
    bad.mkdir()
    for number, path in migrations.available():
        (bad / path.name).write_text(path.read_text())
    (bad / f"{migrations.latest_version() + 1:03d}_orphans.sql").write_text(
        "INSERT INTO votes (picture_id, user_id, value) VALUES (42, 42, 1);")
    before = migrations.latest_version()
    monkeypatch.setattr(migrations, "_DIR", bad)
    with pytest.raises(sqlite3.IntegrityError, match="orphans.sql"):
        migrations.connect(db)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == before
    assert conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == 0


def test_store_keeps_uploads_once_per_content_and_links_their_pictures(tmp_path):
    async def go():
        store = await Store.open(tmp_path / "s.db", tmp_path)
        try:
            user = await store.user("discord", "5", "eve")
            first = await store.add_upload(b"PNG bytes", ".png", NewUpload(user, "discord", "50", "me.png"))
            again = await store.add_upload(b"PNG bytes", ".png", NewUpload(user, "discord", "51", "me2.png"))
            picture = await store.add_picture(b"result", ".png", NewPicture(
                "sketch", "discord", "50", user, "pink hair, blue eyes", "sketch-v1", 7, 9, 3, upload_id=first))
            return first, again, picture
        finally:
            await store.close()
    first, again, picture = asyncio.run(go())
    conn = sqlite3.connect(tmp_path / "s.db")
    rows = conn.execute("SELECT id, path, user_id, chat_id, filename, created_at FROM uploads ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [first, again] and rows[0][1] == rows[1][1]  # two sends, one file
    assert (tmp_path / rows[0][1]).read_bytes() == b"PNG bytes" and rows[0][4] == "me.png" and rows[0][5]
    assert conn.execute("SELECT kind, upload_id FROM pictures WHERE id = ?", (picture,)).fetchone() == \
        ("sketch", first)
