"""Rough mouse drawings: the same seed draws the same pixels, and the recorded face and eyes are where the ink is."""

import numpy as np
import torch

from generator.images import png_bytes
from generator.sketch_input import normalise_sketch
from training.rough_drawings import PAD, RoughDrawing, rough_drawing, rough_set

SEEDS = range(30)


def _near_ink(ink: np.ndarray, points: np.ndarray, within: float) -> np.ndarray:
    """For each (x, y) point, whether an ink pixel lies within ``within`` px of it."""
    ys, xs = np.nonzero(ink)
    d2 = (points[:, None, 0] - xs[None]) ** 2 + (points[:, None, 1] - ys[None]) ** 2
    return d2.min(1) <= within ** 2


def _ellipse_points(box, n: int = 72) -> np.ndarray:
    x0, y0, x1, y1 = box
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([(x0 + x1) / 2 + (x1 - x0) / 2 * np.cos(t), (y0 + y1) / 2 + (y1 - y0) / 2 * np.sin(t)], 1)


def _box_has_ink(ink: np.ndarray, box) -> bool:
    x0, y0, x1, y1 = box
    return bool(ink[max(0, int(np.floor(y0))):int(np.ceil(y1)) + 1, max(0, int(np.floor(x0))):int(np.ceil(x1)) + 1].any())


def test_the_same_seed_draws_the_same_pixels():
    a, b, other = rough_drawing(7), rough_drawing(7), rough_drawing(8)
    assert a.pad.tobytes() == b.pad.tobytes() and np.array_equal(a.sketch, b.sketch)
    assert a.layout == b.layout and all(np.array_equal(s, t) for s, t in zip(a.strokes, b.strokes))
    assert a.pad.tobytes() != other.pad.tobytes() and a.layout != other.layout
    first, again = rough_set(4, first_seed=7), rough_set(4, first_seed=7)
    assert torch.equal(first.sketches, again.sketches) and torch.equal(first.eyes, again.eyes)
    assert np.array_equal(first.sketches[0, 0].numpy(), a.sketch)


def test_drawn_like_the_pad_and_read_like_its_upload():
    d = rough_drawing(3)
    assert d.pad.size == (PAD, PAD) and d.pad.mode == "L"
    assert set(np.unique(np.asarray(d.pad))) == {0, 255}  # black strokes on white, as the pad draws
    assert 0.01 < (np.asarray(d.pad) == 0).mean() < 0.2
    assert np.array_equal(d.sketch, normalise_sketch(png_bytes(d.pad)).pixels)  # what the bot makes of the PNG
    assert d.sketch.shape == (64, 64) and d.sketch.min() == -1 and d.sketch.max() == 1


def _check_layout(d: RoughDrawing, ink: np.ndarray, layout, px: float) -> None:
    """Both eye boxes hold ink, the eyes lie inside the face box, and the head stroke follows its ellipse."""
    assert all(_box_has_ink(ink, box) for box in layout.eye_boxes), d.seed
    x0, y0, x1, y1 = layout.face
    assert all(x0 < x < x1 and y0 < y < y1 for x, y in layout.eyes), d.seed
    assert layout.eyes[0][0] < layout.eyes[1][0]
    assert _near_ink(ink, _ellipse_points(layout.face), within=px).mean() >= 0.7, d.seed


def test_recorded_face_and_eyes_lie_on_the_ink():
    drawings = [rough_drawing(s) for s in SEEDS]
    for d in drawings:
        _check_layout(d, np.asarray(d.pad) == 0, d.pad_layout, px=10)
        _check_layout(d, d.sketch < 0, d.layout, px=2.5)
    eyes = np.array([d.layout.eyes for d in drawings])
    faces = np.array([d.layout.face for d in drawings])
    assert eyes.std(0).min() > 1 and faces.std(0).min() > 0.5  # placed differently from seed to seed
