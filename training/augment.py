"""DiffAugment (Zhao et al. 2020) for the discriminator: the same random, differentiable
augmentation applied to real and fake faces, so D cannot memorise a small set.

Only geometry (translation, cutout): colour jitter would change the hair and eye colours
that D's auxiliary classifiers must read.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def translate(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, padding with zeros (grey in [-1, 1])."""
    b, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sy, sy + 1, (b, 1, 1), device=x.device)
    tx = torch.randint(-sx, sx + 1, (b, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(gy[None] + ty + 1, 0, h + 1)
    gx = torch.clamp(gx[None] + tx + 1, 0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1))
    flat = gy * (w + 2) + gx  # (B, H, W) indices into the padded image
    return padded.flatten(2).gather(2, flat.flatten(1)[:, None].expand(-1, x.shape[1], -1)).view_as(x)


def cutout(x: torch.Tensor, ratio: float = 0.25) -> torch.Tensor:
    """Zero one square of ``ratio`` of the image's size at a random place in each image."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + 1 - ch % 2, (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + 1 - cw % 2, (b, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    inside = ((gy[None] - cy).abs() <= ch // 2) & ((gx[None] - cx).abs() <= cw // 2)
    return x * (~inside)[:, None].to(x.dtype)


def diff_augment(x: torch.Tensor) -> torch.Tensor:
    return cutout(translate(x))
