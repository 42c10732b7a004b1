"""The sketch CycleGAN: shapes, colour and noise conditioning, losses, a tiny training run, export, metrics."""

import json
import shutil

import numpy as np
import pytest
import torch

from generator.models import tag_condition
from generator.models.sketch_gan import (
    FaceDiscriminator, FaceToSketch, PatchDiscriminator, SketchGANConfig, SketchToFace,
)
from generator.models.tagger import Tagger, TaggerConfig
from generator.weights import load_module, read_metadata, save_module
from test_sketch_data import draw_doodles
from training.dataset import FaceDataset
from training.sketch_data import DoodleSet, heldout_faces
from training.sketch_metrics import EYE_WINDOW, SketchEvaluator, eye_window, format_table
from training.train_cyclegan import CycleGAN, CycleGANOptions, FakePool, training_loop

TINY = dict(g_ch=4, f_ch=4, d_ch=4, z_dim=8)


def _cond(hair: list[int], eye: list[int]) -> torch.Tensor:
    return tag_condition(torch.tensor(hair), torch.tensor(eye))


def _sketch(b: int) -> torch.Tensor:
    return DoodleSet.from_bitmaps(draw_doodles(b)).sketches()


@pytest.fixture(scope="module")
def G() -> SketchToFace:
    torch.manual_seed(0)
    return SketchToFace(SketchGANConfig(**TINY)).eval()


def test_shapes_of_every_network():
    cfg = SketchGANConfig(**TINY)
    sketch = torch.ones(3, 1, 64, 64)
    face = SketchToFace(cfg)(sketch, torch.randn(3, cfg.z_dim), _cond([0, 1, 2], [0, 1, 2]))
    assert face.shape == (3, 3, 64, 64) and face.abs().max() <= 1
    assert FaceToSketch(cfg)(face).shape == (3, 1, 64, 64)
    patch, hair, eye = FaceDiscriminator(cfg)(face)
    assert patch.shape == (3, 1, 8, 8) and hair.shape == (3, 12) and eye.shape == (3, 10)
    assert PatchDiscriminator(1, cfg.d_ch)(sketch).shape == (3, 1, 8, 8)


def test_tags_and_noise_change_the_face_and_a_seed_repeats_it(G):
    s = _sketch(2)
    z = torch.randn(1, 8, generator=torch.Generator().manual_seed(5)).repeat(2, 1)
    with torch.no_grad():
        by_tags = G(s[:1].repeat(2, 1, 1, 1), z, _cond([7, 11], [9, 8]))  # pink/blue vs blonde/red
        by_z = G(s[:1].repeat(2, 1, 1, 1), torch.randn(2, 8), _cond([7, 7], [9, 9]))
        again = G(s[:1].repeat(2, 1, 1, 1), z, _cond([7, 11], [9, 8]))
    assert (by_tags[0] - by_tags[1]).abs().mean() > 1e-3
    assert (by_z[0] - by_z[1]).abs().mean() > 1e-3
    assert torch.equal(by_tags, again)
    with torch.no_grad():  # a batch of one gives the same face as inside a batch (instance norm, no batch stats)
        assert torch.allclose(G(s[:1], z[:1], _cond([7], [9])), by_tags[:1], atol=1e-5)


def test_losses_are_finite_and_reach_both_generators():
    torch.manual_seed(0)
    model = CycleGAN(CycleGANOptions(data="", doodles="", run="", **TINY))
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    lines = torch.ones(4, 1, 64, 64)
    d = _sketch(2).repeat(2, 1, 1, 1)
    hair, eye = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3])
    out = model.generator_losses(x, lines, lines, hair, eye, d, hair, eye)
    out["loss"].backward()
    assert all(torch.isfinite(v).all() for v in out.values())
    assert model.G.net.out.weight.grad.abs().sum() > 0 and model.F.net.out.weight.grad.abs().sum() > 0
    d_out = model.discriminator_losses(x, hair, eye, d, out["_fake_faces"].detach(), out["_fake_sketches"].detach())
    assert all(torch.isfinite(v) for v in d_out.values())


def test_whole_face_score_moves_every_patch_and_feature_matching_reaches_G():
    """Issue #17 2(a): a D_face that also sees the whole face, and faces from doodles pulled towards real faces'
    features; both off by default (the bundled recipe)."""
    torch.manual_seed(0)
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    plain = FaceDiscriminator(SketchGANConfig(**TINY))
    whole = FaceDiscriminator(SketchGANConfig(**TINY), whole_face=True)
    whole.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        shift = whole(x)[0] - plain(x)[0]
    assert shift.abs().min() > 0  # the same offset on all 64 patches of a face
    assert torch.allclose(shift, shift[:, :, :1, :1].expand_as(shift))

    model = CycleGAN(CycleGANOptions(data="", doodles="", run="", fm_weight=1.0, whole_face_d=True, **TINY))
    lines = torch.ones(4, 1, 64, 64)
    hair, eye = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3])
    model.D_face.requires_grad_(False)
    out = model.generator_losses(x, lines, lines, hair, eye, _sketch(2).repeat(2, 1, 1, 1), hair, eye)
    assert out["fm"] > 0
    out["fm"].backward()
    assert model.G.net.out.weight.grad.abs().sum() > 0


def test_a_run_can_start_from_a_sketch_weights_file(face_data_dir, doodle_npy, tmp_path):
    """The bundled sketch model keeps no run folder: --init from its .safetensors starts G (and its EMA) there."""
    torch.manual_seed(1)
    parent = SketchToFace(SketchGANConfig(**TINY))
    save_module(parent, tmp_path / "parent.safetensors", parent.cfg.to_dict())
    opts = _opts(face_data_dir, doodle_npy, tmp_path / "run", steps=1, init=str(tmp_path / "parent.safetensors"),
                 lr=1e-12, whole_face_d=True, fm_weight=1.0)
    out = training_loop(opts, progress=False)
    G, _ = load_module(out)
    for k, v in parent.state_dict().items():  # one step at a vanishing learning rate: still the parent
        assert torch.allclose(G.state_dict()[k].float(), v, atol=2e-3), k


def test_fake_pool_fills_then_mixes_old_and_new():
    torch.manual_seed(0)
    pool = FakePool(4)
    first = torch.arange(4.0).view(4, 1)
    assert torch.equal(pool.query(first), first) and len(pool.images) == 4
    out = pool.query(torch.full((16, 1), 9.0))
    assert len(pool.images) == 4 and (out == 9).any() and (out < 9).any()


@pytest.fixture(scope="module")
def doodle_npy(tmp_path_factory):
    path = tmp_path_factory.mktemp("doodles") / "doodles.npy"
    np.save(path, draw_doodles(24))
    return path


def _opts(face_data_dir, doodle_npy, run, **kw) -> CycleGANOptions:
    base = dict(data=str(face_data_dir), doodles=str(doodle_npy), run=str(run), batch=4, snapshot_every=2,
                sample_every=3, log_every=1, threads=1, d_real_batch=8, **TINY)
    return CycleGANOptions(**{**base, **kw})


def _steps(run) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]


def test_tiny_run_writes_the_run_folder_exports_and_resumes(face_data_dir, doodle_npy, tmp_path):
    run = tmp_path / "run"
    out = training_loop(_opts(face_data_dir, doodle_npy, run, steps=3), progress=False)
    assert _steps(run) == [1, 2, 3]
    for name in ("options.json", "snapshot.pt", "loss.png", "fakes000003.png", "face2sketch.safetensors"):
        assert (run / name).stat().st_size > 0, name
    with pytest.raises(FileExistsError, match="--resume"):
        training_loop(_opts(face_data_dir, doodle_npy, run, steps=5), progress=False)
    training_loop(_opts(face_data_dir, doodle_npy, run, steps=5), resume=True, progress=False)
    assert _steps(run) == [1, 2, 3, 4, 5]
    assert torch.load(run / "snapshot.pt", weights_only=True)["step"] == 5

    G, meta = load_module(out)
    assert isinstance(G, SketchToFace) and meta["config"]["arch"] == "sketch2face" and meta["step"] == 5
    Fn, _ = load_module(run / "face2sketch.safetensors")
    with torch.no_grad():
        face = G(_sketch(1), torch.randn(1, 8), _cond([7], [9]))
        assert face.shape == (1, 3, 64, 64) and Fn(face).shape == (1, 1, 64, 64)


def test_exported_weights_roundtrip_in_fp16(G, tmp_path):
    path = tmp_path / "sketch.safetensors"
    save_module(G, path, G.cfg.to_dict(), step=0)
    loaded, meta = load_module(path)
    assert read_metadata(path)["config"]["arch"] == "sketch2face"
    args = (_sketch(1), torch.randn(1, 8), _cond([0], [0]))
    with torch.no_grad():
        assert (loaded(*args) - G(*args)).abs().max() < 2e-2


def test_eye_window_keeps_the_eyes_and_greys_the_rest():
    faces = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    seen = eye_window(faces)
    rows, cols = EYE_WINDOW
    assert torch.equal(seen[:, :, rows, cols], faces[:, :, rows, cols])
    outside = torch.ones(64, 64, dtype=torch.bool)
    outside[rows, cols] = False
    assert (seen[:, :, outside] == 128).all() and outside.sum() > 64 * 64 // 2  # a corner blob is not seen


def test_sketch_metrics_keys_and_ranges(G, face_data_dir, doodle_npy):
    torch.manual_seed(0)
    tagger = Tagger(TaggerConfig(ch=4, feature_dim=16)).eval()
    heldout = FaceDataset.load(face_data_dir, "heldout", progress=False)
    ev = SketchEvaluator.build(tagger, heldout, heldout_faces(face_data_dir), DoodleSet.load(doodle_npy, "heldout"))
    r = ev.evaluate(G)
    assert r == ev.evaluate(G)  # deterministic
    for name in ("doodle", "line"):
        assert 0 <= r[f"{name}_hair_acc"] <= 1 and 0 <= r[f"{name}_eye_acc"] <= 1
        assert r[f"{name}_eye_window_ratio"] >= 0
        assert r[f"{name}_hair_ratio"] >= 0 and 1 <= r[f"{name}_free_hair_colours"] <= 12
        assert r[f"{name}_fd"] >= 0
    assert r["fd"] >= 0 and r["images"] == 12 + len(heldout_faces(face_data_dir))
    assert "hair / ceiling" in format_table({**r, "model": "tiny"})


def test_cli_trains_resumes_and_evaluates_a_sketch_generator(face_data_dir, doodle_npy, tmp_path, capsys):
    from bot.cli import main

    run = tmp_path / "cli-run"
    common = ["--data", str(face_data_dir), "--run", str(run), "--threads", "1", "--batch", "4", "--quiet"]
    assert main(["train", "cyclegan", *common, "--steps", "1"]) == 2  # no doodles
    assert "--doodles" in capsys.readouterr().err
    assert main(["train", "cyclegan", *common, "--doodles", str(doodle_npy), "--steps", "1"]) == 0
    assert main(["train", "cyclegan", *common, "--steps", "2", "--resume"]) == 0
    assert torch.load(run / "snapshot.pt", weights_only=True)["step"] == 2
    assert json.loads((run / "options.json").read_text())["doodles"] == str(doodle_npy)
    fork = tmp_path / "fork"  # a copied run folder fine-tunes in the copy, with a changed crude share
    shutil.copytree(run, fork)
    assert main(["train", "cyclegan", *common[:2], "--run", str(fork), "--steps", "3", "--resume",
                 "--crude-share", "1", "--quiet"]) == 0
    assert torch.load(fork / "snapshot.pt", weights_only=True)["step"] == 3
    assert torch.load(run / "snapshot.pt", weights_only=True)["step"] == 2
    assert json.loads((fork / "resumes.jsonl").read_text().splitlines()[-1])["crude_share"] == 1
    fine = tmp_path / "fine"  # a new run started from another's networks (--steps 0: just the start)
    assert main(["train", "cyclegan", *common[:2], "--run", str(fine), "--doodles", str(doodle_npy), "--steps", "0",
                 "--init", str(run / "snapshot.pt"), "--quiet"]) == 0
    start, source = (torch.load(r / "snapshot.pt", weights_only=True) for r in (fine, run))
    assert start["step"] == 0 and all(torch.equal(v, source["G_ema"][k]) for k, v in start["G_ema"].items())
    capsys.readouterr()
    weights = str(run / "generator.safetensors")
    assert main(["evaluate", "--weights", weights, "--data", str(face_data_dir)]) == 2
    assert main(["evaluate", "--weights", weights, "--data", str(face_data_dir), "--doodles", str(doodle_npy)]) == 0
    assert "hair colours, none asked" in capsys.readouterr().out
