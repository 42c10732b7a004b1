"""A few training steps on tiny drawn faces: finite losses, snapshots, grids, resume."""

import json

import pytest
import torch

from generator.weights import load_module, read_metadata
from training.train_acgan import TrainOptions, training_loop


def _opts(data_dir, run, **kw) -> TrainOptions:
    base = dict(data=str(data_dir), run=str(run), batch=8, g_ch=4, d_ch=4, snapshot_every=2, sample_every=3,
                log_every=1, threads=1)
    return TrainOptions(**{**base, **kw})


def _stats(run):
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


def test_default_preset_trains_and_writes_the_run_folder(face_data_dir, tmp_path):
    run = tmp_path / "run"
    out = training_loop(_opts(face_data_dir, run, steps=4), progress=False)
    stats = _stats(run)
    assert [s["step"] for s in stats] == [1, 2, 3, 4]
    for s in stats:
        assert all(v == v and abs(v) < 1e6 for k, v in s.items() if k != "time")  # finite, no NaN
    assert json.loads((run / "options.json").read_text())["preset"] == "default"
    for name in ("snapshot.pt", "generator.safetensors", "loss.png", "fakes000003.png", "fakes000004.png"):
        assert (run / name).stat().st_size > 0, name
    G, meta = load_module(out)
    assert meta["step"] == 4 and meta["preset"] == "default"
    with torch.no_grad():
        img = G(torch.randn(2, G.cfg.z_dim), torch.zeros(2, 22).index_fill_(1, torch.tensor([0, 12]), 1.0))
    assert img.shape == (2, 3, 64, 64) and torch.isfinite(img).all()


def test_resume_continues_from_the_snapshot(face_data_dir, tmp_path):
    run = tmp_path / "run"
    training_loop(_opts(face_data_dir, run, steps=2), progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        training_loop(_opts(face_data_dir, run, steps=4), progress=False)
    # a kill after step 3 (snapshot every 2) would leave stats past the snapshot: resume drops them
    with open(run / "stats.jsonl", "a") as f:
        f.write(json.dumps({"step": 3, "d_adv": 1.0}) + "\n")
    training_loop(_opts(face_data_dir, run, steps=4), resume=True, progress=False)
    assert [s["step"] for s in _stats(run)] == [1, 2, 3, 4]
    assert read_metadata(run / "generator.safetensors")["step"] == 4
    assert torch.load(run / "snapshot.pt", weights_only=True)["step"] == 4


def test_seed_acgan_preset_takes_a_step(face_data_dir, tmp_path):
    run = tmp_path / "seed"
    out = training_loop(_opts(face_data_dir, run, preset="seed-acgan", steps=1, batch=2), progress=False)
    assert _stats(run)[0]["step"] == 1
    assert read_metadata(out)["config"]["arch"] == "seed-acgan"


def test_minutes_budget_stops(face_data_dir, tmp_path):
    run = tmp_path / "timed"
    training_loop(_opts(face_data_dir, run, minutes=0.002, clock="cpu"), progress=False)
    assert read_metadata(run / "generator.safetensors")["step"] >= 1


def test_face_gan_preset_trains_resumes_and_exports_its_pair(face_data_dir, tmp_path):
    run = tmp_path / "face-gan"
    training_loop(_opts(face_data_dir, run, preset="face-gan", steps=2), progress=False)
    out = training_loop(_opts(face_data_dir, run, preset="face-gan", steps=3), resume=True, progress=False)
    assert [s["step"] for s in _stats(run)] == [1, 2, 3]
    assert all(v == v for s in _stats(run) for v in s.values())  # no NaN
    G, meta = load_module(out)
    assert meta["config"]["arch"] == "face-gan" and meta["step"] == 3
    D, d_meta = load_module(run / "discriminator.safetensors")
    assert d_meta["config"]["arch"] == "face-gan-d"
    with torch.no_grad():
        cond = torch.zeros(2, 22).index_fill_(1, torch.tensor([0, 12]), 1.0)
        img = G(torch.randn(2, G.cfg.z_dim), cond)
        realness, hair, eye = D(img, torch.tensor([0, 0]), torch.tensor([0, 0]))
    assert img.shape == (2, 3, 64, 64) and torch.isfinite(img).all()
    assert realness.shape == (2,) and hair.shape == (2, 12) and eye.shape == (2, 10)


def test_diff_augment_keeps_shape_and_moves_pixels():
    from training.augment import cutout, diff_augment, translate

    x = torch.rand(4, 3, 16, 16)
    assert diff_augment(x).shape == x.shape
    torch.manual_seed(0)
    cut = cutout(torch.ones(4, 3, 16, 16))
    assert ((cut == 0).flatten(1).sum(1) > 0).all()  # every image lost a square
    torch.manual_seed(1)
    moved = translate(x)
    assert not torch.equal(moved, x) and moved.shape == x.shape


def test_a_packed_run_resumes_where_it_stopped_on_another_machine(face_data_dir, tmp_path):
    from bot.cli import main

    run = tmp_path / "face-gan"
    training_loop(_opts(face_data_dir, run, preset="face-gan", steps=2), progress=False)
    packed = tmp_path / "commit" / "face-gan.safetensors"
    assert main(["runstate", "pack", str(run), str(packed)]) == 0
    assert packed.stat().st_size < (run / "snapshot.pt").stat().st_size / 2
    moved = tmp_path / "elsewhere"
    assert main(["runstate", "unpack", str(packed), str(moved)]) == 0
    assert main(["runstate", "unpack", str(packed), str(moved)]) == 1  # never over a run
    before, after = (torch.load(p / "snapshot.pt", weights_only=True) for p in (run, moved))
    assert after["step"] == 2 and after["elapsed"] == before["elapsed"] and torch.equal(after["rng"], before["rng"])
    for name, t in before["G"].items():
        assert torch.allclose(after["G"][name].float(), t.float(), atol=1e-2, rtol=1e-3), name
    training_loop(_opts(face_data_dir, moved, preset="face-gan", steps=3), resume=True, progress=False)
    assert [s["step"] for s in _stats(moved)] == [1, 2, 3]
    assert json.loads((moved / "options.json").read_text())["preset"] == "face-gan"


def test_a_fine_tune_takes_the_preset_and_widths_of_the_weights_it_starts_from(face_data_dir, tmp_path):
    first = tmp_path / "first"
    training_loop(_opts(face_data_dir, first, preset="face-gan", steps=1, g_ch=6, d_ch=5), progress=False)
    tune = tmp_path / "tune"  # the retrainer names no preset or widths: the parent's file says them
    out = training_loop(TrainOptions(data=str(face_data_dir), run=str(tune), steps=1, batch=8, threads=1,
                                     init=str(first / "generator.safetensors"),
                                     init_d=str(first / "discriminator.safetensors")), progress=False)
    config = read_metadata(out)["config"]
    assert (config["arch"], config["g_ch"], config["d_ch"]) == ("face-gan", 6, 5)
    assert json.loads((tune / "options.json").read_text())["preset"] == "face-gan"


def test_a_fine_tune_rate_for_g_keeps_the_presets_faster_d(face_data_dir, tmp_path):
    run = tmp_path / "tune"  # the retrainer sets only lr: face-gan's D must still learn 4x faster than G
    training_loop(_opts(face_data_dir, run, preset="face-gan", steps=1, lr=1e-5), progress=False)
    state = torch.load(run / "snapshot.pt", map_location="cpu", weights_only=True)
    lrs = {name: state[name]["param_groups"][0]["lr"] for name in ("opt_g", "opt_d")}
    assert lrs == pytest.approx({"opt_g": 1e-5, "opt_d": 4e-5})
    training_loop(_opts(face_data_dir, tmp_path / "set", preset="face-gan", steps=1, lr=1e-5, lr_d=3e-5),
                  progress=False)
    state = torch.load(tmp_path / "set" / "snapshot.pt", map_location="cpu", weights_only=True)
    assert state["opt_d"]["param_groups"][0]["lr"] == pytest.approx(3e-5)


def test_a_fine_tunes_g_rate_ramps_up_after_the_d_warmup(face_data_dir, tmp_path):
    """Fresh Adam moments first move every weight of a trained G by about lr at once; the ramp starts G gently."""
    run = tmp_path / "ramp"
    opts = dict(preset="face-gan", lr=1e-4, d_warmup=2, g_ramp=4, d_ramp=2, snapshot_every=1)
    lrs = []
    for steps in (1, 3, 4, 7):  # G's first step is step 2 (0-based): rate 1/4, then 2/4; from step 5 the full rate
        training_loop(_opts(face_data_dir, run, steps=steps, **opts), resume=steps > 1, progress=False)
        state = torch.load(run / "snapshot.pt", map_location="cpu", weights_only=True)
        lrs += [state["opt_g"]["param_groups"][0]["lr"], state["opt_d"]["param_groups"][0]["lr"]]
    assert lrs == pytest.approx([1e-4, 2e-4, 0.25e-4, 4e-4, 0.5e-4, 4e-4, 1e-4, 4e-4])  # (G, D) after each run
