"""The tagged faces of a data directory as uint8 tensors, split into train and held-out.

The held-out split is fixed by content hash (one image in ten), so it never
changes as data is added and the evaluation classifier, the GAN trainer and
the promotion gate all agree on which faces they must not train on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

import migrations
from generator.picture_files import upscale
from training.sql import Sql

DB_NAME = "moebot.db"
Split = Literal["train", "heldout", "all"]
TAG_CONFIDENCE = 0.6  # the classifier's readings of untagged faces below this train without colour labels


def is_heldout(sha256: str) -> bool:
    return int(sha256[:8], 16) % 10 == 0


class FaceRow(NamedTuple):
    sha256: str
    path: str
    hair: int | None  # None: untagged (a 128 px face the classifier has not read)
    eye: int | None
    id: int
    status: str
    size: int = 64                   # the file's side in pixels (rows files written before sizes: 64)
    confidence: float | None = None  # the classifier's, when it read the colours (None: a tag file or a person)


def _rows_sql(statuses: tuple[str, ...]) -> str:
    return (f"SELECT sha256, path, hair, eye, id, status, size, tag_confidence FROM images "
            f"WHERE status IN ({','.join('?' * len(statuses))}) ORDER BY id")


def of_size(rows: list[FaceRow], size: int) -> list[FaceRow]:
    """The faces a ``size`` px model trains or is measured on. At 64 px: the tagged faces stored at 64 and every
    tagged face from chat (curated faces are stored at 128 px, the chat picture's size, and read at 64); above:
    the faces stored at that size, tagged or not."""
    if size == 64:
        return [r for r in rows if r.hair is not None and (r.size == 64 or r.status != "base")]
    return [r for r in rows if r.size == size]


def in_split(rows: list[FaceRow], split: Split) -> list[FaceRow]:
    return rows if split == "all" else [r for r in rows if is_heldout(r.sha256) == (split == "heldout")]


async def read_rows(db: Sql, statuses: tuple[str, ...]) -> list[FaceRow]:
    """Every face with one of ``statuses``, of every size, from the bot's database (SQLite or PostgreSQL)."""
    return [FaceRow(*r) for r in await db.fetchall(_rows_sql(statuses), statuses)]


async def read_tagged_rows(db: Sql, split: Split, statuses: tuple[str, ...]) -> list[FaceRow]:
    """The 64 px set's images (``of_size``) with one of ``statuses`` in the split, by id, from the bot's database
    (SQLite or PostgreSQL), through the store's interface."""
    return in_split(of_size(await read_rows(db, statuses), 64), split)


def write_rows(path: Path, data_dir: Path, rows: list[FaceRow]) -> None:
    """A run's exact data (rows of ``data_dir``, of every size), for a training process that does not reach the
    bot's database: the bot reads the rows there, the process takes this file where it takes a data directory."""
    path.write_text(json.dumps({"data_dir": str(data_dir), "rows": [list(r) for r in rows]}))


def source_rows(data: Path, split: Split, statuses: tuple[str, ...], size: int = 64) -> tuple[Path, list[FaceRow]]:
    """(data directory, the ``size`` px set's rows with one of ``statuses`` in the split): ``data`` is a data
    directory (its SQLite file is read) or a rows file."""
    if data.is_file():
        written = json.loads(data.read_text())
        data, rows = Path(written["data_dir"]), [FaceRow(*r) for r in written["rows"]]
    else:
        conn = migrations.connect(data / DB_NAME)
        try:
            rows = [FaceRow(*r) for r in conn.execute(_rows_sql(statuses), statuses)]
        finally:
            conn.close()
    return data, in_split(of_size([r for r in rows if r.status in statuses], size), split)


@dataclass
class FaceDataset:
    images: torch.Tensor  # (N, 3, 64, 64) uint8
    hair: torch.Tensor    # (N,) int64
    eye: torch.Tensor     # (N,) int64
    curated: torch.Tensor | None = None  # (N,) bool: faces curated from chat rather than imported

    def __len__(self) -> int:
        return self.images.shape[0]

    @staticmethod
    def to_float(images: torch.Tensor) -> torch.Tensor:
        """uint8 [0, 255] -> float [-1, 1], the range every network here works in."""
        return images.float().div_(127.5).sub_(1.0)

    @classmethod
    def load(cls, data_dir: str | Path, split: Split = "train", statuses: tuple[str, ...] = ("base", "curated"),
             progress: bool = True) -> "FaceDataset":
        """The tagged images with one of ``statuses`` in the split, cached as one .npy per exact row set;
        ``data_dir`` may be a rows file instead (``write_rows``)."""
        data_dir, rows = source_rows(Path(data_dir), split, statuses)
        if not rows:
            raise ValueError(f"{data_dir}: no tagged images in the {split} split; run `moebot import` first")
        return cls(
            images=torch.from_numpy(_cached_pixels(data_dir, f"faces-{split}", rows, 64, progress)),
            hair=torch.tensor([r.hair for r in rows], dtype=torch.long),
            eye=torch.tensor([r.eye for r in rows], dtype=torch.long),
            curated=torch.tensor([r.status == "curated" for r in rows]),
        )

    @classmethod
    def load_size(cls, data_dir: str | Path, size: int, split: Split = "train", threshold: float = TAG_CONFIDENCE,
                  progress: bool = True, statuses: tuple[str, ...] = ("base",)) -> "FaceDataset":
        """Every ``size`` px face with one of ``statuses`` in the split (tagged or not); ``data_dir`` may be a
        rows file. Tags read by the classifier below ``threshold`` become -1: such faces train without colour
        labels rather than with wrong ones."""
        data_dir, rows = source_rows(Path(data_dir), split, statuses, size)
        if not rows:
            raise ValueError(f"{data_dir}: no {size} px faces in the {split} split; run `moebot import --size {size}`")
        sure = [r.confidence is None or r.confidence >= threshold for r in rows]
        # training with curated faces and the yardstick without them keep a cache each, not replacing each other's
        name = f"faces{size}{''.join('+' + s for s in sorted({r.status for r in rows} - {'base'}))}-{split}"
        return cls(
            images=torch.from_numpy(_cached_pixels(data_dir, name, rows, size, progress)),
            hair=torch.tensor([r.hair if ok and r.hair is not None else -1 for r, ok in zip(rows, sure)]),
            eye=torch.tensor([r.eye if ok and r.eye is not None else -1 for r, ok in zip(rows, sure)]),
            curated=torch.tensor([r.status == "curated" for r in rows]),
        )


def read_face(path: Path, size: int) -> np.ndarray:
    """A face file as (size, size, 3) uint8, whatever size it was stored at (Lanczos, as faces are shown)."""
    with Image.open(path) as img:
        return np.asarray(upscale(img.convert("RGB"), size))


def _cached_pixels(data_dir: Path, name: str, rows: list[FaceRow], size: int, progress: bool) -> np.ndarray:
    """The rows' images as one (N, 3, size, size) uint8 array, cached as one .npy per exact row set; one cache
    per name, since data only grows."""
    key = hashlib.sha256("".join(r[0] for r in rows).encode()).hexdigest()[:16]
    cache = data_dir / "cache" / f"{name}-{key}.npy"
    if cache.exists():
        return np.load(cache)
    pixels = np.stack([read_face(data_dir / r.path, size).transpose(2, 0, 1)
                       for r in tqdm(rows, desc=f"loading {name}", disable=not progress)])
    cache.parent.mkdir(exist_ok=True)
    for stale in cache.parent.glob(f"{name}-*.npy"):
        stale.unlink()
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, pixels)
    tmp.replace(cache)
    return pixels
