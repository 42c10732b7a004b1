"""``moebot sample``: the sampler's pictures written to files."""

from __future__ import annotations

import random
from pathlib import Path

from generator.images import gif_bytes, to_pil
from generator.sampler import FaceSampler
from generator.tags import EYE_COLORS, HAIR_COLORS, eye_index, hair_index


def _pick(name: str | None, names: tuple[str, ...], index, rng: random.Random) -> int:
    return index(name) if name else rng.randrange(len(names))


def write_faces(sampler: FaceSampler, out: Path, hair: str | None, eye: str | None, n: int, seed: int,
                size: int) -> int:
    """``n`` PNGs ``NNN.png``; colours not given are drawn per face from ``seed``, so reruns match."""
    rng = random.Random(seed)
    hs = [_pick(hair, HAIR_COLORS, hair_index, rng) for _ in range(n)]
    es = [_pick(eye, EYE_COLORS, eye_index, rng) for _ in range(n)]
    out.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(sampler.faces(hs, es, range(seed, seed + n), size)):
        to_pil(img).save(out / f"{i:03d}.png")
    return n


def write_per_tag(sampler: FaceSampler, out: Path, per_tag: int, seed: int, size: int) -> int:
    """``per_tag`` faces for each of the 120 pairs in ``<hair>_<eye>/NNN.png``."""
    for h, e, faces in sampler.per_tag(per_tag, seed, size):
        folder = out / f"{HAIR_COLORS[h]}_{EYE_COLORS[e]}"
        folder.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(faces):
            to_pil(img).save(folder / f"{i:03d}.png")
    return len(HAIR_COLORS) * len(EYE_COLORS) * per_tag


def write_mode(sampler: FaceSampler, out: Path, mode: str, hair: str | None, eye: str | None, n: int, seed: int,
               size: int, hair2: str | None = None, eye2: str | None = None, seed2: int | None = None,
               frames: int = 24) -> Path:
    """One grid PNG (or, for ``interpolate``, a GIF); ``out`` is a file path or a folder to put it in."""
    rng = random.Random(seed)
    h, e = _pick(hair, HAIR_COLORS, hair_index, rng), _pick(eye, EYE_COLORS, eye_index, rng)
    suffix = ".gif" if mode == "interpolate" else ".png"
    path = out if out.suffix.lower() == suffix else out / f"{mode}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "interpolate":
        h2, e2 = _pick(hair2, HAIR_COLORS, hair_index, rng), _pick(eye2, EYE_COLORS, eye_index, rng)
        end_seed = seed + 1 if seed2 is None else seed2
        path.write_bytes(gif_bytes(sampler.morph_frames((h, e, seed), (h2, e2, end_seed), frames, size)))
    else:
        sampler.mode_grid(mode, h, e, seed, min(n, 8), size).save(path)
    return path
