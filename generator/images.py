"""Tensors to pictures: uint8 conversion, grids (the files they become: ``generator.picture_files``)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from generator.picture_files import (gif_bytes, grid_cell, png_bytes, shared_palette, tile,  # noqa: F401 (their home)
                                     upscale)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float in [-1, 1] -> uint8 in [0, 255] on the CPU."""
    return images.detach().float().add(1).mul(127.5).round_().clamp_(0, 255).to(torch.uint8).cpu()


def to_pil(image: torch.Tensor, size: int | None = None) -> Image.Image:
    """One (3, H, W) uint8 tensor as a PIL image, upscaled with Lanczos to ``size`` when given."""
    img = Image.fromarray(image.permute(1, 2, 0).numpy(), "RGB")
    return upscale(img, size) if size else img


def resized(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, H, W) uint8 images at ``size`` x ``size`` through Lanczos (``to_pil``), e.g. a 128 px model's faces
    for the evaluation classifier's 64 px; as they are when already that size."""
    if images.shape[-2:] == (size, size):
        return images
    return torch.stack([from_pil(to_pil(image, size)) for image in images])


def grid(images: torch.Tensor, ncol: int, pad: int = 2, cell: int | None = None) -> Image.Image:
    """Tile (N, 3, H, W) uint8 images row by row, ``ncol`` per row, on a white background."""
    return tile([to_pil(image, cell) for image in images], ncol, pad)


def from_pil(img: Image.Image) -> torch.Tensor:
    """A PIL image as a (3, H, W) uint8 tensor, the layout ``grid`` tiles."""
    return torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1)
