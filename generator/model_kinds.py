"""Model kinds: each network the generator service serves, described once.

A dict from kind name to a descriptor, in the style of torchvision's model builders: which architectures a
weights file of the kind may hold, what one row of a request looks like, and which sampler loads and draws
it. The worker processes, the Ray replicas, the weights check and the model registry all read it here, so
the face generator, the sketch model and the 2x upscaler are served, checked, hot-swapped and rolled back
the same way, and a new kind is one entry (and its sampler).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from generator.sampler import FaceSampler, Sampler, SketchSampler, UpscalerSampler, face_inputs
from generator.tags import N_EYE, N_HAIR
from generator.weights import read_metadata

PROBE_ROWS = 4  # rows of the finite-output check
Weights = str | os.PathLike | None | Mapping[str, str | os.PathLike | None]  # a face file, or files by kind


@dataclass(frozen=True)
class Input:
    """One input of a request: the shape of each row ("z_dim": the loaded model's latent size) and the dtype
    the rows travel in to the worker."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str

    def rows(self, values: torch.Tensor | np.ndarray, z_dim: int) -> np.ndarray:
        """``values`` as the array a worker takes; ValueError when a row has another shape."""
        array = np.ascontiguousarray(values.numpy() if isinstance(values, torch.Tensor) else values, self.dtype)
        want = tuple(z_dim if d == "z_dim" else d for d in self.shape)
        if array.shape[1:] != want:
            raise ValueError(f"each {self.name} row must be {want}, not {array.shape[1:]}")
        return array


@dataclass(frozen=True)
class Loaded:
    """What a service serves for one kind."""

    version: str
    z_dim: int  # 0 for a network without latents


@dataclass(frozen=True)
class ModelKind:
    name: str
    sampler: type[Sampler]  # loads a weights file of the kind (refusing other archs); ``draw(*inputs)`` draws rows
    inputs: tuple[Input, ...]  # what ``sampler.draw`` takes, in order
    probe: Callable[[Sampler], tuple[torch.Tensor, ...]]  # the network's raw inputs for the finite-output check
    required: bool = False  # a service cannot serve without it; requests of other kinds are refused, with why

    @property
    def archs(self) -> tuple[str, ...]:
        return self.sampler.archs

    @property
    def bundled(self) -> Path | None:
        return self.sampler.bundled


def _colour_probe(sampler: Sampler) -> tuple[torch.Tensor, torch.Tensor]:
    seeds = range(PROBE_ROWS)
    return face_inputs([s % N_HAIR for s in seeds], [s % N_EYE for s in seeds], seeds, sampler.z_dim)


def _sketch_probe(sampler: Sampler) -> tuple[torch.Tensor, ...]:
    return torch.ones(PROBE_ROWS, 1, 64, 64), *_colour_probe(sampler)  # blank paper


def _upscaler_probe(sampler: Sampler) -> tuple[torch.Tensor]:
    ramp = torch.linspace(-1, 1, 64)
    return ((ramp.view(1, 1, 1, 64) * ramp.view(1, 1, 64, 1)).expand(PROBE_ROWS, 3, 64, 64),)  # a smooth picture


_Z = Input("latent", ("z_dim",), "float32")
_COND = Input("colour condition", (N_HAIR + N_EYE,), "float32")
KINDS: dict[str, ModelKind] = {
    "face": ModelKind("face", FaceSampler, (_Z, _COND), _colour_probe, required=True),
    "sketch": ModelKind("sketch", SketchSampler, (Input("sketch", (1, 64, 64), "float32"), _Z, _COND),
                        _sketch_probe),
    "upscaler": ModelKind("upscaler", UpscalerSampler, (Input("face", (3, 64, 64), "uint8"),), _upscaler_probe),
}


def kind_for_arch(arch: str) -> ModelKind:
    """The kind that serves networks of ``arch``; ValueError naming what each kind takes."""
    for kind in KINDS.values():
        if arch in kind.archs:
            return kind
    takes = "; ".join(f"{k.name}: {', '.join(k.archs)}" for k in KINDS.values())
    raise ValueError(f"no model kind serves a {arch} network ({takes})")


def kind_of_file(path: str | os.PathLike) -> ModelKind:
    """The kind of a weights file, from the architecture in its header; ValueError for any other file."""
    meta = read_metadata(path)
    if "config" not in meta:
        raise ValueError(f"{path}: not a moebot weights file (no config in its header)")
    return kind_for_arch(meta["config"].get("arch"))


def weights_map(weights: Weights) -> dict[str, str | None]:
    """Weights by kind, for every kind: a single file is the face generator's; None: the kind's bundled weights
    (none for a kind that bundles none)."""
    given = dict(weights) if isinstance(weights, Mapping) else {"face": weights}
    unknown = set(given) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown model kind(s) {', '.join(sorted(unknown))}; the kinds are {', '.join(KINDS)}")
    return {kind: str(given[kind]) if given.get(kind) else None for kind in KINDS}
