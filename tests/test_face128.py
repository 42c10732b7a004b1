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


def _opts(data_dir, run, **kw):
    from training.train_acgan import TrainOptions
    base = dict(data=str(data_dir), run=str(run), batch=8, g_ch=4, d_ch=4, snapshot_every=2, sample_every=2,
                log_every=1, threads=1)
    return TrainOptions(**{**base, **kw})


def test_the_128_px_preset_trains_on_the_128_px_set_resumes_and_draws_128_px(face128_data_dir, tmp_path):
    import json

    import torch

    from generator.weights import load_module
    from training.train_acgan import training_loop

    run = tmp_path / "a"
    training_loop(_opts(face128_data_dir, run, preset="face-gan-128", steps=2), progress=False)
    out = training_loop(_opts(face128_data_dir, run, preset="face-gan-128", steps=3), resume=True, progress=False)
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats] == [1, 2, 3]
    assert all("d_cls64" in s and all(v == v and abs(v) < 1e6 for k, v in s.items() if k != "time") for s in stats)
    G, meta = load_module(out)
    train128 = FaceDataset.load_size(face128_data_dir, 128, "train", progress=False)
    assert meta["config"]["size"] == 128 and meta["preset"] == "face-gan-128"
    assert meta["images"] == len(train128) < 64  # the 128 px training split, held-out faces left out
    with torch.no_grad():
        img = G(torch.randn(2, G.cfg.z_dim), torch.zeros(2, 22).index_fill_(1, torch.tensor([0, 12]), 1.0))
    assert img.shape == (2, 3, 128, 128) and torch.isfinite(img).all()


def test_a_64_px_face_gan_grows_to_128_px_keeping_its_layers(face128_data_dir, tmp_path):
    import torch

    from generator.weights import load_module
    from training.train_acgan import training_loop

    parent = training_loop(_opts(face128_data_dir, tmp_path / "p", preset="face-gan", steps=1), progress=False)
    grown = training_loop(_opts(face128_data_dir, tmp_path / "g", preset="face-gan-128", init=str(parent),
                                steps=1, d_warmup=5), progress=False)
    old_G, new = load_module(parent)[0], load_module(grown)[0]
    assert new.cfg.size == 128
    old, state = old_G.state_dict(), new.state_dict()
    kept = [k for k, _ in old_G.named_parameters()]  # D-only steps leave G's weights alone
    assert "to_rgb.weight" in kept and all(torch.equal(old[k], state[k]) for k in kept)


def test_a_grown_128_px_model_starts_as_its_parent_enlarged():
    """Growing must not throw away what the 64 px model draws: the new 128 px detail starts at zero, and the new
    discriminator branch at zero gain, so both start exactly as the 64 px pair (faces enlarged, judged at 64 px)."""
    import torch
    import torch.nn.functional as F

    from generator.models import face_gan
    from training.train_acgan import load_matching

    torch.manual_seed(0)
    small = face_gan.Config(g_ch=8, d_ch=8)
    G64, D64 = face_gan.Generator(small).eval(), face_gan.Discriminator(small).eval()
    big = face_gan.Config(g_ch=8, d_ch=8, size=128)
    G128, D128 = face_gan.Generator(big).eval(), face_gan.Discriminator(big).eval()
    load_matching(G128, G64.state_dict())
    load_matching(D128, D64.state_dict())
    z, cond = torch.randn(3, small.z_dim), torch.zeros(3, 22).index_fill_(1, torch.tensor([1, 14]), 1.0)
    with torch.no_grad():
        face64, face128 = G64(z, cond), G128(z, cond)
        enlarged = torch.tanh(F.interpolate(torch.atanh(face64), scale_factor=2.0, mode="bilinear"))
        assert face128.shape == (3, 3, 128, 128) and torch.allclose(face128, enlarged, atol=1e-4)
        hair, eye = torch.tensor([1, 2, 3]), torch.tensor([2, -1, 4])
        for a, b in zip(D128(face128, hair, eye), D64(F.avg_pool2d(face128, 2), hair, eye)):
            assert torch.allclose(a, b, atol=1e-4)
        assert torch.allclose(D128.classify64(face64)[0], D64(face64, hair, eye)[1], atol=1e-5)


def test_untagged_faces_add_no_colour_loss_and_no_projection():
    import torch

    from generator.models import face_gan
    from training.train_acgan import tagged_accuracy, tagged_ce

    logits = torch.randn(4, 12)
    assert tagged_ce(logits, torch.full((4,), -1)) == 0
    some = torch.tensor([3, -1, 5, -1])
    assert torch.allclose(tagged_ce(logits, some), torch.nn.functional.cross_entropy(logits[[0, 2]], some[[0, 2]]))
    assert tagged_accuracy(logits, torch.full((4,), -1)) == 0
    D = face_gan.Discriminator(face_gan.Config(d_ch=4, size=128)).eval()
    img = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        untagged = D(img, torch.tensor([-1, -1]), torch.tensor([-1, -1]))[0]
        tagged = D(img, torch.tensor([2, 3]), torch.tensor([1, 4]))[0]
        realness_alone = D.adv(D.features(img).sum((2, 3))).squeeze(1)
    assert torch.allclose(untagged, realness_alone, atol=1e-5) and not torch.allclose(tagged, realness_alone)


def test_a_128_px_face_model_hot_swaps_in_and_the_bot_sends_its_own_128_px_faces(tmp_path):
    """Path (a) is the face kind itself: promoting a face-gan-128 file swaps it in like any face model, and the
    bot sends exactly its 128 px faces (what `moebot sample --size 128` writes), with no upscaler or Lanczos
    from 64 px on the way, and 256 px pictures made from them."""
    import asyncio
    import io

    import torch
    from PIL import Image

    from bot.commands import Waifu
    from bot.core import Who
    from fakes.bot_parts import closed, lifecycle, make_core, tiny_upscaler_weights
    from generator.images import from_pil, to_pil
    from generator.models import face_gan
    from generator.tags import eye_index, hair_index
    from generator.weights import save_module

    torch.manual_seed(0)
    G = face_gan.Generator(face_gan.Config(g_ch=4, size=128))
    big = tmp_path / "face128.safetensors"
    save_module(G, big, G.cfg.to_dict(), step=1, version="face128-v1")
    up = tiny_upscaler_weights(tmp_path / "up.safetensors")
    alice, pink_blue_7 = Who("telegram", "1", "alice", "100"), Waifu(hair_index("pink"), eye_index("blue"), 1, 7)

    async def go():
        core = await make_core(tmp_path)
        try:
            core.display_size = 128
            life = lifecycle(tmp_path, core.store.db, core.generator)
            await life.promote_file(up, "test", "a 2x stage for 64 px faces")
            await life.promote_file(big, "test", "path (a)")
            native = await core.handle(alice, pink_blue_7)
            core.display_size = 256
            return native, await core.handle(alice, pink_blue_7)
        finally:
            await closed(core)

    native, shown = asyncio.run(asyncio.wait_for(go(), 300))
    assert "model face128-v1" in native.text  # the upscaler (promoted first) is not in its version
    native, shown = (from_pil(Image.open(io.BytesIO(r.files[0].data))) for r in (native, shown))
    out = tmp_path / "sampled"
    assert main(["sample", "--weights", str(big), "--size", "128", "-n", "1", "--hair", "pink", "--eye", "blue",
                 "--seed", "7", "--out", str(out)]) == 0
    sampled = from_pil(Image.open(out / "000.png"))
    assert sampled.shape == (3, 128, 128) and torch.equal(native, sampled)
    assert torch.equal(shown, from_pil(to_pil(sampled, 256)))
    assert main(["sample", "--weights", str(big), "-n", "1", "--hair", "pink", "--eye", "blue", "--seed", "7",
                 "--out", str(tmp_path / "own")]) == 0  # no --size: the model's own 128 px
    assert torch.equal(from_pil(Image.open(tmp_path / "own" / "000.png")), sampled)
