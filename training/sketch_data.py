"""The sketch domain: QuickDraw doodles and line art drawn from the faces.

Convention everywhere in the sketch models: a sketch is (B, 1, 64, 64) float,
dark ink = -1 on white paper = +1 (the way people draw on paper or a phone).

- Doodles: Quick, Draw! "smiley face" bitmaps, (N, 28, 28) uint8 white strokes
  on black. Upscaled to 64 (bilinear, so a stroke is ~4 px wide), then each
  training batch gets a small random affine (rotation, scale, shift) and a
  stroke-width jitter (the ink threshold moves), so crude phone doodles of
  any stroke width look familiar.
- Line art: XDoG edges (Winnemöller et al. 2012) of a face's luminance. It is
  a pure function of the face, a few milliseconds per batch of 64, so it is
  computed with each batch instead of being cached; it gives the trainer
  (line art, face) pairs, which the public sketch CycleGAN did not have.
- Crude line art: what a doodler would keep of a face, paired with it. The
  strongest colour edges (eyes first, then hair and face outlines) are cut to
  the doodles' 28x28 grid and drawn back with the doodles' pipeline, so eyes
  become blobs and dots and the rest a few thick broken strokes. Clean line
  art alone taught G to keep a doodle's strokes and colour around them (smiley
  faces); these pairs teach it to grow anime eyes out of dots and to fill the
  space between sparse strokes with hair and skin.

Held-out sets, fixed and never trained on: 200 doodles (a seeded permutation of
the file) and the line art of 200 held-out faces (a seeded permutation of the
face set's held-out split).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from training.dataset import FaceDataset

HELDOUT = 200
SPLIT_SEED = 0
# XDoG parameters for 64x64 anime faces: the sharpened difference of Gaussians
# (1 + p) G_sigma - p G_{k sigma}, soft-thresholded at eps with slope phi
XDOG_SIGMA, XDOG_K, XDOG_P, XDOG_EPS, XDOG_PHI = 0.5, 1.6, 20.0, 0.3, 20.0
INK_THRESHOLD = 0.35  # doodle ink level that becomes half-dark; training jitters it
INK_SLOPE = 4.0       # 1/width of the soft edge of a stroke in ink units
DOODLE_SIZE = 28      # the Quick, Draw! bitmap side
# crude line art: Gaussian sigma before the gradient, share of a face's pixels that are edges, and the share of
# a 28-grid cell that must be edge for the cell to be inked (QuickDraw strokes cover ~17% of a doodle)
CRUDE_SIGMA, CRUDE_EDGE_SHARE, CRUDE_CELL_FILL = 1.0, 0.08, 0.25


def ink_to_sketch(ink: torch.Tensor) -> torch.Tensor:
    """Ink amount in [0, 1] -> the sketch convention (ink -1, paper +1)."""
    return 1.0 - 2.0 * ink


def _gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, 1, H, W) with replicated borders (no dark frame at the edges)."""
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=img.dtype, device=img.device)
    k = torch.exp(-t ** 2 / (2 * sigma * sigma))
    k = k / k.sum()
    img = F.pad(img, (r, r, r, r), mode="replicate")
    return F.conv2d(F.conv2d(img, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))


def line_art(faces: torch.Tensor) -> torch.Tensor:
    """XDoG line art of faces (B, 3, 64, 64), float in [-1, 1] -> sketches (B, 1, 64, 64); deterministic."""
    lum = (0.299 * faces[:, 0:1] + 0.587 * faces[:, 1:2] + 0.114 * faces[:, 2:3] + 1) / 2  # [0, 1]
    s = (1 + XDOG_P) * _gaussian_blur(lum, XDOG_SIGMA) - XDOG_P * _gaussian_blur(lum, XDOG_SIGMA * XDOG_K)
    paper = torch.where(s >= XDOG_EPS, torch.ones_like(s), 1 + torch.tanh(XDOG_PHI * (s - XDOG_EPS)))
    return paper.clamp(0, 1) * 2 - 1


def colour_edges(faces: torch.Tensor, sigma: float = CRUDE_SIGMA) -> torch.Tensor:
    """Gradient magnitude (Sobel, summed over R, G, B) of blurred faces (B, 3, H, W) -> (B, 1, H, W).

    Colour rather than luminance: a pink fringe on pale skin is a strong edge with little luminance contrast."""
    b, c, h, w = faces.shape
    smooth = _gaussian_blur(faces.reshape(b * c, 1, h, w), sigma)
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=faces.dtype, device=faces.device)
    grad = F.conv2d(F.pad(smooth, (1, 1, 1, 1), mode="replicate"), torch.stack([sobel, sobel.t()])[:, None])
    return grad.pow(2).sum(1).reshape(b, c, h, w).sum(1, keepdim=True).sqrt()


def upscale_ink(ink: torch.Tensor) -> torch.Tensor:
    """Doodle-grid ink (B, 1, 28, 28) -> 64x64, bilinear: a one-cell stroke becomes a ~4 px soft stroke."""
    return F.interpolate(ink, size=(64, 64), mode="bilinear", align_corners=False)


def crude_ink(faces: torch.Tensor) -> torch.Tensor:
    """Faces (B, 3, 64, 64) in [-1, 1] -> 64x64 ink in [0, 1] of their crude line art; deterministic.

    The top ``CRUDE_EDGE_SHARE`` of each face's colour edges, inked on the 28x28 doodle grid where they fill a
    ``CRUDE_CELL_FILL`` share of a cell, then upscaled the way doodles are; ``render_ink`` draws it."""
    edges = colour_edges(faces)
    cut = edges.flatten(1).quantile(1 - CRUDE_EDGE_SHARE, dim=1).view(-1, 1, 1, 1)
    cells = F.interpolate((edges > cut).to(faces.dtype), size=(DOODLE_SIZE, DOODLE_SIZE), mode="area")
    return upscale_ink((cells > CRUDE_CELL_FILL).to(faces.dtype))


def stroke_jitter(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random ink thresholds for ``render_ink`` (0.15-0.6): training strokes from thick to thin."""
    return 0.15 + 0.45 * torch.rand(n, generator=generator)


def render_ink(ink: torch.Tensor, threshold: torch.Tensor | float = INK_THRESHOLD) -> torch.Tensor:
    """Soft-threshold an upscaled ink map into strokes; a lower threshold draws thicker strokes."""
    if isinstance(threshold, torch.Tensor):
        threshold = threshold.view(-1, 1, 1, 1)
    return ink_to_sketch(((ink - threshold) * INK_SLOPE + 0.5).clamp(0, 1))


def augment_ink(ink: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random rotation (±10°), scale (0.9-1.1) and shift (±4 px) of (B, 1, 64, 64) ink maps; no ink enters."""
    b = ink.shape[0]
    u = torch.rand(b, 4, generator=generator) * 2 - 1
    angle, scale, shift = u[:, 0] * math.radians(10), 1 + 0.1 * u[:, 1], u[:, 2:] * (4 / 32)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(ink.shape), align_corners=False)
    return F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def split_indices(n: int, heldout: int = HELDOUT, seed: int = SPLIT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) indices: the first ``heldout`` of a seeded permutation are held out."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[heldout:], perm[:heldout]


@dataclass
class DoodleSet:
    ink: torch.Tensor  # (N, 1, 64, 64) uint8 ink amount (255 = full ink), upscaled from 28x28

    def __len__(self) -> int:
        return self.ink.shape[0]

    @classmethod
    def from_bitmaps(cls, bitmaps: np.ndarray) -> "DoodleSet":
        """(N, h, w) uint8 white strokes on black (the QuickDraw layout) -> 64x64 ink maps."""
        x = torch.from_numpy(np.ascontiguousarray(bitmaps)).float()[:, None]
        return cls(upscale_ink(x).round().clamp(0, 255).to(torch.uint8))

    @classmethod
    def load(cls, path: str | Path, split: Literal["train", "heldout"] = "train") -> "DoodleSet":
        """The train or held-out doodles of an .npy file of QuickDraw bitmaps (read without pickle)."""
        bitmaps = np.load(path, allow_pickle=False)
        if bitmaps.ndim != 3 or bitmaps.dtype != np.uint8:
            raise ValueError(f"{path}: expected (N, H, W) uint8 doodles, got {bitmaps.shape} {bitmaps.dtype}")
        train, heldout = split_indices(len(bitmaps), min(HELDOUT, len(bitmaps) // 2))
        return cls.from_bitmaps(bitmaps[(train if split == "train" else heldout).numpy()])

    def sketches(self, idx: torch.Tensor | slice = slice(None)) -> torch.Tensor:
        """Clean sketches (no augmentation): what evaluation converts."""
        return render_ink(self.ink[idx].float() / 255)

    def augmented(self, idx: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Training sketches: random affine, stroke-width jitter (threshold 0.15-0.6) and horizontal flips."""
        ink = augment_ink(self.ink[idx].float() / 255, generator)
        b = ink.shape[0]
        threshold = stroke_jitter(b, generator)
        flip = torch.rand(b, generator=generator) < 0.5
        ink = torch.where(flip[:, None, None, None], ink.flip(3), ink)
        return render_ink(ink, threshold)


def heldout_faces(data_dir: str | Path, progress: bool = False) -> FaceDataset:
    """The 200 held-out faces whose line art is the held-out line-drawing set (fixed by a seeded permutation)."""
    faces = FaceDataset.load(data_dir, "heldout", progress=progress)
    _, pick = split_indices(len(faces), min(HELDOUT, len(faces)))
    return FaceDataset(faces.images[pick], faces.hair[pick], faces.eye[pick])
