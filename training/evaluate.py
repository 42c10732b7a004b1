"""``moebot evaluate``: a generator's figures against the held-out faces, optionally with FID and KID."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from generator.sampler import FaceSampler
from generator.weights import BUNDLED_GENERATOR, BUNDLED_TAGGER, load_module
from training.dataset import FaceDataset
from training.fidelity import Fidelity, fidelity
from training.metrics import Evaluator

PER_TAG = {64: 16, 128: 13}  # faces per colour pair in the fidelity sets: 1,920 at 64 px, 1,560 at 128 px


def load_evaluator(data_dir: str | Path, tagger_path: str | Path | None = None, progress: bool = False) -> Evaluator:
    tagger, _ = load_module(tagger_path or BUNDLED_TAGGER)
    return Evaluator.build(tagger, FaceDataset.load(data_dir, "heldout", progress=progress))


def sampler_fidelity(sampler: FaceSampler, data_dir: str | Path, size: int = 64, seed: int = 0,
                     progress: bool = False) -> Fidelity:
    """FID and KID of ``moebot sample --per-tag N --size size`` (the faces the bot sends at that size)
    against the held-out real faces of that size: the tagged 64 px set, or the 128 px set."""
    data_dir = Path(data_dir)
    fake = torch.cat([faces for *_, faces in sampler.per_tag(PER_TAG[size], seed, size)])
    if size == 64:
        heldout, train = (FaceDataset.load(data_dir, split, progress=progress) for split in ("heldout", "train"))
    else:
        heldout, train = (FaceDataset.load_size(data_dir, size, split, progress=progress)
                          for split in ("heldout", "train"))
    return fidelity(fake, heldout.images, train.images, data_dir / "cache", progress=progress)


def format_table(result: dict) -> str:
    rows = [
        ("hair accuracy", f"{result['hair_acc']:.3f}", f"{result['real_hair_acc']:.3f}", f"{result['hair_ratio']:.2f}"),
        ("eye accuracy", f"{result['eye_acc']:.3f}", f"{result['real_eye_acc']:.3f}", f"{result['eye_ratio']:.2f}"),
        ("diversity (coverage)", f"{result['diversity']:.3f}", f"{result['real_diversity']:.3f}",
         f"{result['diversity_ratio']:.2f}"),
        ("Fréchet distance", f"{result['fd']:.2f}", "0", ""),
    ]
    lines = [f"model {result['model']} on {result['images']} held-out tag pairs",
             f"{'':22}{'generated':>10}{'real':>8}{'ratio':>8}"]
    lines += [f"{name:22}{gen:>10}{real:>8}{ratio:>8}" for name, gen, real, ratio in rows]
    lines += [Fidelity(**f).table(f"{size} px") for size, f in result.get("fidelity", {}).items()]
    return "\n".join(lines)


def evaluate_weights(weights: str | Path | None, data_dir: str | Path, tagger_path: str | Path | None = None,
                     seed: int = 0, fid_sizes: tuple[int, ...] = (), upscaler: str | Path | None = None,
                     progress: bool = False) -> dict:
    """The classifier's figures, and FID/KID at each of ``fid_sizes`` (64 and/or 128 px)."""
    weights = Path(weights) if weights else BUNDLED_GENERATOR
    G, meta = load_module(weights)
    evaluator = load_evaluator(data_dir, tagger_path)
    result: dict = {"model": f"{weights.name}@{meta.get('step', '?')}", **evaluator.evaluate(G, seed)}
    sampler = FaceSampler(G, result["model"])
    if upscaler:
        sampler.with_upscaler(upscaler)
    result["fidelity"] = {size: asdict(sampler_fidelity(sampler, data_dir, size, seed, progress))
                          for size in fid_sizes}
    result["_table"] = format_table(result)
    return result
