"""How good a face generator is, read by the evaluation classifier.

For every held-out real face, one face is generated with the same hair and eye
tags from a fixed latent, so real and generated sets share one tag distribution:

- hair_acc / eye_acc: how often the classifier reads the requested colours on
  generated faces; real_hair_acc / real_eye_acc: the same on the real faces (the
  ceiling); *_ratio = generated / ceiling.
- fd: Fréchet distance between generated and real faces in the classifier's
  feature space (lower is better).
- diversity: mean pairwise feature distance between faces of the same tag pair
  (collapse drives it to 0); diversity_ratio = generated / real.

Everything is computed on fixed latents in a fixed order, so a given weights
file always gets the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from generator.models import tag_condition
from generator.models.tagger import Tagger
from generator.tags import N_EYE, N_HAIR
from training.dataset import FaceDataset

BATCH = 256


@torch.no_grad()
def classify(tagger: Tagger, images_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(features, hair prediction, eye prediction) for uint8 images, in batches."""
    feats, hair, eye = [], [], []
    for i in range(0, len(images_u8), BATCH):
        f = tagger.embed(FaceDataset.to_float(images_u8[i:i + BATCH]))
        feats.append(f)
        hair.append(tagger.head_hair(f).argmax(1))
        eye.append(tagger.head_eye(f).argmax(1))
    return torch.cat(feats), torch.cat(hair), torch.cat(eye)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FD between Gaussians fitted to two feature sets; sqrt of the covariance product via symmetric eigh."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(cov_a)
    sqrt_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    mid = np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)
    tr_sqrt = np.sqrt(np.clip(mid, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt)


def diversity(features: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor) -> float:
    """Mean pairwise L2 distance between faces sharing a tag pair, averaged over pairs with 2+ faces."""
    pair = hair * N_EYE + eye
    dists = []
    for p in pair.unique():
        f = features[pair == p]
        if len(f) > 1:
            d = torch.cdist(f, f)
            dists.append(float(d.sum() / (len(f) * (len(f) - 1))))
    return float(np.mean(dists))


@dataclass
class Evaluator:
    """The held-out reference set, classified once, against which generators are measured."""

    tagger: Tagger
    heldout: FaceDataset
    real_features: torch.Tensor
    real_hair_acc: float
    real_eye_acc: float
    real_diversity: float

    @classmethod
    def build(cls, tagger: Tagger, heldout: FaceDataset) -> "Evaluator":
        tagger.eval()
        feats, hair, eye = classify(tagger, heldout.images)
        return cls(tagger, heldout, feats,
                   float((hair == heldout.hair).float().mean()), float((eye == heldout.eye).float().mean()),
                   diversity(feats, heldout.hair, heldout.eye))

    @torch.no_grad()
    def generate(self, G: torch.nn.Module, seed: int = 0) -> torch.Tensor:
        """One face per held-out tag pair entry, from latents fixed by ``seed``."""
        G.eval()
        z_all = torch.randn(len(self.heldout), G.cfg.z_dim, generator=torch.Generator().manual_seed(seed))
        device = next(G.parameters()).device
        out = []
        for i in range(0, len(self.heldout), BATCH):
            cond = tag_condition(self.heldout.hair[i:i + BATCH], self.heldout.eye[i:i + BATCH], N_HAIR, N_EYE)
            img = G(z_all[i:i + BATCH].to(device), cond.to(device))
            out.append(img.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu())
        return torch.cat(out)

    def evaluate(self, G: torch.nn.Module, seed: int = 0) -> dict[str, float]:
        fake = self.generate(G, seed)
        feats, hair, eye = classify(self.tagger, fake)
        hair_acc = float((hair == self.heldout.hair).float().mean())
        eye_acc = float((eye == self.heldout.eye).float().mean())
        div = diversity(feats, self.heldout.hair, self.heldout.eye)
        return {
            "hair_acc": hair_acc, "eye_acc": eye_acc,
            "real_hair_acc": self.real_hair_acc, "real_eye_acc": self.real_eye_acc,
            "hair_ratio": hair_acc / self.real_hair_acc, "eye_ratio": eye_acc / self.real_eye_acc,
            "fd": frechet_distance(feats.double().numpy(), self.real_features.double().numpy()),
            "diversity": div, "real_diversity": self.real_diversity, "diversity_ratio": div / self.real_diversity,
            "images": len(fake),
        }
