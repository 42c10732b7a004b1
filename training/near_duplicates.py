"""Near-duplicate faces: is a new 64x64 face one we already have, re-encoded, nudged or brightened?

The importer keys faces by the SHA-256 of their pixels, which catches exact
copies only. Here each face gets a 192-bit perceptual hash: the pHash of each
of its Y, Cb and Cr planes (the plane averaged down to 32x32, its 8x8 lowest
DCT frequencies, one bit per frequency for "above their median"). Two faces
are near-duplicates when their hashes differ in at most ``THRESHOLD`` bits.

Why three planes and not the usual grey 64-bit pHash: aligned anime faces
share their layout, so in grey they hash alike. On 1000 faces drawn by the
bundled generator (about 500k pairs of different faces) the closest pair of
different faces was 6 bits apart in grey (9% of the bits) and one pair in ten
thousand within 8 bits, while a 2-px re-crop moves up to 14 bits; and a
cartoon (conftest's ``draw_face``) redrawn in other colours can hash
identically. With Cb and Cr the
closest different pair was 28 bits apart (15%) and one pair in ten thousand
within 40, while edits of 200 faces moved (caught at THRESHOLD = 28 bits):

    JPEG quality 60 / 30            100% / 99%
    2-px re-crop, resized back       98.5%
    brightness x1.15 / x0.8          99% / 100%
    contrast x1.2                   100%
    3-px border crop / 4-px re-crop  52% / 18%   (bigger moves look like other faces)

A different face falls within 28 bits once in 500k pairs (0.07 false matches
per query against 35k faces, on generated faces; real faces vary more). A
recolour that keeps where the colour is (blue hair made aqua) can still fall
within it: the bits say where a plane is above its median, not its value.

The hash is computed with numpy rather than ``imagehash``: the index hashes
tens of thousands of faces in one batch (a few matrix products), and imagehash
hashes one PIL image at a time, in grey, and would add scipy and PyWavelets.

``FaceHashIndex`` holds one hash per stored face and compares a new face with
all of them at once (XOR, then a popcount table): about 4 ms for 35k faces.
Hashes are cached by pixel SHA-256 in ``cache/phash.npz`` under the data
directory, so a rebuild reads only the faces added since.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

import migrations
from training.dataset import DB_NAME, read_face

SIZE = 64  # the side a face is hashed at (faces stored at 128 px are read at 64)
WORDS = 3  # uint64 words per hash: 64 bits for each of Y, Cb, Cr
THRESHOLD = 28  # bits of 192; see above for what falls within it
YCBCR = np.array([[0.299, 0.587, 0.114],
                  [-0.168736, -0.331264, 0.5],
                  [0.5, -0.418688, -0.081312]], dtype=np.float32).T  # RGB -> Y, Cb, Cr (JPEG's, offsets dropped)
CACHE = "cache/phash.npz"


def _dct_rows(n: int, k: int) -> np.ndarray:
    """The first ``k`` rows of the orthonormal DCT-II matrix of size n: ``rows @ x`` is x's k lowest frequencies."""
    i = np.arange(n)
    rows = np.cos(np.pi * (2 * i[None, :] + 1) * np.arange(k)[:, None] / (2 * n)) * math.sqrt(2 / n)
    rows[0] /= math.sqrt(2)
    return rows.astype(np.float32)


# the 2x2 average down to 32x32, then the 8 lowest DCT frequencies: one (8, 64) matrix per axis
_LOW = _dct_rows(SIZE // 2, 8) @ np.kron(np.eye(SIZE // 2, dtype=np.float32), np.full((1, 2), 0.5, np.float32))
_POPCOUNT = np.array([bin(b).count("1") for b in range(256)], dtype=np.uint8)


def phash(faces: np.ndarray) -> np.ndarray:
    """(N, WORDS) uint64 hashes of (N, 64, 64, 3) uint8 faces (the layout of ``np.asarray(image)``).

    Averaging, DCT and the colour transform are all linear, so R, G and B go through the DCT as they are and
    become Y, Cb, Cr last, on 64 numbers instead of 4096 (about 40 us a face in a batch of 2048, not 400).
    """
    faces = np.asarray(faces)
    if faces.shape[1:] != (SIZE, SIZE, 3):
        raise ValueError(f"expected (N, {SIZE}, {SIZE}, 3) faces, got {faces.shape}")
    n = len(faces)
    rows = np.matmul(_LOW, faces.astype(np.float32).reshape(n, SIZE, SIZE * 3))        # (N, 8, 64*3): y -> 8
    rows = rows.reshape(n, 8, SIZE, 3).transpose(0, 1, 3, 2).reshape(n, 8 * 3, SIZE)  # (N, 8*3, 64)
    low = np.matmul(rows, _LOW.T).reshape(n, 8, 3, 8)                                  # (N, 8, RGB, 8): x -> 8
    low = np.einsum("nkrl,rc->nckl", low, YCBCR).reshape(n, 3, 64)                     # (N, YCbCr, 8*8)
    bits = low > np.median(low, axis=2, keepdims=True)
    return np.packbits(bits, axis=2).view(">u8").reshape(n, WORDS).astype(np.uint64)


def face_hash(face: Image.Image) -> np.ndarray:
    """The (WORDS,) uint64 hash of one 64x64 face."""
    return phash(np.asarray(face.convert("RGB"))[None])[0]


def hamming(hashes: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Bits in which each of ``hashes`` (N, WORDS) differs from ``h`` (WORDS,)."""
    return _POPCOUNT[np.bitwise_xor(hashes, h).view(np.uint8)].sum(1, dtype=np.int64)


@dataclass(frozen=True)
class NearDuplicate:
    image_id: int  # a row of the images table
    distance: int  # Hamming distance of the hashes, 0..192


class FaceHashIndex:
    """One perceptual hash per stored face; ``find`` answers "do we have this face?" (4 ms for 35k faces)."""

    def __init__(self, image_ids: np.ndarray, hashes: np.ndarray):
        self.image_ids = np.asarray(image_ids, dtype=np.int64)
        self.hashes = np.asarray(hashes, dtype=np.uint64).reshape(-1, WORDS)

    def __len__(self) -> int:
        return len(self.hashes)

    @classmethod
    def build(cls, data_dir: str | Path, progress: bool = False) -> "FaceHashIndex":
        """Every face of the images table in the data directory's SQLite file (see ``of_faces``)."""
        data_dir = Path(data_dir)
        conn = migrations.connect(data_dir / DB_NAME)
        try:
            rows = conn.execute("SELECT id, sha256, path FROM images ORDER BY id").fetchall()
        finally:
            conn.close()
        return cls.of_faces(data_dir, rows, progress)

    @classmethod
    def of_faces(cls, data_dir: str | Path, rows: Sequence[tuple[int, str, str]],
                 progress: bool = False) -> "FaceHashIndex":
        """The faces ``rows`` name as (images.id, sha256, path under ``data_dir``), from whichever database holds
        them; faces hashed before are taken from the cache, the rest read and cached."""
        data_dir = Path(data_dir)
        cached = _read_cache(data_dir / CACHE)
        missing = [(sha, path) for _, sha, path in rows if sha not in cached]
        if missing:
            for start in tqdm(range(0, len(missing), 1024), desc="hashing faces", disable=not progress):
                chunk = missing[start:start + 1024]
                pixels = np.stack([read_face(data_dir / p, SIZE) for _, p in chunk])
                cached.update(zip((sha for sha, _ in chunk), phash(pixels)))
            _write_cache(data_dir / CACHE, cached)
        return cls(np.array([r[0] for r in rows], dtype=np.int64),
                   np.array([cached[r[1]] for r in rows], dtype=np.uint64).reshape(-1, WORDS))

    def add(self, image_id: int, h: np.ndarray) -> None:
        """Index a face stored after the build (e.g. a new submission), so the next query sees it."""
        self.image_ids = np.append(self.image_ids, np.int64(image_id))
        self.hashes = np.vstack([self.hashes, np.asarray(h, dtype=np.uint64).reshape(1, WORDS)])

    def find(self, h: np.ndarray, threshold: int = THRESHOLD) -> list[NearDuplicate]:
        """The faces within ``threshold`` bits of hash ``h``, closest first."""
        dist = hamming(self.hashes, h)
        hits = np.flatnonzero(dist <= threshold)
        hits = hits[np.argsort(dist[hits], kind="stable")]
        return [NearDuplicate(int(self.image_ids[i]), int(dist[i])) for i in hits]


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as f:
        return dict(zip(f["sha256"].astype(str).tolist(), f["phash"]))


def _write_cache(path: Path, hashes: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, sha256=np.array(list(hashes), dtype="S64"),
             phash=np.array(list(hashes.values()), dtype=np.uint64).reshape(-1, WORDS))
    tmp.replace(path)
