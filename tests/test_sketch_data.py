"""The sketch domain: doodles drawn here with PIL (no ../shared), XDoG line art of drawn faces."""

import random

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from conftest import draw_face
from training.dataset import FaceDataset
from training.sketch_data import DoodleSet, crude_ink, heldout_faces, line_art, render_ink, split_indices


def draw_doodles(n: int, seed: int = 0) -> np.ndarray:
    """(n, 28, 28) uint8 smiley doodles, white strokes on black like QuickDraw: a head circle, two dots, a smile."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        img = Image.new("L", (28, 28), 0)
        d = ImageDraw.Draw(img)
        j = lambda v: v + rng.uniform(-2, 2)  # noqa: E731
        d.ellipse([j(3), j(3), j(25), j(25)], outline=255, width=2)
        for x in (10, 17):
            d.ellipse([j(x), j(10), x + 2, 12], fill=255)
        d.arc([j(8), j(12), j(20), j(21)], 20, 160, fill=255, width=2)
        out.append(np.asarray(img))
    return np.stack(out)


@pytest.fixture(scope="session")
def doodle_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("doodles") / "doodles.npy"
    np.save(path, draw_doodles(40))
    return path


def test_doodles_become_dark_ink_on_white_64px(doodle_file):
    train, heldout = DoodleSet.load(doodle_file, "train"), DoodleSet.load(doodle_file, "heldout")
    assert len(train) == 20 and len(heldout) == 20  # at most half held out in small files
    s = heldout.sketches()
    assert s.shape == (20, 1, 64, 64) and s.min() >= -1 and s.max() <= 1
    ink = (s < 0).float().mean()
    assert 0.03 < ink < 0.4  # mostly paper, some strokes
    assert (s[:, :, :4, :4] == 1).all()  # the corners stay paper
    assert torch.equal(s, DoodleSet.load(doodle_file, "heldout").sketches())  # fixed


def test_augmentation_moves_strokes_and_jitters_their_width(doodle_file):
    doodles = DoodleSet.load(doodle_file, "train")
    idx = torch.arange(8)
    a = doodles.augmented(idx, torch.Generator().manual_seed(1))
    assert a.shape == (8, 1, 64, 64) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, doodles.augmented(idx, torch.Generator().manual_seed(1)))
    assert not torch.equal(a, doodles.augmented(idx, torch.Generator().manual_seed(2)))
    assert not torch.allclose(a, doodles.sketches(idx))
    ink_per_doodle = (a < 0).float().mean((1, 2, 3))
    assert ink_per_doodle.max() > 1.2 * ink_per_doodle.min()  # stroke widths differ


def test_split_is_fixed_and_disjoint():
    train, held = split_indices(1000)
    assert len(held) == 200 and len(train) == 800
    assert not set(held.tolist()) & set(train.tolist())
    assert torch.equal(held, split_indices(1000)[1])


def test_line_art_has_ink_on_the_face_edges_and_paper_elsewhere():
    img = draw_face("pink", "blue", seed=3)
    x = FaceDataset.to_float(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None])
    lines = line_art(x)
    assert lines.shape == (1, 1, 64, 64)
    assert torch.equal(lines, line_art(x))  # deterministic
    ink = lines[0, 0] < 0
    assert 0.02 < ink.float().mean() < 0.5  # not a blank page, not a black one
    # edges of the drawing: where the luminance changes between neighbours
    lum = x[0].mean(0)
    edge = torch.zeros(64, 64, dtype=torch.bool)
    edge[1:-1, 1:-1] = ((lum[2:, 1:-1] - lum[:-2, 1:-1]).abs() + (lum[1:-1, 2:] - lum[1:-1, :-2]).abs()) > 0.3
    near_edge = torch.nn.functional.max_pool2d(edge[None, None].float(), 3, 1, 1)[0, 0] > 0
    assert ink[near_edge].float().mean() > 3 * ink[~near_edge].float().mean()
    flat = torch.full((1, 3, 64, 64), 0.4)
    assert (line_art(flat) == 1).all()  # a flat image has no lines


def test_crude_line_art_keeps_the_eyes_as_blobs_and_little_else():
    img = draw_face("pink", "blue", seed=3)
    x = FaceDataset.to_float(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None])
    ink = crude_ink(x)
    assert ink.shape == (1, 1, 64, 64) and ink.min() >= 0 and ink.max() <= 1
    assert torch.equal(ink, crude_ink(x))  # deterministic: a pair for the paired loss
    inked = ink[0, 0] > 0.5
    assert 0.04 < inked.float().mean() < 0.3  # doodle-like coverage (QuickDraw strokes cover ~17%)
    eyes = torch.zeros(64, 64, dtype=torch.bool)
    eyes[28:43, 20:31] = eyes[28:43, 34:45] = True  # draw_face's eyes (outlined ellipses), with a margin
    assert inked[eyes].float().mean() > 2 * inked[~eyes].float().mean()
    sketch = render_ink(ink)
    assert sketch.min() >= -1 and sketch.max() <= 1 and (sketch < 0).any()
    assert (crude_ink(torch.full((1, 3, 64, 64), 0.4)) == 0).all()  # a flat image has no strokes


def test_heldout_line_faces_come_from_the_heldout_split(face_data_dir):
    faces = heldout_faces(face_data_dir)
    heldout = FaceDataset.load(face_data_dir, "heldout", progress=False)
    assert 0 < len(faces) <= min(200, len(heldout))
    rows = {bytes(im.numpy()) for im in heldout.images}
    assert all(bytes(im.numpy()) in rows for im in faces.images)


def test_load_refuses_what_is_not_a_doodle_array(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((4, 28), dtype=np.float32))
    with pytest.raises(ValueError, match="uint8"):
        DoodleSet.load(tmp_path / "bad.npy")
