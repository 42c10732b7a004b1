"""Migration 004: chat rows survive the rebuilds; web users, submissions, the log and the registry exist."""

import sqlite3

import pytest

import migrations


def test_upgrade_from_003_keeps_users_pictures_votes_and_adds_curation(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    for number, path in migrations.available()[:3]:
        conn.executescript(path.read_text())
    conn.execute("PRAGMA user_version = 3")
    conn.execute("INSERT INTO users (platform, external_id, name) VALUES ('telegram', '7', 'ann')")
    conn.execute("INSERT INTO pictures (sha256, path, kind, user_id, platform, chat_id, tags, model_version) "
                 "VALUES ('s', 'p.png', 'face', 1, 'telegram', '7', 'pink hair, blue eyes', 'v1')")
    conn.execute("INSERT INTO votes (picture_id, user_id, value) VALUES (1, 1, 1)")
    conn.close()

    conn = migrations.connect(db)
    assert conn.execute("SELECT name FROM users").fetchall() == [("ann",)]
    assert conn.execute("SELECT p.tags, v.value FROM votes v JOIN pictures p ON p.id = v.picture_id").fetchall() \
        == [("pink hair, blue eyes", 1)]
    conn.execute("INSERT INTO users (platform, external_id) VALUES ('web', 'local')")
    conn.execute("INSERT INTO pictures (sha256, path, kind, user_id, platform, chat_id, tags, model_version) "
                 "VALUES ('t', 'q.png', 'submission', 2, 'web', 'local', '', '')")
    conn.execute("INSERT INTO images (sha256, path, source, status, picture_id, user_id) "
                 "VALUES ('i', 'f.png', 'submit:web', 'pending', 2, 2)")
    conn.execute("INSERT INTO models (version, state) VALUES ('v1', 'active')")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO models (version, state) VALUES ('v2', 'sideways')")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO users (platform, external_id) VALUES ('irc', 'x')")
    conn.close()
