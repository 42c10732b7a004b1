"""Whether a model draws: it loads as its kind, and its output is finite for a few real inputs.

The same check runs before a file of any kind is promoted (a NaN file must never become the active model,
or the next start has nothing to serve), at start for the promoted models, and in every worker and Ray
replica before it serves, so all of them refuse the same files.
"""

from __future__ import annotations

import os
from typing import Mapping

import torch

from generator.model_kinds import KINDS, kind_of_file
from generator.sampler import Sampler


def check_draws(sampler: Sampler, kind: str = "face") -> None:
    """ValueError unless the network's output is finite for the kind's probe inputs."""
    inputs = KINDS[kind].probe(sampler)
    with torch.inference_mode():
        out = sampler.G(*(x.to(sampler.device) for x in inputs))
    if not torch.isfinite(out).all():
        raise ValueError(f"the {kind} model's output is not finite (NaN or infinite weights)")


def load_checked(kind: str, path: str | os.PathLike | None, device: str = "cpu") -> Sampler:
    """The sampler of ``kind`` on ``path`` (None: the kind's bundled weights), checked; ValueError says why not."""
    try:
        sampler = KINDS[kind].sampler.load(path, device)
    except ValueError:
        raise
    except Exception as e:  # a torn or mismatched file: safetensors and torch raise their own kinds
        raise ValueError(f"{path} does not load: {type(e).__name__}: {e}") from None
    check_draws(sampler, kind)
    return sampler


def load_kind(kind: str, weights: str | None, device: str) -> Sampler | None:
    """``load_checked`` on ``weights``, else on the kind's bundled weights; None for a kind that bundles none."""
    path = weights or KINDS[kind].bundled
    return None if path is None else load_checked(kind, path, device)


def load_all(weights: Mapping[str, str | None], strict: tuple[str, ...], device: str
             ) -> tuple[dict[str, Sampler], dict[str, str]]:
    """(samplers, why each missing kind is missing) for ``weights`` by kind (None: bundled). A required kind, or
    one in ``strict`` (being promoted), that does not load raises ValueError; any other is left out, with why."""
    samplers, missing = {}, {}
    for name, kind in KINDS.items():
        try:
            sampler = load_kind(name, weights.get(name), device)
        except Exception as e:
            if kind.required or name in strict:
                raise
            missing[name] = f"cannot load {weights.get(name) or kind.bundled}: {e}"
            continue
        if sampler is None:
            missing[name] = f"no {name} model is active"
        else:
            samplers[name] = sampler
    return samplers, missing


def check_weights(path: str | os.PathLike, kind: str | None = None) -> str:
    """ValueError, saying why, unless ``path`` loads on the CPU as a model of ``kind`` (default: the kind its
    architecture names) that draws finite output; returns the kind."""
    kind = kind or kind_of_file(path).name
    load_checked(kind, path, "cpu")
    return kind
