"""Pictures to files, without torch: display upscaling, tiling, PNGs and animated GIFs.

The bot renders its chat pictures with these (``bot.pictures``) and never imports torch;
``generator.images`` turns tensors into the PIL images these take.
"""

from __future__ import annotations

import io
from typing import Sequence

from PIL import Image


def upscale(img: Image.Image, size: int) -> Image.Image:
    """Display size: Lanczos keeps edges crisp where nearest-neighbour would look blocky."""
    if img.width == size and img.height == size:
        return img
    return img.resize((size, size), Image.Resampling.LANCZOS)


def tile(images: Sequence[Image.Image], ncol: int, pad: int = 2) -> Image.Image:
    """Same-sized images row by row, ``ncol`` per row, ``pad`` pixels apart on a white background."""
    w, h = images[0].size
    nrow = (len(images) + ncol - 1) // ncol
    canvas = Image.new("RGB", (ncol * (w + pad) + pad, nrow * (h + pad) + pad), "white")
    for i, img in enumerate(images):
        r, c = divmod(i, ncol)
        canvas.paste(img, (pad + c * (w + pad), pad + r * (h + pad)))
    return canvas


def grid_cell(img: Image.Image, index: int, ncol: int, pad: int = 2) -> Image.Image:
    """Cell ``index`` of a picture tiled from square cells, ``ncol`` per row (``tile``, ``generator.images.grid``):
    one face back out."""
    side = (img.width - pad) // ncol - pad
    r, c = divmod(index, ncol)
    left, top = pad + c * (side + pad), pad + r * (side + pad)
    return img.crop((left, top, left + side, top + side))


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
