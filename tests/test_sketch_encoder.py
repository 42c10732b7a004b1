"""The sketch encoder (#17, 2b): rough drawings of generated faces, training and resume, weights, the sketch
kind's encoder path end to end, and the [generator] sketch_mode switch."""

import asyncio
import json
import shutil

import numpy as np
import pytest
import torch

from bot.cli import main
from bot.config import SKETCH_MODES as CONFIG_MODES, ConfigError, load_config
from bot.runner import configured_weights
from fakes.bot_parts import tiny_upscaler_weights
from generator.images import from_pil, to_uint8
from generator.models import tag_condition
from generator.model_check import check_weights
from generator.models.sketch_encoder import SketchEncoder, SketchEncoderConfig, on_prior_shell
from generator.requests import SketchRequest
from generator.sampler import SKETCH_MODES, SketchSampler, UpscalerSampler, latent
from generator.service import GeneratorService, ServiceOptions
from generator.weights import face_reference, find_face, load_module, read_metadata, save_module
from test_sketch_data import draw_doodles
from test_sketch_input import drawing, encoded
from training.rough_drawings import HELDOUT_FIRST_SEED, eye_centres, rough_of_face
from training.train_sketch_encoder import SketchEncoderOptions, training_loop


def _encoder_file(path, face_file, seed=0, version="enc-v1"):
    torch.manual_seed(seed)
    E = SketchEncoder(SketchEncoderConfig(z_dim=128, ch=4)).eval()
    save_module(E, path, E.cfg.to_dict(), step=seed, version=version, face=face_reference(face_file))
    return path


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory, tiny_generator_file):
    return _encoder_file(tmp_path_factory.mktemp("enc") / "enc.safetensors", tiny_generator_file)


def test_eyes_are_found_where_a_face_has_them_and_drawn_there():
    face = torch.full((1, 3, 64, 64), 0.8)  # flat skin with two dark eyes off their usual places
    for x, y in ((20, 35), (45, 29)):
        face[0, :, y - 2:y + 3, x - 2:x + 3] = -1.0
    eyes = eye_centres(face)[0]
    assert torch.allclose(eyes, torch.tensor([[20.0, 35.0], [45.0, 29.0]]), atol=1.0)

    sketch = rough_of_face(eyes, 7)
    assert sketch.shape == (64, 64) and np.array_equal(sketch, rough_of_face(eyes, 7))  # a seed repeats it
    assert not np.array_equal(sketch, rough_of_face(eyes, 8))
    ink = sketch < 0
    assert ink[25:45, 10:30].any() and ink[19:39, 35:55].any()  # eyes drawn round where the face has them
    with pytest.raises(ValueError, match="yardstick"):
        rough_of_face(eyes, HELDOUT_FIRST_SEED)


def test_training_steps_are_finite_and_a_resumed_run_matches_a_straight_one(tmp_path, tiny_generator_file):
    def run(name, steps, resume=False):
        opts = SketchEncoderOptions(run=str(tmp_path / name), face=str(tiny_generator_file), steps=steps,
                                    batch=4, ch=4, threads=1, device="cpu", log_every=1, sample_every=2)
        return training_loop(opts, resume=resume, progress=False)

    straight = run("straight", 4)
    run("resumed", 2)
    resumed = run("resumed", 4, resume=True)
    rows = [json.loads(line) for line in (tmp_path / "straight" / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(r[k]) for r in rows for k in ("latent", "nll", "consistency"))
    assert (tmp_path / "straight" / "fakes000004.png").exists()
    a, b = load_module(straight)[0].state_dict(), load_module(resumed)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    meta = read_metadata(straight)
    assert meta["step"] == 4 and meta["face"] == face_reference(tiny_generator_file)


def test_an_encoder_trains_against_a_128_px_face_model_and_serves_its_128_px_faces(tmp_path):
    """Drawings and the consistency term work at 64 px; /sketch gets the face model's own 128 px faces, and the
    yardstick compares them shrunk to 64 px."""
    from generator.models import face_gan
    from training.sketch_metrics import convert

    torch.manual_seed(0)
    G = face_gan.Generator(face_gan.Config(g_ch=4, size=128)).eval()
    with torch.no_grad():
        G.detail128.weight.normal_(0, 0.5)  # a grown model: the 128 px detail is not zero
    face_file = tmp_path / "face128.safetensors"
    save_module(G, face_file, G.cfg.to_dict(), step=1, version="face128-v1")
    opts = SketchEncoderOptions(run=str(tmp_path / "run"), face=str(face_file), steps=2, batch=4, ch=4, threads=1,
                                device="cpu", log_every=1, sample_every=2)
    weights = training_loop(opts, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["consistency"]) and r["consistency"] > 0 for r in rows)

    sampler = SketchSampler.load(weights, "cpu")
    sketch = torch.from_numpy(rough_of_face(torch.tensor([[22.0, 30.0], [42.0, 30.0]]), 1))[None, None]
    faces = sampler.faces(sketch, [7], [9], [5])
    assert faces.shape == (1, 3, 128, 128)
    shrunk = convert(sampler.G, sketch, torch.tensor([7]), torch.tensor([9]), latent(5, 128)[None])
    assert shrunk.shape == (1, 3, 64, 64)
    assert (shrunk.float() - faces.float().view(1, 3, 64, 2, 64, 2).mean((3, 5))).abs().mean() < 8


def test_weights_round_trip_and_name_the_face_model_they_need(tmp_path, encoder_file, tiny_generator_file):
    E, meta = load_module(encoder_file)
    assert isinstance(E, SketchEncoder) and meta["config"]["arch"] == "sketch-encoder"
    torch.manual_seed(0)
    fresh = SketchEncoder(SketchEncoderConfig(z_dim=128, ch=4)).eval()
    assert all(torch.equal(v.half().float(), E.state_dict()[k]) for k, v in fresh.state_dict().items()
               if v.is_floating_point())
    s = torch.ones(2, 1, 64, 64)
    assert torch.allclose(E.latent(s).norm(dim=1), torch.full((2,), 128 ** 0.5))  # on the prior's shell
    seeds = torch.randn(2, 128)
    assert not torch.equal(E.latent(s, seeds), E.latent(s))  # the seed's latent fills in its share...
    E.cfg.noise = 0.0
    assert torch.equal(E.latent(s, seeds), E.latent(s))  # ...and with none, the drawing alone decides

    copy = tmp_path / "run" / "enc.safetensors"  # a copied run folder with its face model beside it
    copy.parent.mkdir()
    shutil.copy(encoder_file, copy)
    assert find_face(meta["face"], copy) == tiny_generator_file
    moved = {**meta["face"], "file": str(tmp_path / "gone" / tiny_generator_file.name)}
    shutil.copy(tiny_generator_file, copy.parent / tiny_generator_file.name)
    assert find_face(moved, copy) == copy.parent / tiny_generator_file.name
    (copy.parent / tiny_generator_file.name).write_bytes(b"another face model")
    with pytest.raises(ValueError, match="trained against the face model tiny@0"):
        find_face(moved, copy)


def test_the_encoder_path_draws_the_face_generator_face_in_the_colours_asked(encoder_file, tiny_generator_file):
    sampler = SketchSampler.load(encoder_file, "cpu")
    assert sampler.version == "enc-v1" and sampler.z_dim == 128
    sketch = torch.from_numpy(np.stack([rough_of_face(torch.tensor([[22.0, 30.0], [42.0, 30.0]]), 1)]))[:, None]
    faces = sampler.faces(sketch.repeat(2, 1, 1, 1), [7, 11], [9, 8], [5, 5])  # pink/blue, blonde/red
    assert faces.shape == (2, 3, 64, 64) and faces.dtype == torch.uint8

    E, _ = load_module(encoder_file)
    G, _ = load_module(tiny_generator_file)
    with torch.no_grad():
        z = E.latent(sketch.repeat(2, 1, 1, 1), torch.stack([latent(5, 128)] * 2))
        expected = G(z, tag_condition(torch.tensor([7, 11]), torch.tensor([9, 8])))
    assert torch.equal(faces, to_uint8(expected))
    assert not torch.equal(faces[0], faces[1])  # the colours reach the generator


def test_a_running_service_swaps_the_cyclegan_for_an_encoder_as_the_sketch_kind(encoder_file, tiny_generator_file,
                                                                                 tiny_sketch_file):
    assert check_weights(encoder_file) == "sketch"  # what `moebot models promote` checks first

    async def go():
        async with GeneratorService({"face": tiny_generator_file, "sketch": tiny_sketch_file},
                                    ServiceOptions(threads=1)) as svc:
            before = await svc.sketch(torch.ones(1, 1, 64, 64), [3], [4], [9])
            await svc.promote(encoder_file, "sketch")
            return before, await svc.sketch(torch.ones(1, 1, 64, 64), [3], [4], [9]), svc.models["sketch"]

    before, drawn, loaded = asyncio.run(go())
    eager = SketchSampler.load(encoder_file, "cpu").faces(torch.ones(1, 1, 64, 64), [3], [4], [9])
    assert before.version == "sketch-v1" and drawn.version == loaded.version == "enc-v1" and loaded.z_dim == 128
    assert (drawn.images.int() - eager.int()).abs().max() <= 1


def test_sketch_mode_picks_the_encoder_or_the_cyclegan(tmp_path, encoder_file, tiny_sketch_file, monkeypatch,
                                                        capsys):
    assert set(CONFIG_MODES) == set(SKETCH_MODES)
    (tmp_path / "empty.toml").write_text("")
    default = load_config(tmp_path / "empty.toml", {}).generator.sketch_mode  # the default mode serves by default
    assert SketchSampler.bundled == SKETCH_MODES[default] == SKETCH_MODES["encoder"]
    monkeypatch.setitem(SKETCH_MODES, "encoder", encoder_file)  # the bundled weights of each mode
    monkeypatch.setitem(SKETCH_MODES, "cyclegan", tiny_sketch_file)
    monkeypatch.setattr(SketchSampler, "bundled", encoder_file)
    drawn = tmp_path / "in.png"
    drawn.write_bytes(encoded(drawing()))
    for mode, version, weights in (("encoder", "enc-v1", None), ("cyclegan", "sketch-v1", str(tiny_sketch_file))):
        config = tmp_path / f"{mode}.toml"
        config.write_text(f'[generator]\nsketch_mode = "{mode}"\n')
        assert configured_weights(load_config(config, {}))["sketch"] == weights
        assert main(["--config", str(config), "sketch", str(drawn), "--out", str(tmp_path / f"{mode}.png")]) == 0
        assert f"(model {version})" in capsys.readouterr().out
    (tmp_path / "bad.toml").write_text('[generator]\nsketch_mode = "gan"\n')
    with pytest.raises(ConfigError, match="sketch_mode must be encoder or cyclegan"):
        load_config(tmp_path / "bad.toml", {})


def test_cli_trains_an_encoder_against_the_face_model_named_and_evaluates_it(tmp_path, tiny_generator_file,
                                                                             face_data_dir, capsys):
    doodles = tmp_path / "doodles.npy"
    np.save(doodles, draw_doodles(24))
    run = tmp_path / "run"
    common = ["train", "sketch-encoder", "--run", str(run), "--threads", "1", "--batch", "2", "--quiet"]
    assert main([*common, "--face", str(tiny_generator_file), "--steps", "1"]) == 0
    assert main([*common, "--steps", "2", "--resume", "--noise", "0.5"]) == 0
    weights = run / "sketch-encoder.safetensors"
    meta = read_metadata(weights)
    assert meta["step"] == 2 and meta["face"]["version"] == "tiny@0" and meta["config"]["noise"] == 0.5
    capsys.readouterr()
    assert main(["evaluate", "--weights", str(weights), "--data", str(face_data_dir), "--doodles", str(doodles)]) == 0
    assert "hair colours, none asked" in capsys.readouterr().out


def test_a_sketch_shown_at_128_px_goes_through_the_active_upscaler(encoder_file, tiny_generator_file, tmp_path):
    up = tiny_upscaler_weights(tmp_path / "up.safetensors", version="up-v1")
    pad = np.ones((64, 64), np.float32)

    async def go():
        async with GeneratorService({"face": tiny_generator_file, "sketch": encoder_file, "upscaler": up},
                                    ServiceOptions(threads=1)) as svc:
            return [await svc.pictures(SketchRequest(pad, 3, 4, 9, size)) for size in (64, 128)]

    small, large = asyncio.run(go())
    face = SketchSampler.load(encoder_file, "cpu").faces(torch.from_numpy(pad)[None, None], [3], [4], [9])
    eager = from_pil(large.images[0])[None].int() - UpscalerSampler.load(up, "cpu").draw(face).int()
    assert small.version == "enc-v1" and small.images[0].size == (64, 64)
    assert large.version == "enc-v1+up-v1" and large.images[0].size == (128, 128) and eager.abs().max() <= 1
