"""The nightly retraining of the slower face models: a CPU-minute budget ends a run, a face-gan-128 parent is
fine-tuned on curated 128 px faces and judged at the classifier's 64 px, and a face curated from chat is kept
at 128 px and still read into the 64 px training data."""

import asyncio
import io
import json
import shutil
import sqlite3

import numpy as np
import pytest
from PIL import Image

from bot.commands import Waifu
from bot.core import Who
from conftest import draw_face
from fakes.bot_parts import closed, make_core
from generator.tags import EYE_COLORS, HAIR_COLORS, eye_index, hair_index
from generator.weights import read_metadata
from test_curation import VOTERS, vote_all
from test_retraining import add_128_px_faces, curate, make_retrainer
from training.dataset import FaceDataset, is_heldout


def test_a_run_ends_at_its_cpu_minute_budget_before_its_steps(tmp_path, face_data_dir, tiny_generator_file):
    data_dir = tmp_path / "data"
    shutil.copytree(face_data_dir, data_dir)
    curate(data_dir, hair=0, n=4)

    async def go():
        async with make_retrainer(data_dir, tiny_generator_file, steps=2000, minutes=0.01) as retrainer:
            answer = await retrainer.start("telegram:1")
            return answer, await retrainer.wait()
    answer, outcome = asyncio.run(go())
    assert "2000 steps or 0.01 CPU-minutes" in answer
    assert outcome.promoted, outcome.reason  # judged by the gate like a run that went all its steps
    run = data_dir / "retrain" / outcome.version
    options = json.loads((run / "options.json").read_text())
    assert options["minutes"] == 0.01 and options["clock"] == "cpu"
    step = read_metadata(run / "generator.safetensors")["step"]
    assert 0 < step < 2000
    # the grid and the export are of the step the budget ended at, and the only ones (a run is never resumed)
    assert [p.name for p in run.glob("fakes*.png")] == [f"fakes{step:06d}.png"]
    stats = run / "stats.jsonl"
    logged = [json.loads(line)["step"] for line in stats.read_text().splitlines()] if stats.exists() else []
    assert logged == list(range(25, step + 1, 25))


def test_a_face_gan_128_parent_is_retrained_on_curated_128_px_faces_and_judged(tmp_path, face_data_dir):
    import torch

    from generator.models import face_gan
    from generator.weights import BUNDLED_TAGGER, load_module, save_module
    from training import registry
    from training.metrics import Evaluator
    from training.train_acgan import FaceGAN128Objective, TrainOptions, batch_weights

    data_dir = tmp_path / "data"
    shutil.copytree(face_data_dir, data_dir)
    add_128_px_faces(data_dir)
    conn = sqlite3.connect(data_dir / "moebot.db")
    big = [(i, sha) for i, sha in conn.execute("SELECT id, sha256 FROM images WHERE size = 128 ORDER BY id")]
    curated = [i for i, sha in big if not is_heldout(sha)][:6]
    conn.executemany("UPDATE images SET status = 'curated' WHERE id = ?", [(i,) for i in curated])
    conn.commit()
    conn.close()
    torch.manual_seed(0)
    G = face_gan.Generator(face_gan.Config(g_ch=4, size=128))
    parent = tmp_path / "face128.safetensors"
    save_module(G, parent, G.cfg.to_dict(), step=1, version="face128-v1")

    async def go():
        async with make_retrainer(data_dir, parent, steps=6, d_warmup=2, g_ramp=3, d_ramp=2) as retrainer:
            await retrainer.start("telegram:1")
            outcome = await retrainer.wait()
            return outcome, await registry.trained_on(retrainer.db, outcome.version)
    outcome, trained_on = asyncio.run(go())
    run = data_dir / "retrain" / outcome.version
    assert outcome.promoted, outcome.reason  # the gate judged it (the tiny runs' margins let it through)
    assert "fd" in outcome.reason and "hair_ratio" in outcome.reason
    verdict = json.loads((run / "verdict.json").read_text())
    assert all(np.isfinite(verdict[k]["fd"]) for k in ("metrics", "parent_metrics"))
    options = json.loads((run / "options.json").read_text())
    assert options["preset"] == "face-gan-128"
    assert (options["d_warmup"], options["g_ramp"], options["d_ramp"]) == (2, 3, 2)
    meta = read_metadata(run / "generator.safetensors")
    train128 = [sha for _, sha in big if not is_heldout(sha)]
    assert meta["config"]["size"] == 128 and meta["images"] == len(train128)  # base and curated 128 px faces
    assert set(curated) <= trained_on
    assert Image.open(outcome.grid).width == 12 * (128 + 2) + 2  # before | after, 128 px faces
    # judged at the classifier's 64 px, as the held-out real faces are
    tagger = load_module(BUNDLED_TAGGER)[0]
    evaluator = Evaluator.build(tagger, FaceDataset.load(run / "rows.json", "heldout", ("base",), progress=False))
    candidate = load_module(verdict["candidate"])[0]
    assert evaluator.generate(candidate).shape[1:] == (3, 64, 64)
    assert evaluator.evaluate(candidate)["fd"] == pytest.approx(verdict["metrics"]["fd"], rel=1e-3)
    # the rows file the run trained on: its curated 128 px faces weighted as the 64 px path weighs them
    objective = FaceGAN128Objective(TrainOptions(data="", run="", preset="face-gan-128", g_ch=4, d_ch=4))
    data = objective.load_data(str(run / "rows.json"), progress=False)
    assert data.images.shape[1:] == (3, 128, 128) and int(data.curated.sum()) == len(curated)
    assert float(batch_weights(data, 0.25, 20)[data.curated].sum()) == pytest.approx(0.25 * 6 / 26)
    FaceDataset.load_size(data_dir, 128, "train", progress=False)  # the yardstick's set: no curated faces
    assert len(list((data_dir / "cache").glob("faces128*-train-*.npy"))) == 2  # a cache each, neither replaced


def test_a_curated_face_is_kept_at_128_px_and_read_at_64_into_the_training_data(tmp_path):
    from training.near_duplicates import FaceHashIndex, face_hash

    alice = Who("telegram", "1", "alice", "100")

    async def go():
        core = await make_core(tmp_path)
        try:
            core.display_size = 256
            liked = await core.handle(alice, Waifu(hair_index("pink"), eye_index("blue"), 1, 1))
            await vote_all(core, liked.buttons.picture_id, VOTERS[:4])
            return liked
        finally:
            await closed(core)
    liked = asyncio.run(go())
    conn = sqlite3.connect(tmp_path / "moebot.db")
    (size, path, status), = conn.execute("SELECT size, path, status FROM images").fetchall()
    conn.close()
    shown = Image.open(io.BytesIO(liked.files[0].data)).convert("RGB")
    kept = Image.open(tmp_path / path)
    assert (size, kept.size, status) == (128, (128, 128), "curated") and shown.size == (256, 256)
    assert np.array_equal(np.asarray(kept), np.asarray(shown.resize((128, 128), Image.Resampling.LANCZOS)))
    faces = FaceDataset.load(tmp_path, "all", ("curated",), progress=False)
    assert faces.images.shape == (1, 3, 64, 64) and bool(faces.curated[0])
    assert faces.hair.tolist() == [hair_index("pink")] and faces.eye.tolist() == [eye_index("blue")]
    at64 = np.asarray(kept.resize((64, 64), Image.Resampling.LANCZOS)).transpose(2, 0, 1)
    assert np.array_equal(faces.images[0].numpy(), at64)
    index = FaceHashIndex.build(tmp_path)  # near-duplicates are found at 64 px too
    assert np.array_equal(index.hashes[0], face_hash(kept.resize((64, 64), Image.Resampling.LANCZOS)))
