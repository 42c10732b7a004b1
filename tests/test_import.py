"""``moebot import``: every supported layout, and every kind of bad file, on faces the test draws."""

import os
import pickle
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import draw_face, make_face_folder

import migrations
from generator.tags import EYE_COLORS, HAIR_COLORS
from training.importer import SafeUnpickler, import_folder


def _db(tmp_path: Path) -> sqlite3.Connection:
    return migrations.connect(tmp_path / "data" / "moebot.db")


def _rows(conn):
    return conn.execute("SELECT hair, eye, source_name, path FROM images ORDER BY id").fetchall()


def test_tags_csv_with_bad_duplicate_and_untagged_files(tmp_path):
    src = tmp_path / "src"
    tags = make_face_folder(src, per_pair=2)
    imgs = src / "images"
    shutil.copy(imgs / "0.png", imgs / "100.png")                     # same pixels, other name
    draw_face("red", "red", 99).save(imgs / "200.jpg")                  # no row in tags.csv -> untagged
    (imgs / "300.png").write_text("this is not a picture")              # text file renamed .png
    (imgs / "301.png").write_bytes((imgs / "1.png").read_bytes()[:200])  # truncated PNG
    draw_face("pink", "blue", 5, size=64).resize((8, 8)).save(imgs / "302.png")  # tiny
    (imgs / "notes.txt").write_text("hello")                            # not an image file at all
    conn = _db(tmp_path)
    report = import_folder(conn, tmp_path / "data", src, progress=False)

    assert report.added == len(tags) + 1
    assert report.untagged == 1
    assert report.duplicates == 1
    assert sum(report.skipped.values()) == 4
    reasons = " ".join(report.skipped)
    assert "not an image" in reasons and "truncated" in reasons and "too small" in reasons
    rows = _rows(conn)
    assert len(rows) == len(tags) + 1
    by_name = {r[2]: r for r in rows}
    assert by_name["images/0.png"][:2] == (HAIR_COLORS.index("pink"), EYE_COLORS.index("blue"))
    assert by_name["images/200.jpg"][:2] == (None, None)
    for _, _, _, rel in rows:  # stored once, at 64x64, by content hash
        stored = tmp_path / "data" / rel
        assert stored.exists() and Path(rel).stem in stored.name
    assert "skipped 1: too small" in report.summary()


def test_rerun_resumes_and_adds_nothing(tmp_path):
    src = tmp_path / "src"
    make_face_folder(src, per_pair=2)
    conn = _db(tmp_path)
    first = import_folder(conn, tmp_path / "data", src, progress=False)
    # simulate a crash after the first half: forget the log of the second half only
    conn.execute("DELETE FROM import_log WHERE rowid > (SELECT COUNT(*) / 2 FROM import_log)")
    again = import_folder(conn, tmp_path / "data", src, progress=False)
    assert again.added == 0
    assert again.already_done + again.duplicates == first.added
    assert again.duplicates > 0
    assert conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] == first.added


def test_plain_folder_is_untagged(tmp_path):
    src = tmp_path / "plain"
    src.mkdir()
    for i in range(3):
        draw_face("blue", "green", i).save(src / f"face{i}.webp")
    conn = _db(tmp_path)
    report = import_folder(conn, tmp_path / "data", src, progress=False)
    assert report.added == 3 and report.untagged == 3
    assert {r[:2] for r in _rows(conn)} == {(None, None)}


@pytest.mark.parametrize("layout", ["tuple", "vector"])
def test_acgan_tags_pickle(tmp_path, layout):
    src = tmp_path / "acgan"
    (src / "faces").mkdir(parents=True)
    expected = {}
    table = {}
    for i, (hair, eye) in enumerate([("orange", "black"), ("blonde", "blue"), ("green", "pink")]):
        draw_face(hair, eye, i).save(src / "faces" / f"{i}.jpg")
        h, e = np.zeros(12, np.float32), np.zeros(10, np.float32)
        h[HAIR_COLORS.index(hair)] = 1
        e[EYE_COLORS.index(eye)] = 1
        table[i] = (h, e) if layout == "tuple" else np.concatenate([h, e])
        expected[f"faces/{i}.jpg"] = (HAIR_COLORS.index(hair), EYE_COLORS.index(eye))
    with open(src / "tags.pickle", "wb") as f:
        pickle.dump(table, f)
    conn = _db(tmp_path)
    report = import_folder(conn, tmp_path / "data", src, progress=False)
    assert report.added == 3 and report.untagged == 0
    assert {r[2]: r[:2] for r in _rows(conn)} == expected


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_tags_pickle_cannot_run_code(tmp_path):
    path = tmp_path / "tags.pickle"
    path.write_bytes(pickle.dumps({0: _Evil()}))
    with open(path, "rb") as f, pytest.raises(pickle.UnpicklingError, match="system, which a tag file never needs"):
        SafeUnpickler(f).load()
    assert not (tmp_path / "pwned.txt").exists() and not Path("pwned.txt").exists()


def test_decompression_bomb_is_skipped(tmp_path):
    from PIL import Image

    src = tmp_path / "bomb"
    src.mkdir()
    # a tiny file whose header claims 20000 x 20000 pixels
    Image.new("1", (20000, 20000)).save(src / "bomb.png", optimize=True)
    conn = _db(tmp_path)
    report = import_folder(conn, tmp_path / "data", src, progress=False)
    assert report.added == 0 and report.skipped == {"too many pixels": 1}


def moebot_import(monkeypatch, url: str, data_dir: Path, *args: str) -> int:
    """`moebot import ARGS` as an operator runs it, with ``[storage] url`` (MOEBOT_STORAGE_URL) set to ``url``."""
    from bot.cli import main

    monkeypatch.chdir(data_dir.parent)  # no bot.toml there
    monkeypatch.setenv("MOEBOT_STORAGE_URL", url)
    monkeypatch.setenv("MOEBOT_STORAGE_DATA_DIR", str(data_dir))
    return main(["import", "--quiet", *args])


def test_import_128_on_postgres_reads_the_colours_there(postgres_url, tmp_path, monkeypatch, capsys):
    import psycopg

    src = tmp_path / "big"
    src.mkdir()
    for i, (hair, eye) in enumerate([("blue", "red"), ("blonde", "green"), ("black", "purple")]):
        draw_face(hair, eye, i, size=128).save(src / f"{i}.png")
    assert moebot_import(monkeypatch, postgres_url, tmp_path / "data", str(src), "--size", "128") == 0
    out = capsys.readouterr().out
    assert "added 3 images (3 untagged)" in out and "read the colours of 3 faces" in out
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT size, hair, eye, tag_confidence, path FROM images").fetchall()
    assert len(rows) == 3
    for size, hair, eye, confidence, path in rows:  # every face read by the classifier, its file in data_dir
        assert size == 128 and hair is not None and eye is not None and 0 < confidence <= 1
        assert (tmp_path / "data" / path).exists()
    assert not (tmp_path / "data" / "moebot.db").exists()  # nothing went to a SQLite file


def test_import_to_an_unreachable_database_is_one_line_without_its_password(tmp_path, monkeypatch, capsys):
    from test_bot_run import free_port

    draw_face("blue", "red", 0).save(tmp_path / "0.png")
    url = f"postgresql://moebot:SECRET-PW@127.0.0.1:{free_port()}/moebot"
    assert moebot_import(monkeypatch, url, tmp_path / "data", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("moebot: cannot connect to the database at postgresql://moebot@127.0.0.1:")
    assert "MOEBOT_STORAGE_URL" in err and "SECRET-PW" not in err and "Traceback" not in err
