"""How well a sketch-to-face generator converts, read by the evaluation classifier.

Two fixed held-out sketch sets: 200 doodles and the XDoG line art of 200
held-out faces (training/sketch_data.py). Each is converted twice:

- colours requested: line art with its own face's tags, each doodle with a
  fixed random tag pair. ``<set>_hair_acc`` / ``<set>_eye_acc``: how often the
  classifier reads the requested colours; ``*_ratio`` divides by its accuracy
  on all real held-out faces (the ceiling, as in training/metrics.py);
- no colours requested (random tags and z by seed, as ``/sketch`` alone does):
  ``<set>_free_hair_colours``, the number of distinct hair colours the
  classifier reads across the outputs (of 12);
- ``fd``: Fréchet distance in the classifier's feature space between the
  requested-colour outputs of both sets and all real held-out faces;
- ``<set>_eye_window_ratio``: the eye ratio again with everything outside the
  eye window (where the aligned faces' eyes are) painted grey, for the outputs
  and the ceiling alike. The classifier pools its features, so an eye-coloured
  blob anywhere can read as the eye colour (one fine-tuning run learnt exactly
  that, in a corner); this figure only counts colour where eyes are.

Latents and tags come from ``seed``, so a weights file always gets the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from generator.images import to_uint8
from generator.models import tag_condition
from generator.models.tagger import Tagger
from generator.tags import N_EYE, N_HAIR
from generator.weights import BUNDLED_SKETCH, BUNDLED_TAGGER, load_module
from training.dataset import FaceDataset
from training.metrics import BATCH, classify, frechet_distance
from training.sketch_data import DoodleSet, heldout_faces, line_art

SETS = ("doodle", "line")
# rows and columns (end exclusive) that hold both eyes of the aligned 64x64 faces: the crude line art of the
# held-out faces has its eye strokes in rows 16-34 and columns 13-24 and 38-50
EYE_WINDOW = (slice(12, 40), slice(8, 56))


def eye_window(images: torch.Tensor) -> torch.Tensor:
    """uint8 faces (N, 3, 64, 64) with everything outside EYE_WINDOW painted mid grey."""
    out = torch.full_like(images, 128)
    out[:, :, EYE_WINDOW[0], EYE_WINDOW[1]] = images[:, :, EYE_WINDOW[0], EYE_WINDOW[1]]
    return out


@torch.no_grad()
def convert(G: nn.Module, sketches: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor,
            z: torch.Tensor) -> torch.Tensor:
    """uint8 faces for sketches (N, 1, 64, 64) with the given tags and latents, in batches."""
    G.eval()
    device = next(G.parameters()).device
    out = []
    for i in range(0, len(sketches), BATCH):
        cond = tag_condition(hair[i:i + BATCH], eye[i:i + BATCH], N_HAIR, N_EYE)
        out.append(to_uint8(G(sketches[i:i + BATCH].to(device), z[i:i + BATCH].to(device), cond.to(device))))
    return torch.cat(out)


@dataclass
class SketchEvaluator:
    """The held-out sketches with their requested tags, and the real faces they are judged against."""

    tagger: Tagger
    sketches: dict[str, torch.Tensor]              # set name -> (N, 1, 64, 64) sketches
    tags: dict[str, tuple[torch.Tensor, torch.Tensor]]  # set name -> requested (hair, eye)
    real_features: torch.Tensor
    real_hair_acc: float
    real_eye_acc: float
    real_eye_window_acc: float  # the ceiling of the eye-window figure

    @classmethod
    def build(cls, tagger: Tagger, heldout: FaceDataset, lines_of: FaceDataset, doodles: DoodleSet,
              seed: int = 0) -> "SketchEvaluator":
        """``heldout``: all real held-out faces (reference and ceiling); ``lines_of``: the faces whose line art
        is converted (their tags are requested); doodles get random tag pairs fixed by ``seed``."""
        tagger.eval()
        feats, hair, eye = classify(tagger, heldout.images)
        _, _, window_eye = classify(tagger, eye_window(heldout.images))
        g = torch.Generator().manual_seed(seed)
        n = len(doodles)
        doodle_tags = (torch.randint(N_HAIR, (n,), generator=g), torch.randint(N_EYE, (n,), generator=g))
        return cls(tagger,
                   {"doodle": doodles.sketches(), "line": line_art(FaceDataset.to_float(lines_of.images))},
                   {"doodle": doodle_tags, "line": (lines_of.hair, lines_of.eye)},
                   feats, float((hair == heldout.hair).float().mean()), float((eye == heldout.eye).float().mean()),
                   float((window_eye == heldout.eye).float().mean()))

    def evaluate(self, G: nn.Module, seed: int = 0) -> dict[str, float]:
        g = torch.Generator().manual_seed(seed)
        result: dict[str, float] = {"real_hair_acc": self.real_hair_acc, "real_eye_acc": self.real_eye_acc,
                                    "real_eye_window_acc": self.real_eye_window_acc}
        requested_feats, hits_hair, hits_eye, total = [], 0, 0, 0
        for name in SETS:
            sketches, (hair, eye) = self.sketches[name], self.tags[name]
            n = len(sketches)
            faces = convert(G, sketches, hair, eye, torch.randn(n, G.cfg.z_dim, generator=g))
            feats, hair_read, eye_read = classify(self.tagger, faces)
            _, _, window_read = classify(self.tagger, eye_window(faces))
            requested_feats.append(feats)
            hits_hair += int((hair_read == hair).sum())
            hits_eye += int((eye_read == eye).sum())
            total += n
            result[f"{name}_hair_acc"] = float((hair_read == hair).float().mean())
            result[f"{name}_eye_acc"] = float((eye_read == eye).float().mean())
            result[f"{name}_hair_ratio"] = result[f"{name}_hair_acc"] / self.real_hair_acc
            result[f"{name}_eye_ratio"] = result[f"{name}_eye_acc"] / self.real_eye_acc
            result[f"{name}_eye_window_ratio"] = float((window_read == eye).float().mean()) / self.real_eye_window_acc
            free_hair, free_eye = torch.randint(N_HAIR, (n,), generator=g), torch.randint(N_EYE, (n,), generator=g)
            _, free_read, _ = classify(self.tagger, convert(G, sketches, free_hair, free_eye,
                                                            torch.randn(n, G.cfg.z_dim, generator=g)))
            result[f"{name}_free_hair_colours"] = len(free_read.unique())
            result[f"{name}_fd"] = frechet_distance(feats.double().numpy(), self.real_features.double().numpy())
        result["hair_ratio"] = hits_hair / total / self.real_hair_acc
        result["eye_ratio"] = hits_eye / total / self.real_eye_acc
        result["fd"] = frechet_distance(torch.cat(requested_feats).double().numpy(),
                                        self.real_features.double().numpy())
        result["images"] = total
        return result


def load_sketch_evaluator(data_dir: str | Path, doodles: str | Path, tagger_path: str | Path | None = None,
                          seed: int = 0) -> SketchEvaluator:
    tagger, _ = load_module(tagger_path or BUNDLED_TAGGER)
    return SketchEvaluator.build(tagger, FaceDataset.load(data_dir, "heldout", progress=False),
                                 heldout_faces(data_dir), DoodleSet.load(doodles, "heldout"), seed)


def format_table(result: dict) -> str:
    lines = [f"model {result['model']} on {result['images']} held-out sketches (doodles, line art)",
             f"{'':28}{'doodles':>10}{'line art':>10}{'real':>8}"]
    rows = (("hair_acc", "hair accuracy", "real_hair_acc"), ("eye_acc", "eye accuracy", "real_eye_acc"),
            ("hair_ratio", "hair / ceiling", None), ("eye_ratio", "eye / ceiling", None),
            ("eye_window_ratio", "eye / ceiling, eye window", None),
            ("free_hair_colours", "hair colours, none asked", None), ("fd", "Fréchet distance", None))
    for key, label, real in rows:
        d, ln = result[f"doodle_{key}"], result[f"line_{key}"]
        fmt = "{:>10d}" if isinstance(d, int) else "{:>10.3f}"
        lines.append(f"{label:28}{fmt.format(d)}{fmt.format(ln)}" + (f"{result[real]:>8.3f}" if real else ""))
    lines.append(f"both sets: hair / ceiling {result['hair_ratio']:.3f}, eye / ceiling {result['eye_ratio']:.3f}, "
                 f"Fréchet distance {result['fd']:.2f}")
    return "\n".join(lines)


def evaluate_sketch_weights(weights: str | Path | None, data_dir: str | Path, doodles: str | Path,
                            tagger_path: str | Path | None = None, seed: int = 0) -> dict:
    """``moebot evaluate`` for a sketch2face weights file: the figures above, plus a printable table."""
    weights = Path(weights) if weights else BUNDLED_SKETCH
    G, meta = load_module(weights)
    result: dict = {"model": f"{weights.name}@{meta.get('step', '?')}",
                    **load_sketch_evaluator(data_dir, doodles, tagger_path, seed).evaluate(G, seed)}
    result["_table"] = format_table(result)
    return result
