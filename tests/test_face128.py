"""The 128 px set: imported untagged at 128 px, colours read by the classifier with a confidence,
unsure readings trained without colour labels, and kept apart from the 64 px tagged set."""

import sqlite3

import pytest

import migrations
from bot.cli import main
from training.auto_tags import colour_report, tag_untagged
from training.dataset import FaceDataset


def test_import_at_128_stores_128_px_faces_with_read_colours(face128_data_dir):
    conn = sqlite3.connect(face128_data_dir / "moebot.db")
    rows = conn.execute("SELECT size, hair, eye, tag_confidence, source FROM images").fetchall()
    big = [r for r in rows if r[0] == 128]
    assert len(big) == 64 and all(r[4] == "import:big@128" for r in big)
    assert all(r[1] is not None and r[2] is not None and 0 < r[3] <= 1 for r in big)
    small = [r for r in rows if r[0] == 64]
    assert small and all(r[3] is None for r in small)  # tags from tags.csv carry no confidence


def test_the_64_px_set_leaves_the_128_px_faces_out(face128_data_dir):
    faces = FaceDataset.load(face128_data_dir, "all", progress=False)
    assert faces.images.shape[1:] == (3, 64, 64) and len(faces) == 12


def test_unsure_readings_train_without_colour_labels(face128_data_dir):
    trusting = FaceDataset.load_size(face128_data_dir, 128, "all", threshold=0.0, progress=False)
    doubting = FaceDataset.load_size(face128_data_dir, 128, "all", threshold=1.01, progress=False)
    assert trusting.images.shape == (64, 3, 128, 128)
    assert (trusting.hair >= 0).all() and (trusting.eye >= 0).all()
    assert (doubting.hair == -1).all() and (doubting.eye == -1).all()
    conn = migrations.connect(face128_data_dir / "moebot.db")
    try:
        confs = sorted(c for (c,) in conn.execute("SELECT tag_confidence FROM images WHERE size = 128"))
        median = confs[len(confs) // 2]
        split = FaceDataset.load_size(face128_data_dir, 128, "all", threshold=median, progress=False)
        assert int((split.hair >= 0).sum()) == sum(c >= median for c in confs)
        report = colour_report(conn, 128, threshold=median)
        assert report.read == 64 and sum(report.confident_hair.values()) == sum(c >= median for c in confs)
        assert "pink" in report.summary(median) and "without colour labels" in report.summary(median)
    finally:
        conn.close()


def test_rerun_reads_nothing_new(face128_data_dir):
    conn = migrations.connect(face128_data_dir / "moebot.db")
    try:
        assert tag_untagged(conn, face128_data_dir, progress=False) == 0
    finally:
        conn.close()


def test_cli_import_size_128_prints_the_colour_table(tmp_path, capsys):
    from conftest import draw_face

    (tmp_path / "src").mkdir()
    for i in range(3):
        draw_face("pink", "blue", seed=i, size=128).save(tmp_path / "src" / f"{i}.png")
    (tmp_path / "bot.toml").write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n')
    assert main(["--config", str(tmp_path / "bot.toml"), "import", str(tmp_path / "src"), "--size", "128",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "added 3 images" in out and "read the colours of 3 faces" in out and "hair (confident/read)" in out


def test_import_refuses_an_unknown_size(tmp_path):
    from training.importer import import_folder

    conn = migrations.connect(tmp_path / "moebot.db")
    try:
        with pytest.raises(ValueError, match="64, 128"):
            import_folder(conn, tmp_path, tmp_path, progress=False, size=96)
    finally:
        conn.close()
