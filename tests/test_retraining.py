"""Retraining: the gate, curated weighting, and whole runs in a child process on tiny data."""

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path
from typing import AsyncIterator

import pytest
import torch

import migrations
from bot.config import TrainingConfig
from bot.retraining import RUN_LEASE, Retrainer
from conftest import draw_face
from fakes.bot_parts import database
from generator.active_model import read_active
from generator.tags import EYE_COLORS, HAIR_COLORS
from training import registry
from training.dataset import FaceDataset
from training.gate import Margins, judge
from training.train_acgan import batch_weights

GOOD = {"hair_ratio": 0.95, "eye_ratio": 0.9, "diversity_ratio": 0.9, "fd": 10.0}


def test_gate_promotes_no_worse_and_names_every_regression():
    ok, why = judge({**GOOD, "hair_ratio": 0.94, "fd": 10.9}, GOOD, Margins())
    assert ok, why
    ok, why = judge({**GOOD, "eye_ratio": 0.8, "fd": 12.0}, GOOD, Margins())
    assert not ok and "eye_ratio 0.800 < 0.880" in why and "fd 12.00 > 11.00" in why
    ok, why = judge({**GOOD, "fd": float("nan")}, GOOD, Margins())
    assert not ok and "not finite: fd" in why
    ok, why = judge({**GOOD, "diversity_ratio": 0.2}, GOOD, Margins())  # a collapsed model
    assert not ok and "diversity_ratio" in why


def test_curated_faces_get_a_bounded_share_of_each_batch():
    def data(n_base, n_cur):
        n = n_base + n_cur
        return FaceDataset(torch.zeros(n, 3, 1, 1, dtype=torch.uint8), torch.zeros(n, dtype=torch.long),
                           torch.zeros(n, dtype=torch.long), torch.arange(n) >= n_base)
    assert batch_weights(data(100, 0), 0.25, 20) is None
    few = batch_weights(data(30_000, 5), 0.25, 20)
    many = batch_weights(data(30_000, 20_000), 0.25, 20)
    assert few[-5:].sum() == pytest.approx(0.25 * 5 / 25)  # 5 faces: 5% of every batch, not 0.017%
    assert many[30_000:].sum() == pytest.approx(0.25 * 20_000 / 20_020)  # thousands stay under 25%
    assert few.sum() == pytest.approx(1.0) and many.sum() == pytest.approx(1.0)


def curate(data_dir: Path, hair: int, n: int) -> list[int]:
    """Mark ``n`` training faces of one hair colour curated, as votes would."""
    conn = migrations.connect(data_dir / "moebot.db")
    rows = [r[0] for r in conn.execute("SELECT id FROM images WHERE hair = ? ORDER BY id", (hair,))][:n]
    conn.executemany("UPDATE images SET status = 'curated' WHERE id = ?", [(i,) for i in rows])
    conn.close()
    return rows


def add_128_px_faces(data_dir, n_pairs: int = 8) -> None:
    """Import drawn 128 px faces (colours read by the classifier) beside the tagged 64 px ones."""
    import migrations
    from training.auto_tags import tag_untagged
    from training.importer import import_folder

    src = data_dir.parent / "big"
    src.mkdir()
    for i, (hair, eye) in enumerate(zip(HAIR_COLORS[:n_pairs], EYE_COLORS[:n_pairs])):
        for k in range(4):
            draw_face(hair, eye, seed=500 + 4 * i + k, size=128).save(src / f"{i}-{k}.png")
    conn = migrations.connect(data_dir / "moebot.db")
    try:
        import_folder(conn, data_dir, src, progress=False, size=128)
        tag_untagged(conn, data_dir, progress=False)
    finally:
        conn.close()


# a fine-tune that ruins a good model (Adam steps of 5 wreck every weight) under the default gate
RUIN = dict(steps=6, d_warmup=2, lr=5.0, margin_hair_ratio=0.02, margin_eye_ratio=0.02, margin_diversity_ratio=0.03,
            margin_fd=0.10)


def tiny_runs(**cfg) -> TrainingConfig:
    """Runs of a few steps on tiny data, whose candidates the gate lets through (unless ``cfg`` says otherwise)."""
    options = dict(steps=12, batch=16, d_warmup=4, min_new=3, margin_hair_ratio=1.0, margin_eye_ratio=1.0,
                   margin_diversity_ratio=1.0, margin_fd=100.0, keep_runs=2)
    return TrainingConfig(**{**options, **cfg})


@contextlib.asynccontextmanager
async def make_retrainer(data_dir: Path, weights: Path, **cfg) -> AsyncIterator[Retrainer]:
    """A retrainer of tiny runs on the bot's database in ``data_dir``, closed after the block."""
    async with database(data_dir) as db:
        yield Retrainer(tiny_runs(**cfg), data_dir, db, weights)


def test_a_run_trains_in_a_child_is_judged_promoted_and_rolled_back(tmp_path, face_data_dir, tiny_generator_file):
    data_dir = tmp_path / "data"
    shutil.copytree(face_data_dir, data_dir)
    curated = curate(data_dir, hair=0, n=4)

    async def go():
        async with make_retrainer(data_dir, tiny_generator_file) as retrainer:
            seen = []

            async def told(outcome):
                seen.append(outcome)
            retrainer.subscribe(told)
            answer = await retrainer.start("telegram:1")
            assert "Started retraining run ft-" in answer
            assert "already going" in await retrainer.start("telegram:2")
            outcome = await retrainer.wait()
            models = await retrainer.models()
            back = await retrainer.rollback(None, "telegram:1")
            return outcome, seen, models, back, await retrainer.models(), \
                await registry.trained_on(retrainer.db, outcome.version)

    outcome, seen, models, back, after, trained_on = asyncio.run(go())
    assert outcome.promoted, outcome.reason
    assert seen == [outcome] and outcome.grid.exists() and "promoted" in outcome.text
    assert [m.state for m in models] == ["active", "retired"]
    assert models[0].version == outcome.version and models[0].parent == models[1].version
    assert models[0].reason == outcome.reason  # listing the models keeps why the active one became so
    assert read_active(data_dir) is not None
    assert "Rolled back" in back and [m.state for m in after] == ["retired", "active"]
    assert read_active(data_dir).version == models[1].version
    conn = migrations.connect(data_dir / "moebot.db")
    assert trained_on == {i for i in curated if not _heldout(conn, i)}
    conn.close()
    assert not (data_dir / "retrain" / outcome.version / "snapshot.pt").exists()
    assert (data_dir / "retrain" / outcome.version / "discriminator.safetensors").exists()  # for the next run


def test_a_fine_tune_of_the_bundled_model_starts_from_its_discriminator(tmp_path, face_data_dir):
    from generator.weights import BUNDLED_DISCRIMINATOR, BUNDLED_GENERATOR
    data_dir = tmp_path / "data"
    shutil.copytree(face_data_dir, data_dir)
    add_128_px_faces(data_dir)
    curate(data_dir, hair=0, n=4)

    async def go():
        async with make_retrainer(data_dir, BUNDLED_GENERATOR, steps=2, d_warmup=1) as retrainer:
            await retrainer.start("telegram:1")
            return await retrainer.wait()
    outcome = asyncio.run(go())
    options = json.loads((data_dir / "retrain" / outcome.version / "options.json").read_text())
    assert options["init"] == str(BUNDLED_GENERATOR) and options["init_d"] == str(BUNDLED_DISCRIMINATOR)
    assert options["g_cls_weight"] == 0.2  # [training]'s, handed to the loop by name
    assert outcome.promoted, outcome.reason


def test_a_128_px_serving_model_without_imported_128_px_faces_is_told_to_import_them(tmp_path, face_data_dir):
    """Only the 64 px set imported: the bundled 128 px model has nothing of its size to fine-tune on."""
    from generator.weights import BUNDLED_GENERATOR
    data_dir = tmp_path / "data"
    shutil.copytree(face_data_dir, data_dir)
    curate(data_dir, hair=0, n=4)

    async def go():
        async with make_retrainer(data_dir, BUNDLED_GENERATOR) as retrainer:
            return await retrainer.start("telegram:1"), retrainer.running
    answer, running = asyncio.run(go())
    assert "no imported 128 px faces" in answer and "`moebot import <folder> --size 128`" in answer
    assert running is None and not (data_dir / "retrain").exists()


def _heldout(conn: sqlite3.Connection, image_id: int) -> bool:
    from training.dataset import is_heldout
    return is_heldout(conn.execute("SELECT sha256 FROM images WHERE id = ?", (image_id,)).fetchone()[0])


def test_a_worse_candidate_is_rejected_and_the_active_model_keeps_serving(tmp_path, face_data_dir):
    """A run forced to ruin the bundled model (a learning rate 50,000 times too high) fails the default gate."""
    from generator.weights import BUNDLED_GENERATOR
    data_dir = tmp_path / "data"
    shutil.copytree(face_data_dir, data_dir)
    add_128_px_faces(data_dir)
    curate(data_dir, hair=0, n=4)

    async def go():
        async with make_retrainer(data_dir, BUNDLED_GENERATOR, **RUIN) as retrainer:
            await retrainer.start("telegram:1")
            return await retrainer.wait(), await retrainer.models()
    outcome, models = asyncio.run(go())
    assert not outcome.promoted and "worse than the active model" in outcome.reason, outcome.text
    assert [m.state for m in models] == ["rejected", "active"]
    assert models[0].reason == outcome.reason and models[0].metrics and models[0].parent_metrics
    assert read_active(data_dir) is None  # nothing was promoted: the bundled/configured weights still serve


def test_a_killed_run_is_failed_and_the_next_run_completes(tmp_path, face_data_dir, tiny_generator_file):
    data_dir = tmp_path / "data"
    shutil.copytree(face_data_dir, data_dir)
    curate(data_dir, hair=0, n=4)

    async def go():
        async with make_retrainer(data_dir, tiny_generator_file, steps=100_000) as slow:
            await slow.start("telegram:1")
            log_file = data_dir / "retrain" / slow.running[0] / "stats.jsonl"
            deadline = time.monotonic() + 60
            while not log_file.exists() and time.monotonic() < deadline:  # kill it mid-training
                await asyncio.sleep(0.2)
            os.kill(slow.running[1], signal.SIGKILL)
            killed = await slow.wait()
            async with make_retrainer(data_dir, tiny_generator_file) as fresh:  # as after a restart
                await fresh.start("schedule")
                return killed, await fresh.wait(), await fresh.models()
    killed, done, models = asyncio.run(go())
    assert not killed.promoted and "status -9" in killed.reason
    assert done.promoted, done.reason
    assert [m.state for m in models] == ["active", "failed", "retired"]


def test_a_run_left_training_by_a_dead_process_is_failed_once_its_lease_has_lapsed(tmp_path, tiny_generator_file):
    """While another process's run holds the lease, its 'training' row is its own; once the lease lapses (that
    process died without giving it up), the next look at the registry fails the row."""
    async def go():
        async with make_retrainer(tmp_path, tiny_generator_file) as retrainer:
            await registry.begin(retrainer.db, "ft-elsewhere", "tiny", tmp_path / "retrain" / "ft-elsewhere")
            await retrainer.leases.claim(RUN_LEASE, 0.5, holder="other-host:4242:run")
            while_held = {m.version: m.state for m in await retrainer.models()}
            await asyncio.sleep(0.6)
            lapsed = {m.version: m.state for m in await retrainer.models()}
            return while_held["ft-elsewhere"], lapsed["ft-elsewhere"]
    assert asyncio.run(go()) == ("training", "failed")


def test_the_schedule_runs_only_when_enough_new_curated_faces_arrived(tmp_path, face_data_dir,
                                                                      tiny_generator_file):
    from apscheduler.events import EVENT_JOB_EXECUTED
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    data_dir = tmp_path / "data"
    shutil.copytree(face_data_dir, data_dir)

    async def go():
        async with make_retrainer(data_dir, tiny_generator_file, every_s=0.2, min_new=3) as retrainer:
            checks = asyncio.Queue()
            scheduler = AsyncIOScheduler()
            scheduler.add_listener(lambda event: checks.put_nowait(event.job_id), EVENT_JOB_EXECUTED)
            scheduler.start()
            retrainer.schedule(scheduler)

            async def after_checks(n: int) -> tuple[str, int | None] | None:
                """Whether a run is going once ``n`` more scheduled checks have finished."""
                for _ in range(n):
                    await asyncio.wait_for(checks.get(), 30)
                return retrainer.running

            idle = await after_checks(3), await retrainer.wait()
            curate(data_dir, hair=2, n=8)
            deadline = time.monotonic() + 30
            while retrainer.running is None and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            outcome = await retrainer.wait()
            while not checks.empty():  # checks that ended during the run
                checks.get_nowait()
            again = await after_checks(3)  # later checks find nothing new: the candidate was trained on all of it
            scheduler.shutdown(wait=False)
            return idle, outcome, again
    idle, outcome, again = asyncio.run(go())
    assert idle == (None, None)
    assert outcome.promoted, outcome.reason
    assert again is None


def test_moebot_retrain_from_a_terminal(tmp_path, face_data_dir, tiny_generator_file, capsys):
    from bot.cli import main
    data_dir = tmp_path / "data"
    shutil.copytree(face_data_dir, data_dir)
    curate(data_dir, hair=4, n=4)
    config = tmp_path / "bot.toml"
    config.write_text(f'[storage]\ndata_dir = "{data_dir}"\n[generator]\nweights = "{tiny_generator_file}"\n'
                      "[training]\nsteps = 12\nbatch = 16\nd_warmup = 4\nmargin_fd = 100.0\n"
                      "margin_hair_ratio = 1.0\nmargin_eye_ratio = 1.0\nmargin_diversity_ratio = 1.0\n")
    assert main(["--config", str(config), "retrain"]) == 0
    out = capsys.readouterr().out
    assert "Started retraining run ft-" in out and "promoted: no worse on any figure" in out
    assert "before | after: " in out
    assert main(["--config", str(config), "models", "list"]) == 0
    assert [ln.split()[1] for ln in capsys.readouterr().out.splitlines()] == ["active", "retired"]
