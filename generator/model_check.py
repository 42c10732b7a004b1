"""Whether a face generator draws: it loads, and its pixels are finite for a few real latents and colours.

The same check runs before a file is promoted (a NaN file must never become the active model, or the
next start has nothing to serve) and in every worker before it serves, so both refuse the same files.
"""

from __future__ import annotations

import os

import torch

from generator.sampler import FaceSampler, face_inputs
from generator.tags import N_EYE, N_HAIR

PROBE_SEEDS = range(4)


def check_draws(sampler: FaceSampler) -> None:
    """ValueError unless the generator's output is finite for a few latents and colour pairs."""
    z, cond = face_inputs([s % N_HAIR for s in PROBE_SEEDS], [s % N_EYE for s in PROBE_SEEDS], PROBE_SEEDS,
                          sampler.z_dim)
    with torch.inference_mode():
        out = sampler.G(z.to(sampler.device), cond.to(sampler.device))
    if not torch.isfinite(out).all():
        raise ValueError("the generator's output is not finite (NaN or infinite weights)")


def check_weights(path: str | os.PathLike) -> None:
    """ValueError, saying why, unless ``path`` loads on the CPU as a face generator that draws finite pixels."""
    try:
        sampler = FaceSampler.load(path, "cpu")
    except ValueError:
        raise
    except Exception as e:  # a torn or mismatched file: safetensors and torch raise their own kinds
        raise ValueError(f"{path} does not load: {type(e).__name__}: {e}") from None
    check_draws(sampler)
