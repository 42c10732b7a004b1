"""Colours for untagged faces, read by the evaluation classifier, each with a confidence.

The 128 px set comes without tags. Every face is shrunk to the classifier's 64 px
input the way the importer shrinks faces, and its most likely hair and eye
colours are stored with ``tag_confidence``: the smaller of the two top
probabilities. Training trusts a reading only at or above a threshold; faces
below it train without colour labels (unconditionally) rather than with wrong ones.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from generator.models.tagger import Tagger
from generator.tags import EYE_COLORS, HAIR_COLORS
from training.dataset import TAG_CONFIDENCE as CONFIDENCE, FaceDataset
from training.sql import Sql, SqlDatabase, on_sqlite
from training.tag_predictor import SIZE, load_tagger

BATCH = 256


@dataclass
class TagReport:
    read: int = 0
    confident_hair: Counter = field(default_factory=Counter)  # colour index -> faces at or above the threshold
    unsure_hair: Counter = field(default_factory=Counter)     # colour index -> faces below it (best reading)
    confident_eye: Counter = field(default_factory=Counter)
    unsure_eye: Counter = field(default_factory=Counter)

    def summary(self, threshold: float = CONFIDENCE) -> str:
        n_conf = sum(self.confident_hair.values())
        lines = [f"read the colours of {self.read} faces: {n_conf} at confidence >= {threshold} train with "
                 f"those colours, {self.read - n_conf} without colour labels"]
        for what, names, conf, unsure in (("hair", HAIR_COLORS, self.confident_hair, self.unsure_hair),
                                          ("eyes", EYE_COLORS, self.confident_eye, self.unsure_eye)):
            cells = [f"{name} {conf[i]}/{conf[i] + unsure[i]}" for i, name in enumerate(names)]
            lines.append(f"  {what} (confident/read): " + ", ".join(cells))
        return "\n".join(lines)


@torch.no_grad()
def read_colours(tagger: Tagger, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hair, eye, confidence) for RGB faces of any size, read at the classifier's 64 px."""
    small = np.stack([np.asarray(img.resize((SIZE, SIZE), Image.Resampling.LANCZOS)).transpose(2, 0, 1)
                      for img in images])
    feats = tagger.embed(FaceDataset.to_float(torch.from_numpy(small)))
    p_hair, p_eye = tagger.head_hair(feats).softmax(1), tagger.head_eye(feats).softmax(1)
    (ph, hair), (pe, eye) = p_hair.max(1), p_eye.max(1)
    return hair.numpy(), eye.numpy(), torch.minimum(ph, pe).numpy()


def tag_untagged(conn: sqlite3.Connection, data_dir: Path, tagger: Tagger | None = None,
                 progress: bool = True) -> int:
    """``tag_untagged_in`` the data directory's SQLite file through ``conn``."""
    return on_sqlite(conn, lambda db: tag_untagged_in(db, data_dir, tagger, progress))


async def tag_untagged_in(db: SqlDatabase, data_dir: Path, tagger: Tagger | None = None,
                          progress: bool = True) -> int:
    """Read the colours of every untagged face above 64 px not read yet, in the bot's database (SQLite or
    PostgreSQL); returns how many. A rerun resumes."""
    tagger = (tagger or load_tagger()).eval()
    rows = await db.fetchall("SELECT id, path FROM images WHERE size > 64 AND hair IS NULL AND tag_confidence IS NULL "
                             "ORDER BY id")
    for start in tqdm(range(0, len(rows), BATCH), desc="reading colours", unit="batch", disable=not progress):
        chunk = rows[start:start + BATCH]
        hair, eye, conf = read_colours(tagger, [Image.open(data_dir / path).convert("RGB") for _, path in chunk])
        async with db.transaction() as tx:
            for (i, _), h, e, c in zip(chunk, hair, eye, conf):
                await tx.execute("UPDATE images SET hair = ?, eye = ?, tag_confidence = ? WHERE id = ?",
                                 (int(h), int(e), round(float(c), 4), i))
    return len(rows)


def colour_report(conn: sqlite3.Connection, size: int, threshold: float = CONFIDENCE) -> TagReport:
    """``colour_report_in`` the data directory's SQLite file through ``conn``."""
    return on_sqlite(conn, lambda db: colour_report_in(db, size, threshold))


async def colour_report_in(db: Sql, size: int, threshold: float = CONFIDENCE) -> TagReport:
    """How the classifier's readings of the ``size`` px faces fall either side of ``threshold``, per colour."""
    report = TagReport()
    for hair, eye, conf in await db.fetchall("SELECT hair, eye, tag_confidence FROM images WHERE size = ? "
                                             "AND tag_confidence IS NOT NULL", (size,)):
        sure = conf >= threshold
        (report.confident_hair if sure else report.unsure_hair)[hair] += 1
        (report.confident_eye if sure else report.unsure_eye)[eye] += 1
        report.read += 1
    return report
