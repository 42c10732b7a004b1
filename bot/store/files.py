"""The store's files: pictures, uploads and faces under the data directory, by content hash.

A file is fsynced before a row points at it, and written before the transaction that adds the row begins
(never inside one: SQLite's write lock, or PostgreSQL's row locks, would be held meanwhile). With several
processes or machines, the data directory is one shared path (README: "Several processes, one database").
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from PIL import Image

from generator.durable import write_durably
from generator.picture_files import grid_cell, upscale
from training.importer import pixel_hash, store_image

FILE_FOLDERS = ("pictures", "uploads", "faces")  # under data_dir: where the store writes files
FACE_SIZE = 128  # the side of a face kept from a chat picture


async def put_file(data_dir: Path, folder: str, data: bytes, suffix: str) -> tuple[str, str]:
    """Write ``data`` durably under ``folder/<2 hex>/<sha256><suffix>``; (sha256, path relative to data_dir)."""
    sha = hashlib.sha256(data).hexdigest()
    rel = Path(folder) / sha[:2] / f"{sha}{suffix}"
    await asyncio.to_thread(_write_once, data_dir / rel, data)
    return sha, rel.as_posix()


def _write_once(path: Path, data: bytes) -> None:
    """Once per content: atomic and fsynced, a crash leaves either no file or the whole file, never a torn one."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_durably(path, data)


def store_face(data_dir: Path, picture_path: str, cell: tuple[int, int] | None) -> tuple[str, str, int]:
    """The face of a stored chat picture, kept under faces/ like imported ones; (sha256, path, side in px).

    It is kept at 128 px, as a 128 px face model draws it (the chat shows it at display_size, 256 by default),
    or at 64 px when the picture shows it smaller; training reads it at the size each model needs."""
    with Image.open(data_dir / picture_path) as img:
        face = (grid_cell(img, *cell) if cell else img).convert("RGB")
    size = FACE_SIZE if min(face.size) >= FACE_SIZE else 64
    face = upscale(face, size)
    sha = pixel_hash(face)
    return sha, store_image(data_dir, face, sha), size


def remove_files(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
