"""The evaluation classifier and the figures built on it, on tiny drawn faces."""

import numpy as np
import pytest
import torch

from bot.cli import main
from generator.weights import load_module, read_metadata
from training.evaluate import evaluate_weights
from training.metrics import coverage, frechet_distance
from training.train_tagger import TaggerOptions, train_tagger


@pytest.fixture(scope="module")
def tagger_file(face_data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("tagger")
    return train_tagger(TaggerOptions(data=str(face_data_dir), run=str(run), epochs=12, batch=16, threads=1),
                        progress=False)


def test_tagger_learns_drawn_colours(tagger_file):
    meta = read_metadata(tagger_file)
    # the drawn faces have flat, distinct colours: a few tiny epochs read most of them
    assert meta["heldout_hair_acc"] > 0.5
    assert meta["heldout_images"] > 0 and meta["train_images"] > meta["heldout_images"]
    model, _ = load_module(tagger_file)
    assert model.cfg.n_hair == 12


def test_evaluate_is_deterministic_and_bounded(tiny_generator_file, face_data_dir, tagger_file):
    a = evaluate_weights(tiny_generator_file, face_data_dir, tagger_file, seed=0)
    b = evaluate_weights(tiny_generator_file, face_data_dir, tagger_file, seed=0)
    a.pop("_table"), b.pop("_table")
    assert a == b
    for key in ("hair_acc", "eye_acc", "real_hair_acc", "real_eye_acc"):
        assert 0.0 <= a[key] <= 1.0
    assert a["real_hair_acc"] > a["hair_acc"]  # an untrained generator is nowhere near the ceiling
    assert a["fd"] > 0 and 0 <= a["diversity"] <= 1 and 0 < a["real_diversity"] <= 1


def test_frechet_distance_of_a_set_with_itself_is_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(x, x + 1.0) == pytest.approx(8.0, rel=1e-6)


def test_coverage_punishes_collapse_and_noise_alike():
    g = torch.Generator().manual_seed(0)
    real, other_real = torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g)
    assert coverage(real, other_real) > 0.9
    collapsed = real[:1].repeat(400, 1) + 0.01 * torch.randn(400, 16, generator=g)
    assert coverage(real, collapsed) < 0.05
    noise = 10 * torch.randn(400, 16, generator=g)  # widely spread, far from the real faces
    assert coverage(real, noise) < 0.05


def test_cli_evaluate_prints_a_table(tiny_generator_file, face_data_dir, tagger_file, capsys):
    assert main(["evaluate", "--weights", str(tiny_generator_file), "--data", str(face_data_dir),
                 "--tagger", str(tagger_file)]) == 0
    out = capsys.readouterr().out
    assert "hair accuracy" in out and "Fréchet distance" in out
