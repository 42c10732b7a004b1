"""Retraining with the bot's database on PostgreSQL: `moebot import` writes the faces there, the scheduled check
and the run read the faces curated there, the registry is written there (a second process reads it back), and
the run's lease in it keeps two processes from running two retrainings."""

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from bot.retraining import NO_BASE_FACES, RUN_LEASE, Retrainer
from bot.store import Store
from conftest import make_face_folder
from generator.tags import EYE_COLORS, HAIR_COLORS
from training import registry
from training.dataset import is_heldout
from test_import import moebot_import
from test_retraining import tiny_runs

ROOT = Path(__file__).resolve().parents[1]


async def copy_faces(store: Store) -> None:
    """The faces imported into the data directory's SQLite file, put into the store's database as they are."""
    conn = sqlite3.connect(store.data_dir / "moebot.db")
    columns = [r[1] for r in conn.execute("PRAGMA table_info(images)")]
    rows = conn.execute(f"SELECT {', '.join(columns)} FROM images").fetchall()
    conn.close()
    async with store.db.transaction() as tx:
        for row in rows:
            await tx.execute(f"INSERT INTO images ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                             row)


async def curate(store: Store, hair: int, n: int) -> list[tuple[int, str]]:
    """Mark ``n`` faces of one hair colour curated in the store, as votes would; their (id, sha256)."""
    rows = await store.db.fetchall("UPDATE images SET status = 'curated' WHERE id IN (SELECT id FROM images WHERE "
                                   "hair = ? ORDER BY id LIMIT ?) RETURNING id, sha256", (hair, n))
    return [(r[0], r[1]) for r in rows]


def test_the_scheduled_run_trains_on_the_faces_curated_in_postgres(postgres_url, tmp_path, face_data_dir,
                                                                   tiny_generator_file):
    data_dir = tmp_path / "data"
    shutil.copytree(face_data_dir, data_dir)  # its SQLite file has the same faces, none of them curated

    async def go():
        store = await Store.open(postgres_url, data_dir)
        try:
            await copy_faces(store)
            curated = await curate(store, hair=0, n=4)
            retrainer = Retrainer(tiny_runs(), data_dir, store.db, tiny_generator_file)
            await retrainer.scheduled()  # what the schedule runs: enough new curated faces, so a run starts
            outcome = await retrainer.wait()
            return curated, outcome, await registry.trained_on(store.db, outcome.version) if outcome else None
        finally:
            await store.close()
    curated, outcome, trained_on = asyncio.run(go())
    assert outcome is not None and outcome.promoted, outcome
    assert trained_on == {i for i, sha in curated if not is_heldout(sha)} and trained_on
    listed = subprocess.run(  # a second process on the same database
        [sys.executable, "-m", "bot.cli", "models", "list"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MOEBOT_STORAGE_URL": postgres_url,
             "MOEBOT_STORAGE_DATA_DIR": str(data_dir), "MOEBOT_GENERATOR_WEIGHTS": str(tiny_generator_file)})
    assert listed.returncode == 0, listed.stderr
    lines = [line.split() for line in listed.stdout.splitlines()]
    assert [line[1] for line in lines] == ["active", "retired"] and lines[0][0] == outcome.version
    conn = sqlite3.connect(data_dir / "moebot.db")
    assert conn.execute("SELECT COUNT(*) FROM models").fetchone()[0] == 0  # nothing went to the SQLite file
    conn.close()


def test_two_processes_on_one_postgres_never_run_two_retrainings(postgres_url, tmp_path, face_data_dir,
                                                                 tiny_generator_file):
    """Two stores (two processes' pools) on one database: while one run goes, the other process starts none."""
    data_dir = tmp_path / "data"
    shutil.copytree(face_data_dir, data_dir)

    async def go():
        first, second = [await Store.open(postgres_url, data_dir) for _ in range(2)]
        try:
            await copy_faces(first)
            await curate(first, hair=2, n=4)
            one, two = (Retrainer(tiny_runs(), data_dir, s.db, tiny_generator_file) for s in (first, second))
            answers = [await one.start("telegram:1"), await two.start("telegram:2")]
            held = await two.leases.holder_of(RUN_LEASE)
            outcome = await one.wait()
            return answers, held, outcome, await two.leases.holder_of(RUN_LEASE), await registry.listing(second.db)
        finally:
            await first.close()
            await second.close()
    answers, held, outcome, held_after, models = asyncio.run(go())
    assert answers[0].startswith("Started retraining run ft-")
    assert answers[1] == "A retraining run is going in another moebot process; try again when it has finished."
    assert held is not None and held_after is None  # given up when the run ended
    assert outcome.promoted and [m.state for m in models] == ["active", "retired"]  # one run, not two


def test_without_imported_faces_in_the_database_no_run_starts(postgres_url, tmp_path, tiny_generator_file):
    """A database with no imported faces is told, not a failed run."""
    async def go():
        store = await Store.open(postgres_url, tmp_path)
        try:
            retrainer = Retrainer(tiny_runs(), tmp_path, store.db, tiny_generator_file)
            answer = await retrainer.start("telegram:1")
            return answer, retrainer.running, await retrainer.leases.holder_of(RUN_LEASE), \
                await registry.listing(store.db)
        finally:
            await store.close()
    answer, running, held, models = asyncio.run(go())
    assert answer == NO_BASE_FACES.format(size=64, flag="") and running is None and held is None
    assert [m.state for m in models] == ["active"]  # the serving model, recorded; no run


def test_moebot_import_on_postgres_feeds_the_scheduled_retraining(postgres_url, tmp_path, monkeypatch, capsys,
                                                                   tiny_generator_file):
    """`moebot import` with [storage] url on PostgreSQL writes its rows there (a rerun adds nothing), and the
    scheduled retraining starts on them."""
    src, data_dir = tmp_path / "src", tmp_path / "data"
    tags = make_face_folder(src, per_pair=8, pairs=[(h, e) for h in HAIR_COLORS[::2] for e in EYE_COLORS[::3]])
    assert moebot_import(monkeypatch, postgres_url, data_dir, str(src)) == 0
    assert moebot_import(monkeypatch, postgres_url, data_dir, str(src)) == 0
    first, again = capsys.readouterr().out.splitlines()
    assert first.startswith(f"added {len(tags)} images (0 untagged), 0 duplicates")
    assert again.startswith(f"added 0 images (0 untagged), 0 duplicates, {len(tags)} already imported")
    assert not (data_dir / "moebot.db").exists()  # nothing went to a SQLite file

    async def go():
        store = await Store.open(postgres_url, data_dir)
        try:
            imported = await store.db.fetchval("SELECT COUNT(*) FROM images WHERE status = 'base' AND hair IS NOT NULL")
            curated = await curate(store, hair=0, n=4)
            retrainer = Retrainer(tiny_runs(), data_dir, store.db, tiny_generator_file)
            await retrainer.scheduled()
            outcome = await retrainer.wait()
            return imported, curated, outcome, await registry.trained_on(store.db, outcome.version) if outcome else None
        finally:
            await store.close()
    imported, curated, outcome, trained_on = asyncio.run(go())
    assert imported == len(tags)
    assert outcome is not None and outcome.promoted, outcome
    assert trained_on == {i for i, sha in curated if not is_heldout(sha)} and trained_on
