"""Tensors to pictures: uint8 conversion, grids, display upscaling, animated GIFs."""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float in [-1, 1] -> uint8 in [0, 255] on the CPU."""
    return images.detach().float().add(1).mul(127.5).round_().clamp_(0, 255).to(torch.uint8).cpu()


def to_pil(image: torch.Tensor, size: int | None = None) -> Image.Image:
    """One (3, H, W) uint8 tensor as a PIL image, upscaled with Lanczos to ``size`` when given."""
    img = Image.fromarray(image.permute(1, 2, 0).numpy(), "RGB")
    return upscale(img, size) if size else img


def upscale(img: Image.Image, size: int) -> Image.Image:
    """Display size: Lanczos keeps edges crisp where nearest-neighbour would look blocky."""
    if img.width == size and img.height == size:
        return img
    return img.resize((size, size), Image.Resampling.LANCZOS)


def grid(images: torch.Tensor, ncol: int, pad: int = 2, cell: int | None = None) -> Image.Image:
    """Tile (N, 3, H, W) uint8 images row by row, ``ncol`` per row, on a white background."""
    n, _, h, w = images.shape
    if cell:
        h = w = cell
    nrow = (n + ncol - 1) // ncol
    canvas = Image.new("RGB", (ncol * (w + pad) + pad, nrow * (h + pad) + pad), "white")
    for i in range(n):
        r, c = divmod(i, ncol)
        canvas.paste(to_pil(images[i], cell), (pad + c * (w + pad), pad + r * (h + pad)))
    return canvas


def grid_cell(img: Image.Image, index: int, ncol: int, pad: int = 2) -> Image.Image:
    """Cell ``index`` of a picture that ``grid`` tiled from square cells, ``ncol`` per row: one face back out."""
    side = (img.width - pad) // ncol - pad
    r, c = divmod(index, ncol)
    left, top = pad + c * (side + pad), pad + r * (side + pad)
    return img.crop((left, top, left + side, top + side))


def from_pil(img: Image.Image) -> torch.Tensor:
    """A PIL image as a (3, H, W) uint8 tensor, the layout ``grid`` tiles."""
    return torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1)


def side_by_side(drawing: Image.Image, face: torch.Tensor, size: int) -> Image.Image:
    """A drawing and the (3, H, W) uint8 face painted from it, each shown at ``size`` pixels, in one picture."""
    return grid(torch.stack([from_pil(drawing), face]), 2, cell=size)


def png_bytes(img: Image.Image) -> bytes:
    """A chat picture's file: zlib's fastest level makes a 256 px face in 5 ms instead of 28 ms (Pillow's
    default level 6) for 80 KB instead of 68, CPU that a burst of pictures takes from answering commands."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def gif_bytes(frames: Sequence[Image.Image], frame_ms: int = 80, bounce: bool = True) -> bytes:
    """An endlessly looping GIF; ``bounce`` plays it forward then back so the loop has no jump.

    Every frame is mapped, undithered, onto one palette that a fast octree quantiser takes from a mosaic of all
    the frames at 128 px or less. Pillow's default, a median-cut palette per frame, took seconds for a morph
    (benchmarks/morph_speed.py, benchmarks/RESULTS.md), and looks no better on faces from a 64 px generator;
    one palette does not flicker between frames, nor does an undithered one.
    """
    palette = shared_palette(frames)
    coded = [f.convert("RGB").quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    seq = coded + (coded[-2:0:-1] if bounce else [])
    buf = io.BytesIO()
    seq[0].save(buf, format="GIF", save_all=True, append_images=seq[1:], duration=frame_ms, loop=0, disposal=2)
    return buf.getvalue()


def shared_palette(frames: Sequence[Image.Image], sample: int = 128) -> Image.Image:
    """A 256-colour palette image for all ``frames``: fast octree on their mosaic, each shrunk to ``sample`` px."""
    step = max(1, max(frames[0].size) // sample)
    cells = [f.convert("RGB").reduce(step) for f in frames]
    mosaic = Image.new("RGB", (cells[0].width, sum(c.height for c in cells)))
    for i, cell in enumerate(cells):
        mosaic.paste(cell, (0, i * cells[0].height))
    return mosaic.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
