"""The tagged faces of a data directory as uint8 tensors, split into train and held-out.

The held-out split is fixed by content hash (one image in ten), so it never
changes as data is added and the evaluation classifier, the GAN trainer and
the promotion gate all agree on which faces they must not train on.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

import migrations
from training.sql import Sql

DB_NAME = "moebot.db"
Split = Literal["train", "heldout", "all"]
TAG_CONFIDENCE = 0.6  # the classifier's readings of untagged faces below this train without colour labels


def is_heldout(sha256: str) -> bool:
    return int(sha256[:8], 16) % 10 == 0


class FaceRow(NamedTuple):
    sha256: str
    path: str
    hair: int
    eye: int
    id: int
    status: str


def _tagged_sql(statuses: tuple[str, ...]) -> str:
    return (f"SELECT sha256, path, hair, eye, id, status FROM images WHERE hair IS NOT NULL AND size = 64 "
            f"AND status IN ({','.join('?' * len(statuses))}) ORDER BY id")


def in_split(rows: list[FaceRow], split: Split) -> list[FaceRow]:
    return rows if split == "all" else [r for r in rows if is_heldout(r.sha256) == (split == "heldout")]


def tagged_rows(conn: sqlite3.Connection, split: Split, statuses: tuple[str, ...]) -> list[FaceRow]:
    """The tagged 64 px images with one of ``statuses`` in the split, by id: what a dataset (or a run's record
    of its data) is made of; from the data directory's SQLite file (what `moebot train` reads)."""
    return in_split([FaceRow(*r) for r in conn.execute(_tagged_sql(statuses), statuses)], split)


async def read_tagged_rows(db: Sql, split: Split, statuses: tuple[str, ...]) -> list[FaceRow]:
    """``tagged_rows`` from the bot's database (SQLite or PostgreSQL), through the store's interface."""
    return in_split([FaceRow(*r) for r in await db.fetchall(_tagged_sql(statuses), statuses)], split)


def write_rows(path: Path, data_dir: Path, rows: list[FaceRow]) -> None:
    """A run's exact data (rows of ``data_dir``), for a training process that does not reach the bot's database:
    the bot reads the rows there, the process takes this file where it takes a data directory."""
    path.write_text(json.dumps({"data_dir": str(data_dir), "rows": [list(r) for r in rows]}))


def source_rows(data: Path, split: Split, statuses: tuple[str, ...]) -> tuple[Path, list[FaceRow]]:
    """(data directory, ``tagged_rows``): ``data`` is a data directory (its SQLite file is read) or a rows file."""
    if data.is_file():
        written = json.loads(data.read_text())
        rows = [row for r in written["rows"] if (row := FaceRow(*r)).status in statuses]
        return Path(written["data_dir"]), in_split(rows, split)
    conn = migrations.connect(data / DB_NAME)
    try:
        return data, tagged_rows(conn, split, statuses)
    finally:
        conn.close()


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
            images=torch.from_numpy(_cached_pixels(data_dir, f"faces-{split}", rows, progress)),
            hair=torch.tensor([r.hair for r in rows], dtype=torch.long),
            eye=torch.tensor([r.eye for r in rows], dtype=torch.long),
            curated=torch.tensor([r.status == "curated" for r in rows]),
        )

    @classmethod
    def load_size(cls, data_dir: str | Path, size: int, split: Split = "train", threshold: float = TAG_CONFIDENCE,
                  progress: bool = True) -> "FaceDataset":
        """Every ``size`` px face in the split (tagged or not). Tags read by the classifier below
        ``threshold`` become -1: such faces train without colour labels rather than with wrong ones."""
        data_dir = Path(data_dir)
        conn = migrations.connect(data_dir / DB_NAME)
        try:
            rows = conn.execute("SELECT sha256, path, hair, eye, tag_confidence FROM images WHERE size = ? "
                                "ORDER BY id", (size,)).fetchall()
        finally:
            conn.close()
        rows = [r for r in rows if split == "all" or is_heldout(r[0]) == (split == "heldout")]
        if not rows:
            raise ValueError(f"{data_dir}: no {size} px faces in the {split} split; run `moebot import --size {size}`")
        sure = [conf is None or conf >= threshold for *_, conf in rows]
        return cls(
            images=torch.from_numpy(_cached_pixels(data_dir, f"faces{size}-{split}", rows, progress)),
            hair=torch.tensor([r[2] if ok and r[2] is not None else -1 for r, ok in zip(rows, sure)]),
            eye=torch.tensor([r[3] if ok and r[3] is not None else -1 for r, ok in zip(rows, sure)]),
        )


def _cached_pixels(data_dir: Path, name: str, rows: list, progress: bool) -> np.ndarray:
    """The rows' images as one (N, 3, H, W) uint8 array, cached as one .npy per exact row set
    (rows start with (sha256, path)); one cache per name, since data only grows."""
    key = hashlib.sha256("".join(r[0] for r in rows).encode()).hexdigest()[:16]
    cache = data_dir / "cache" / f"{name}-{key}.npy"
    if cache.exists():
        return np.load(cache)
    pixels = np.stack([np.asarray(Image.open(data_dir / r[1]).convert("RGB")).transpose(2, 0, 1)
                       for r in tqdm(rows, desc=f"loading {name}", disable=not progress)])
    cache.parent.mkdir(exist_ok=True)
    for stale in cache.parent.glob(f"{name}-*.npy"):
        stale.unlink()
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, pixels)
    tmp.replace(cache)
    return pixels
