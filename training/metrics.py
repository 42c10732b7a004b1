"""How good a face generator is, read by the evaluation classifier.

For every held-out real face, one face is generated with the same hair and eye
tags from a fixed latent, so real and generated sets share one tag distribution:

- hair_acc / eye_acc: how often the classifier reads the requested colours on
  generated faces; real_hair_acc / real_eye_acc: the same on the real faces (the
  ceiling); *_ratio = generated / ceiling.
- fd: Fréchet distance between generated and real faces in the classifier's
  feature space (lower is better).
- diversity: coverage (Naeem et al. 2020): the share of real faces that have a
  generated face inside their 5-nearest-neighbour ball of real faces. The held-out
  set is split in two halves: one is the reference, the other half's tags are
  drawn, and real_diversity is the same figure for the other half of the real
  faces. A collapsed generator covers few real faces; so does one that draws
  noise (which a mere spread of features would reward); diversity_ratio =
  generated / real.

Everything is computed on fixed latents in a fixed order, so a given weights
file always gets the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from generator.images import resized, to_uint8
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


def coverage(reference: torch.Tensor, probe: torch.Tensor, k: int = 5) -> float:
    """Share of ``reference`` points with a ``probe`` point closer than their k-th nearest reference neighbour."""
    radius = torch.cdist(reference, reference).kthvalue(k + 1, dim=1).values  # +1: itself at distance 0
    return float((torch.cdist(reference, probe).min(1).values < radius).float().mean())


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
                   coverage(feats[0::2], feats[1::2]))

    @torch.no_grad()
    def generate(self, G: torch.nn.Module, seed: int = 0) -> torch.Tensor:
        """One face per held-out tag pair entry, from latents fixed by ``seed``, at the held-out faces' size (a
        128 px model's faces are read at the classifier's 64 px, as the real ones are)."""
        G.eval()
        z_all = torch.randn(len(self.heldout), G.cfg.z_dim, generator=torch.Generator().manual_seed(seed))
        device = next(G.parameters()).device
        out = []
        for i in range(0, len(self.heldout), BATCH):
            cond = tag_condition(self.heldout.hair[i:i + BATCH], self.heldout.eye[i:i + BATCH], N_HAIR, N_EYE)
            img = G(z_all[i:i + BATCH].to(device), cond.to(device))
            out.append(resized(to_uint8(img), self.heldout.images.shape[-1]))
        return torch.cat(out)

    def evaluate(self, G: torch.nn.Module, seed: int = 0) -> dict[str, float]:
        fake = self.generate(G, seed)
        feats, hair, eye = classify(self.tagger, fake)
        hair_acc = float((hair == self.heldout.hair).float().mean())
        eye_acc = float((eye == self.heldout.eye).float().mean())
        div = coverage(self.real_features[0::2], feats[1::2])  # faces drawn for the other half's tags
        return {
            "hair_acc": hair_acc, "eye_acc": eye_acc,
            "real_hair_acc": self.real_hair_acc, "real_eye_acc": self.real_eye_acc,
            "hair_ratio": hair_acc / self.real_hair_acc, "eye_ratio": eye_acc / self.real_eye_acc,
            "fd": frechet_distance(feats.double().numpy(), self.real_features.double().numpy()),
            "diversity": div, "real_diversity": self.real_diversity, "diversity_ratio": div / self.real_diversity,
            "images": len(fake),
        }
