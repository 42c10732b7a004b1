"""``moebot import PATH``: bring a folder of face images (tagged or not) into the data directory.

Every image is normalised to a square RGB face (64x64 by default, 128x128 for
the higher-resolution set), stored once by the SHA-256 of its pixels and recorded
in the database with its size. Files already handled by an earlier run of the
same import are skipped, so a killed import resumes where it stopped.

The rows go to the bot's database, SQLite or PostgreSQL (``[storage] url``), through the store's interface
(training/sql.py); the faces go to the data directory that every bot process shares.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import pickle
import secrets
import sqlite3
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from generator.tags import N_EYE, N_HAIR, parse_tag_text
from training.sql import Sql, SqlDatabase, on_sqlite

SIZE = 64  # the tagged set's resolution, and the default
SIZES = (64, 128)
MIN_SIDE = 32  # smaller pictures hold too little face to learn from
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
TAG_FILES = ("tags.csv", "tags.pickle")
BATCH = 256  # files per transaction: a crash loses at most this much progress, never half a row

Tags = tuple[int, int]


@dataclass
class ImportReport:
    added: int = 0
    duplicates: int = 0
    already_done: int = 0
    untagged: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count

    def summary(self) -> str:
        lines = [
            f"added {self.added} images ({self.untagged} untagged), {self.duplicates} duplicates, "
            f"{self.already_done} already imported, {sum(self.skipped.values())} skipped"
        ]
        lines += [f"  skipped {n}: {reason}" for reason, n in self.skipped.most_common()]
        return "\n".join(lines)


class SafeUnpickler(pickle.Unpickler):
    """Reads the ACGAN tags.pickle (dicts, tuples, lists, numpy arrays) and refuses anything else,
    so a crafted pickle cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"tags.pickle refers to {module}.{name}, which a tag file never needs")


def read_tags_csv(path: Path) -> dict[str, Tags | None]:
    """``id,<hair> hair <eye> eyes`` rows; an unparseable tag leaves that image untagged."""
    tags: dict[str, Tags | None] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) >= 2:
                tags[row[0].strip()] = parse_tag_text(row[1])
    return tags


def read_tags_pickle(path: Path) -> dict[str, Tags | None]:
    """``{index: (hair one-hot, eye one-hot)}`` or ``{index: 22-dim vector}``, the public ACGAN layout."""
    with open(path, "rb") as f:
        raw = SafeUnpickler(f).load()
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a dict of index -> tags, got {type(raw).__name__}")
    tags: dict[str, Tags | None] = {}
    for key, value in raw.items():
        if isinstance(value, (tuple, list)) and len(value) == 2:
            hair_vec, eye_vec = np.asarray(value[0]).ravel(), np.asarray(value[1]).ravel()
        else:
            vec = np.asarray(value).ravel()
            hair_vec, eye_vec = vec[:N_HAIR], vec[N_HAIR:]
        ok = hair_vec.shape == (N_HAIR,) and eye_vec.shape == (N_EYE,) and hair_vec.max() > 0 and eye_vec.max() > 0
        tags[str(key)] = (int(hair_vec.argmax()), int(eye_vec.argmax())) if ok else None
    return tags


def read_tags(folder: Path) -> dict[str, Tags | None] | None:
    """The folder's tag file as {file stem: tags or None}; None when the folder has no tag file."""
    if (folder / "tags.csv").exists():
        return read_tags_csv(folder / "tags.csv")
    if (folder / "tags.pickle").exists():
        return read_tags_pickle(folder / "tags.pickle")
    return None


def normalise_image(data: bytes, size: int = SIZE) -> Image.Image:
    """Decode and square-crop to ``size`` x ``size`` RGB; raises ValueError with a reason a person can read."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ValueError("not an image" if isinstance(e, UnidentifiedImageError) else "too many pixels") from None
        except (OSError, SyntaxError, EOFError) as e:
            raise ValueError(f"unreadable or truncated ({e.__class__.__name__})") from None
    if min(img.size) < MIN_SIDE:
        raise ValueError(f"too small (under {MIN_SIDE}x{MIN_SIDE})")
    img = img.convert("RGB")
    w, h = img.size
    side = min(w, h)
    img = img.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
    return img.resize((size, size), Image.Resampling.LANCZOS) if side != size else img


def pixel_hash(img: Image.Image) -> str:
    return hashlib.sha256(img.tobytes()).hexdigest()


def store_image(data_dir: Path, img: Image.Image, sha: str) -> str:
    """Write the PNG under ``faces/<2 hex>/<sha>.png`` atomically; return its path relative to data_dir. The
    temporary name is unique: two processes (or threads) may store the same face at once."""
    rel = f"faces/{sha[:2]}/{sha}.png"
    path = data_dir / rel
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")
        img.save(tmp, format="PNG")
        os.replace(tmp, path)
    return rel


def list_images(folder: Path) -> list[Path]:
    """Every candidate file under the folder (by suffix or not: non-images are reported, not hidden)."""
    files = [p for p in folder.rglob("*") if p.is_file() and p.name not in TAG_FILES and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (len(p.stem), p.stem, str(p)))


def import_folder(conn: sqlite3.Connection, data_dir: Path, folder: Path, progress: bool = True,
                  size: int = SIZE) -> ImportReport:
    """``import_into`` the data directory's SQLite file through ``conn``."""
    return on_sqlite(conn, lambda db: import_into(db, data_dir, folder, progress, size))


async def import_into(db: SqlDatabase, data_dir: Path, folder: Path, progress: bool = True,
                      size: int = SIZE) -> ImportReport:
    """Import every image under ``folder`` at ``size`` px into the bot's database (SQLite or PostgreSQL), the
    files into ``data_dir``; a source imported at another size is another source."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(map(str, SIZES))}, not {size}")
    folder = folder.resolve()
    source = f"import:{folder.name}" + ("" if size == SIZE else f"@{size}")
    tags = read_tags(folder)
    done = {name for (name,) in await db.fetchall("SELECT source_name FROM import_log WHERE source = ?", (source,))}
    report = ImportReport()
    files = list_images(folder)
    pending: list[tuple[str, Path]] = []
    for path in files:
        name = str(path.relative_to(folder))
        if name in done:
            report.already_done += 1
        else:
            pending.append((name, path))
    bar = tqdm(total=len(pending), desc=f"importing {folder.name}", unit="img", disable=not progress)
    for start in range(0, len(pending), BATCH):
        chunk = pending[start:start + BATCH]
        faces = [(name, _read_face(data_dir, path, size), tags.get(path.stem) if tags is not None else None)
                 for name, path in chunk]  # the files are written before the transaction, never inside it
        async with db.transaction() as tx:
            for name, face, tag in faces:
                await _record(tx, source, name, face, tag, report, size)
        bar.update(len(chunk))
    bar.close()
    return report


async def import_command(db: SqlDatabase, data_dir: Path, folder: Path, size: int, progress: bool) -> str:
    """What `moebot import` does, on the configured database; returns its summary. The untagged higher-resolution
    set gets its colours read by the classifier."""
    summary = (await import_into(db, data_dir, folder, progress, size)).summary()
    if size == SIZE:
        return summary
    from training.auto_tags import colour_report_in, tag_untagged_in  # torch is needed only here

    await tag_untagged_in(db, data_dir, progress=progress)
    return f"{summary}\n{(await colour_report_in(db, size)).summary()}"


def _read_face(data_dir: Path, path: Path, size: int) -> tuple[str, str] | str:
    """(sha256, stored path) of the file's face, written once by content (a face a crash left without its row
    is found there again); or why the file is skipped."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"not an image file ({path.suffix or 'no suffix'})"
    try:
        img = normalise_image(path.read_bytes(), size)
    except ValueError as e:
        return str(e)
    sha = pixel_hash(img)
    return sha, store_image(data_dir, img, sha)


async def _record(tx: Sql, source: str, name: str, face: tuple[str, str] | str, tag: Tags | None,
                  report: ImportReport, size: int) -> None:
    if isinstance(face, str):
        report.skipped[face] += 1
        await tx.execute("INSERT INTO import_log VALUES (?, ?, ?, NULL)", (source, name, f"skipped: {face}"))
        return
    sha, rel = face
    row = await tx.fetchone("SELECT id, hair FROM images WHERE sha256 = ?", (sha,))
    if row is not None:
        report.duplicates += 1
        if row[1] is None and tag is not None:  # a tagged copy of an untagged image adds its tags
            await tx.execute("UPDATE images SET hair = ?, eye = ? WHERE id = ?", (*tag, row[0]))
        await tx.execute("INSERT INTO import_log VALUES (?, ?, 'duplicate', ?)", (source, name, row[0]))
        return
    hair, eye = tag if tag is not None else (None, None)
    image_id = await tx.fetchval(
        "INSERT INTO images (sha256, path, hair, eye, source, source_name, size) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "RETURNING id", (sha, rel, hair, eye, source, name, size))
    await tx.execute("INSERT INTO import_log VALUES (?, ?, 'added', ?)", (source, name, image_id))
    report.added += 1
    report.untagged += tag is None
