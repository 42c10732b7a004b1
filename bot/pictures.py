"""Every chat picture as a file, in one place: faces, grids, a drawing beside its face, morphs, model grids.

What the generator service answers (``generator.requests.Pictures``: PIL images at display
size) and pictures on disk become PNG or GIF bytes here, with PIL only (no torch). These are
CPU work: run them off the event loop (``DrawingService.encode`` or a thread).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PIL import Image

from generator.picture_files import gif_bytes, png_bytes, tile, upscale
from generator.requests import Pictures


def faces_png(drawn: Pictures) -> bytes:
    """One face alone, several two a row."""
    return png_bytes(drawn.images[0] if len(drawn.images) == 1 else tile(drawn.images, 2))


def grid_png(drawn: Pictures) -> bytes:
    """The cells of a sampling-mode grid, ``columns`` a row."""
    return png_bytes(tile(drawn.images, drawn.columns))


def morph_gif(drawn: Pictures) -> bytes:
    return gif_bytes(list(drawn.images))


def beside_png(drawing: Image.Image, drawn: Pictures, size: int) -> bytes:
    """A drawing as read and the face painted from it, each at ``size`` px, side by side."""
    return png_bytes(tile([upscale(drawing.convert("RGB"), size), drawn.images[0]], 2))


def enlarged_png(img: Image.Image, size: int) -> bytes:
    """A 64x64 face (a submission, a training item) at display size."""
    return png_bytes(upscale(img.convert("RGB"), size))


def face_file_png(path: Path, size: int) -> bytes:
    """A face file at display size; OSError when it is missing."""
    with Image.open(path) as img:
        return enlarged_png(img, size)


def row_png(paths: Sequence[Path]) -> bytes:
    """Pictures side by side, each at the first one's size (the newest models' before/after grids)."""
    images = [Image.open(p).convert("RGB") for p in paths]
    return png_bytes(tile([img.resize(images[0].size) for img in images], len(images)))
