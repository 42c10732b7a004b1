"""Rough faces drawn the way a person draws them with a mouse on the playground's sketch pad.

The pad (bot/web/static/index.html and app.js) is a 256x256 white canvas shown at 256 CSS pixels. Every
pointer move adds one point to the current stroke, and each stroke is drawn as a black polyline 4 px wide
with round caps and joins; a click without a move leaves a round dot. A mouse reports about one move per
frame (~60 a second), so a hand that circles a head in under a second leaves points 5-14 px apart: straight
segments with corners, each point off by the hand's tremor.

``rough_drawing(seed)`` draws such a face from a seed: a wobbly head outline that may stop short of closing
or overrun its start, two eyes (dots, blobs, small circles, dashes, upright lines or arcs), often a mouth,
sometimes hair strokes; the same seed always gives the same pixels. It records where it put the face and
the eyes, on the pad and in the 64x64 sketch, so a model's output can be checked against the drawing's
layout (training/sketch_metrics.py).

The 64x64 sketch is exactly what the bot makes of the pad's PNG (generator/sketch_input.normalise_sketch:
cut to the drawing with a margin, padded to a square, thickened, shrunk), and the recorded positions go
through the same cut and scale. Strokes are drawn without anti-aliasing, so the ink the bot finds is
exactly the black pixels and the mapping is exact.

Seeds from HELDOUT_FIRST_SEED on are the yardstick's: anything that trains on rough drawings draws below it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from generator.images import png_bytes
from generator.sketch_input import SIZE, drawing_box, normalise_sketch

PAD = 256          # the pad canvas's side (index.html)
STROKE = 4         # its line width (app.js)
STEP = (5.0, 14.0)  # px of arc between pointer samples: one move per frame at a drawing hand's speed
TREMOR = 1.0       # px, standard deviation of each sample's jitter
HELDOUT_FIRST_SEED = 1_000_000

Box = tuple[float, float, float, float]  # x0, y0, x1, y1
Point = tuple[float, float]              # x, y


@dataclass(frozen=True)
class Layout:
    """Where a drawing put the face and the eyes, in one picture's pixel coordinates (pixel k's centre is k)."""

    face: Box                        # bounding box of the head outline as intended (before the wobble)
    eyes: tuple[Point, Point]        # eye centres, the left one (smaller x) first
    eye_boxes: tuple[Box, Box]       # bounding boxes of the eye strokes, ink width included

    def mapped(self, scale: float, left: float, top: float) -> "Layout":
        """The layout after the picture is cut at (left, top) and scaled by ``scale`` (area coordinates)."""
        def x(v: float) -> float:
            return (v + 0.5 - left) * scale - 0.5

        def y(v: float) -> float:
            return (v + 0.5 - top) * scale - 0.5

        def box(b: Box) -> Box:
            return x(b[0]), y(b[1]), x(b[2]), y(b[3])

        (ax, ay), (bx, by) = self.eyes
        return Layout(box(self.face), ((x(ax), y(ay)), (x(bx), y(by))),
                      (box(self.eye_boxes[0]), box(self.eye_boxes[1])))


@dataclass(frozen=True)
class RoughDrawing:
    seed: int
    strokes: tuple[np.ndarray, ...]  # pointer samples (K, 2) of each stroke, x and y in pad pixels
    pad: Image.Image                 # the pad's picture: "L", PAD x PAD, black strokes on white
    sketch: np.ndarray               # (64, 64) float32, the model's convention (ink -1, paper +1)
    pad_layout: Layout
    layout: Layout                   # in the 64x64 sketch's pixels


@dataclass(frozen=True)
class RoughSet:
    """Rough drawings as the sketch evaluation takes them."""

    sketches: torch.Tensor  # (N, 1, 64, 64)
    faces: torch.Tensor     # (N, 4) face boxes x0, y0, x1, y1 in the sketch's pixels
    eyes: torch.Tensor      # (N, 2, 2) eye centres (x, y), left eye first

    def __len__(self) -> int:
        return self.sketches.shape[0]

    def first(self, n: int) -> "RoughSet":
        return RoughSet(self.sketches[:n], self.faces[:n], self.eyes[:n])


def _pointer(curve: np.ndarray, rng: np.random.Generator, step: tuple[float, float] = STEP) -> np.ndarray:
    """Pointer samples along a dense ideal curve (M, 2): one every ``step`` px of arc, each off by tremor."""
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
    at = [0.0]
    while at[-1] < arc[-1]:
        at.append(at[-1] + rng.uniform(*step))
    at[-1] = arc[-1]  # the pointer is lifted where the curve ends
    points = np.stack([np.interp(at, arc, curve[:, k]) for k in (0, 1)], 1)
    return np.clip(points + rng.normal(0, TREMOR, points.shape), 0, PAD - 1)


def _ellipse(cx: float, cy: float, rx: float, ry: float, start: float, sweep: float,
             radius: np.ndarray | float = 1.0, n: int = 200) -> np.ndarray:
    """Dense points of an elliptic arc from angle ``start`` through ``sweep`` (radians; y grows downwards),
    the radii scaled per point by ``radius``."""
    t = start + sweep * np.linspace(0, 1, n)
    return np.stack([cx + rx * radius * np.cos(t), cy + ry * radius * np.sin(t)], 1)


def _line(a: Point, b: Point, bend: float = 0.0, n: int = 40) -> np.ndarray:
    """Dense points from a to b, bowed sideways by ``bend`` px at the middle (a quadratic Bezier)."""
    a_, b_ = np.asarray(a, float), np.asarray(b, float)
    d = b_ - a_
    mid = (a_ + b_) / 2 + bend * np.array([-d[1], d[0]]) / max(np.linalg.norm(d), 1e-6)
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * a_ + 2 * t * (1 - t) * mid + t ** 2 * b_


def _head(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """One stroke round the head: a slow wobble of the radius, and a drift so that the end misses the start;
    the sweep falls short of a full turn or overruns it."""
    sweep = rng.uniform(0.85, 1.08) * 2 * np.pi * rng.choice([-1, 1])
    t = np.linspace(0, 1, 200)
    phases = rng.uniform(0, 2 * np.pi, 2)
    wobble = (rng.uniform(0, 0.05) * np.sin(2 * 2 * np.pi * t + phases[0])
              + rng.uniform(0, 0.04) * np.sin(3 * 2 * np.pi * t + phases[1]))
    radius = 1 + wobble + rng.uniform(-0.08, 0.08) * t
    return _pointer(_ellipse(cx, cy, rx, ry, rng.uniform(0, 2 * np.pi), sweep, radius), rng)


EYE_STYLES = ("dot", "blob", "circle", "dash", "upright", "arc")
HAIR_STYLES = ("bangs", "spikes", "long")


def _eye(rng: np.random.Generator, style: str, x: float, y: float, k: float) -> list[np.ndarray]:
    """The strokes of one eye centred at (x, y), sized by ``k`` (the head's radius / 80)."""
    if style == "dot":
        return [np.array([[x, y]]) + rng.normal(0, TREMOR, (1, 2))]
    if style == "blob":  # a dot pressed and wiggled
        r = rng.uniform(2, 5) * k
        return [_pointer(_ellipse(x, y, r, r, rng.uniform(0, 2 * np.pi), 3 * np.pi * rng.choice([-1, 1]),
                                  np.linspace(1, 0.3, 200)), rng, (2.0, 5.0))]
    if style == "circle":
        r = rng.uniform(4, 10) * k
        return [_pointer(_ellipse(x, y, r, r * rng.uniform(0.8, 1.3), rng.uniform(0, 2 * np.pi),
                                  rng.uniform(0.9, 1.15) * 2 * np.pi), rng, (3.0, 7.0))]
    if style == "dash":
        half, tilt = rng.uniform(4, 10) * k, rng.uniform(-0.25, 0.25)
        d = half * np.array([np.cos(tilt), np.sin(tilt)])
        return [_pointer(_line((x - d[0], y - d[1]), (x + d[0], y + d[1])), rng, (3.0, 8.0))]
    if style == "upright":
        half = rng.uniform(4, 9) * k
        return [_pointer(_line((x, y - half), (x, y + half), rng.uniform(-2, 2)), rng, (3.0, 8.0))]
    r = rng.uniform(5, 10) * k  # "arc": a closed happy eye, an upward bow
    return [_pointer(_ellipse(x, y + r / 2, r, r * 0.8, np.pi, np.pi), rng, (3.0, 7.0))]


def _mouth(rng: np.random.Generator, x: float, y: float, k: float) -> list[np.ndarray]:
    w = rng.uniform(12, 35) * k
    style = rng.choice(["smile", "line", "open", "frown"])
    if style == "smile":
        return [_pointer(_ellipse(x, y - w / 3, w, w * 0.6, 0.15 * np.pi, 0.7 * np.pi), rng)]
    if style == "frown":
        return [_pointer(_ellipse(x, y + w / 3, w, w * 0.5, 1.15 * np.pi, 0.7 * np.pi), rng)]
    if style == "open":
        return [_pointer(_ellipse(x, y, w * 0.4, w * 0.3, rng.uniform(0, 2 * np.pi), 2 * np.pi), rng, (3.0, 8.0))]
    return [_pointer(_line((x - w / 2, y), (x + w / 2, y + rng.normal(0, 2)), rng.uniform(-3, 3)), rng)]


def _hair(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float, above: float,
          styles: tuple[str, ...] = HAIR_STYLES) -> list[np.ndarray]:
    """Hair strokes round the top of the head, in one of ``styles``: bangs into the forehead that stop above
    y = ``above``, spikes above the head, or long strands that fall past the cheeks (these move the drawing's
    bounding box, so the face no longer fills the sketch)."""
    style = rng.choice(styles)

    def on_head(angle: float, scale: float = 1.0) -> Point:
        return cx + scale * rx * np.cos(angle), cy + scale * ry * np.sin(angle)

    if style == "bangs":
        out = []
        for a in np.sort(rng.uniform(-0.85 * np.pi, -0.15 * np.pi, rng.integers(3, 8))):
            start = on_head(a, rng.uniform(0.95, 1.05))
            end = (start[0] + (cx - start[0]) * rng.uniform(0.1, 0.3), rng.uniform(min(start[1] + 10, above), above))
            out.append(_pointer(_line(start, end, rng.uniform(-8, 8)), rng))
        return out
    if style == "spikes":
        n = int(rng.integers(5, 10))
        angles = np.linspace(-0.95 * np.pi, -0.05 * np.pi, 2 * n + 1)
        scale = np.where(np.arange(2 * n + 1) % 2 == 1, rng.uniform(1.15, 1.4, 2 * n + 1), 1.0)
        corners = np.array([on_head(a, s) for a, s in zip(angles, scale)])
        dense = np.concatenate([_line(corners[i], corners[i + 1], n=12) for i in range(len(corners) - 1)])
        return [_pointer(dense, rng)]
    out = []
    for side in (-1, 1):
        for _ in range(int(rng.integers(1, 3))):
            top = on_head(-np.pi / 2 + side * rng.uniform(0.1, 0.6), rng.uniform(1.0, 1.1))
            end = (cx + side * rx * rng.uniform(1.05, 1.35), cy + ry * rng.uniform(0.5, 1.2))
            out.append(_pointer(_line(top, end, -side * rng.uniform(10, 30)), rng))
    return out


def _mouth_and_hair(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float, eye_y: float,
                    turn: float, hair_styles: tuple[str, ...] = HAIR_STYLES) -> list[np.ndarray]:
    """Often a mouth below the eyes, sometimes hair: the strokes a drawing adds after the head and the eyes."""
    strokes, k = [], rx / 80
    if rng.random() < 0.7:
        strokes += _mouth(rng, cx + 0.8 * turn, cy + ry * rng.uniform(0.35, 0.6), k)
    if rng.random() < 0.5:
        strokes += _hair(rng, cx, cy, rx, ry, eye_y - 0.2 * ry, hair_styles)
    return strokes


def _render(strokes: tuple[np.ndarray, ...]) -> Image.Image:
    """The strokes as the pad draws them: black, STROKE px, round caps and joins, a dot for a lone point."""
    img = Image.new("L", (PAD, PAD), 255)
    draw = ImageDraw.Draw(img)
    r = STROKE / 2
    for stroke in strokes:
        points = [tuple(p) for p in stroke.tolist()]
        if len(points) > 1:
            draw.line(points, fill=0, width=STROKE, joint="curve")
        for x, y in (points[0], points[-1]):  # round caps (a lone point: the dot)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
    return img


def _box(points: np.ndarray) -> Box:
    lo, hi = points.min(0) - STROKE / 2, points.max(0) + STROKE / 2
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def rough_drawing(seed: int) -> RoughDrawing:
    """One rough face from ``seed`` (deterministic), on the pad and as the bot's 64x64 sketch of it."""
    rng = np.random.default_rng(seed)
    rx = rng.uniform(55, 95)
    ry = rx * rng.uniform(0.85, 1.2)
    cx, cy = PAD / 2 + rng.normal(0, 12), PAD / 2 + rng.uniform(-10, 20)
    k = rx / 80
    strokes = [_head(rng, cx, cy, rx, ry)]
    eye_y = cy + ry * rng.uniform(-0.35, 0.05)
    spread, turn = rx * rng.uniform(0.25, 0.45), rx * rng.uniform(-0.15, 0.15)
    style = rng.choice(EYE_STYLES)
    eyes, eye_boxes = [], []
    for side in (-1, 1):
        x, y = cx + turn + side * spread, eye_y + rng.normal(0, 0.03 * ry)
        drawn = _eye(rng, style, x, y, k)
        strokes += drawn
        eyes.append((float(x), float(y)))
        eye_boxes.append(_box(np.concatenate(drawn)))
    strokes += _mouth_and_hair(rng, cx, cy, rx, ry, eye_y, turn)
    strokes_t = tuple(strokes)
    pad = _render(strokes_t)
    pad_layout = Layout((cx - rx, cy - ry, cx + rx, cy + ry), (eyes[0], eyes[1]), (eye_boxes[0], eye_boxes[1]))
    sketch = normalise_sketch(png_bytes(pad)).pixels
    return RoughDrawing(seed, strokes_t, pad, sketch, pad_layout, _in_sketch(pad, pad_layout))


def _in_sketch(pad: Image.Image, layout: Layout) -> Layout:
    """``layout`` moved the way normalise_sketch moves the pad's ink: cut to drawing_box, padded to a centred
    square, shrunk to SIZE."""
    top, bottom, left, right = drawing_box(np.asarray(pad) < 128)
    side = max(bottom - top, right - left)
    return layout.mapped(SIZE / side, left - (side - (right - left)) // 2, top - (side - (bottom - top)) // 2)


def rough_set(n: int, first_seed: int = HELDOUT_FIRST_SEED) -> RoughSet:
    """The rough drawings of seeds ``first_seed`` .. ``first_seed + n - 1`` as tensors."""
    drawings = [rough_drawing(first_seed + i) for i in range(n)]
    return RoughSet(torch.from_numpy(np.stack([d.sketch for d in drawings]))[:, None],
                    torch.tensor([d.layout.face for d in drawings]),
                    torch.tensor([d.layout.eyes for d in drawings]))


# Rough drawings of generated faces (the sketch encoder's training pairs, training/train_sketch_encoder.py): the
# face picture (64 px) is laid on the pad at 4 pad pixels a face pixel, a head outline drawn round it and each
# eye drawn where the face has its eye, so the bot's sketch of the pad puts the eyes about where the face has them.
FACE_SCALE = PAD / SIZE
EYE_PRIOR = ((23.0, 32.0), (41.0, 32.0))  # where the aligned 64 px faces' eyes usually are (x, y)
EYE_PRIOR_SIGMA = 5.0                      # px: how far from there an eye is looked for


def eye_centres(faces: torch.Tensor) -> torch.Tensor:
    """(B, 2, 2) eye centres (x, y), left eye first, of faces (B, 3, 64, 64) in [-1, 1]: the centroid of the
    squared colour edges (eyes are the sharpest detail of a face) under a Gaussian round each usual eye place."""
    from training.sketch_data import colour_edges  # training data code, not needed to draw the yardstick's sets

    weight = colour_edges(faces)[:, 0] ** 2  # (B, 64, 64)
    ys, xs = torch.meshgrid(torch.arange(SIZE, dtype=faces.dtype), torch.arange(SIZE, dtype=faces.dtype),
                            indexing="ij")
    out = []
    for px, py in EYE_PRIOR:
        w = weight * torch.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * EYE_PRIOR_SIGMA ** 2))
        w = w / w.sum((1, 2), keepdim=True).clamp_min(1e-8)
        out.append(torch.stack([(w * xs).sum((1, 2)), (w * ys).sum((1, 2))], 1))
    return torch.stack(out, 1)


def rough_of_face(eyes: torch.Tensor, seed: int) -> np.ndarray:
    """The bot's 64x64 sketch of a rough drawing of a face whose eyes (2, 2) (face pixels, left first) are
    known: head, eyes, maybe a mouth and bangs, in the pad's strokes. Seeds must stay below HELDOUT_FIRST_SEED."""
    if seed >= HELDOUT_FIRST_SEED:
        raise ValueError(f"seeds from {HELDOUT_FIRST_SEED:,} on are the yardstick's")
    rng = np.random.default_rng(seed)
    (lx, ly), (rx_, ry_) = (FACE_SCALE * eyes).tolist()
    rx = FACE_SCALE * rng.uniform(22, 28)
    ry = rx * rng.uniform(0.95, 1.15)
    cx, cy = (lx + rx_) / 2 + rng.normal(0, 4), PAD / 2 + rng.uniform(-4, 12)
    strokes = [_head(rng, cx, cy, rx, ry)]
    style = rng.choice(EYE_STYLES)
    for x, y in ((lx, ly), (rx_, ry_)):
        strokes += _eye(rng, style, x, y, rx / 80)
    strokes += _mouth_and_hair(rng, cx, cy, rx, ry, (ly + ry_) / 2, (lx + rx_) / 2 - cx, ("bangs",))
    return normalise_sketch(png_bytes(_render(tuple(strokes)))).pixels
