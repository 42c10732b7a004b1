"""The sampling API: faces for (hair, eye, seed), the ACGAN comparison grids, and morphs.

A face depends only on (weights, hair, eye, seed): each seed draws its own
latent from its own RNG and BatchNorm runs on stored statistics, so a face is
the same whether it was drawn alone or inside a batch of 256 (the batching
service relies on this, and users can re-create a face from its caption).
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import ClassVar, Iterator, Self, Sequence

import torch
from PIL import Image
from torch import nn

from generator.images import from_pil, grid, to_pil, to_uint8
from generator.models import tag_condition
from generator.tags import N_EYE, N_HAIR
from generator.models.sketch_encoder import EncodedSketchToFace
from generator.weights import (BUNDLED_GENERATOR, BUNDLED_SKETCH, BUNDLED_SKETCH_ENCODER, find_face, load_module,
                               weights_version)

MODES = ("fix-noise", "change-hair", "change-eye", "fix-hair-eye", "interpolate")
# [generator] sketch_mode -> the bundled sketch weights it serves: a sketch encoder into the face generator
# (one encoder pass, one generator pass), or the CycleGAN's sketch-to-face generator
SKETCH_MODES = {"encoder": BUNDLED_SKETCH_ENCODER, "cyclegan": BUNDLED_SKETCH}


class DeviceUnavailable(ValueError):
    """The device asked for does not exist on this machine: a setting to change, not a fault of the weights."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` is CUDA when there is a GPU, else the CPU; a CUDA device this machine lacks is DeviceUnavailable."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count <= (device.index or 0):
            why = ("this PyTorch is a CPU-only build" if torch.version.cuda is None else
                   "PyTorch finds no CUDA GPU here (no GPU, no driver, or CUDA_VISIBLE_DEVICES hides it)"
                   if count == 0 else f"this machine has {count} CUDA GPU(s), numbered from 0")
            raise DeviceUnavailable(f'device "{name}" is not available: {why}. Use "auto" (a GPU when there is '
                                    f'one, else the CPU) or "cpu".')
    return device


def latent(seed: int, z_dim: int) -> torch.Tensor:
    """The latent of one seed, independent of every other face drawn beside it."""
    return torch.randn(z_dim, generator=torch.Generator().manual_seed(seed))


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation: Gaussian latents live near a sphere, so the midpoint stays a typical face."""
    omega = torch.arccos(torch.clamp((a / a.norm()) @ (b / b.norm()), -1.0, 1.0))
    if omega.abs() < 1e-6:
        return torch.lerp(a, b, t)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def face_inputs(hair: Sequence[int], eye: Sequence[int], seeds: Sequence[int], z_dim: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(latents, conditions) for one face per (hair, eye, seed) triple."""
    z = torch.stack([latent(s, z_dim) for s in seeds])
    return z, tag_condition(torch.as_tensor(list(hair)), torch.as_tensor(list(eye)), N_HAIR, N_EYE)


def sketch_tags(seed: int, hair: int | None = None, eye: int | None = None) -> tuple[int, int]:
    """The colours of a sketch's face: those given, the others drawn from the seed, so the seed alone
    repeats a picture (``/sketch seed:N`` or ``moebot sketch --seed N`` with the same drawing)."""
    rng = random.Random(seed)
    drawn_hair, drawn_eye = rng.randrange(N_HAIR), rng.randrange(N_EYE)
    return (drawn_hair if hair is None else hair), (drawn_eye if eye is None else eye)


def mode_rows(mode: str, hair: int, eye: int, seed: int, n: int = 8) -> tuple[list[int], list[int], list[int], int]:
    """The public ACGAN's sampling modes as (hairs, eyes, seeds, columns) of one grid.

    fix-noise: one latent, every hair (rows) x every eye (columns).
    change-hair: ``n`` latents (rows) x every hair colour, eye fixed.
    change-eye: ``n`` latents (rows) x every eye colour, hair fixed.
    fix-hair-eye: fixed colours, ``n`` x ``n`` different latents.
    """
    if mode == "fix-noise":
        cells, ncol = [(h, e, seed) for h in range(N_HAIR) for e in range(N_EYE)], N_EYE
    elif mode == "change-hair":
        cells, ncol = [(h, eye, seed + r) for r in range(n) for h in range(N_HAIR)], N_HAIR
    elif mode == "change-eye":
        cells, ncol = [(hair, e, seed + r) for r in range(n) for e in range(N_EYE)], N_EYE
    elif mode == "fix-hair-eye":
        cells, ncol = [(hair, eye, seed + k) for k in range(n * n)], n
    else:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    hs, es, ss = (list(col) for col in zip(*cells))
    return hs, es, ss, ncol


def morph_inputs(start: tuple[int, int, int], end: tuple[int, int, int], frames: int, z_dim: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents slerped and colour conditions blended from (hair, eye, seed) ``start`` to ``end``."""
    z0, z1 = latent(start[2], z_dim), latent(end[2], z_dim)
    c0 = tag_condition(torch.tensor([start[0]]), torch.tensor([start[1]]), N_HAIR, N_EYE)[0]
    c1 = tag_condition(torch.tensor([end[0]]), torch.tensor([end[1]]), N_HAIR, N_EYE)[0]
    ts = [0.5 - 0.5 * math.cos(math.pi * i / (frames - 1)) for i in range(frames)]  # ease in and out
    return torch.stack([slerp(z0, z1, t) for t in ts]), torch.stack([torch.lerp(c0, c1, t) for t in ts])


def upscales(face_px: int, size: int) -> bool:
    """Whether faces drawn at ``face_px`` and shown at ``size`` px go through the 2x upscaler: 64 px faces shown
    at 128 px or more (a 128 px face model's faces never do)."""
    return face_px == 64 and size >= 128


class Sampler:
    """A generator's weights loaded for drawing: the network in eval mode, its version, its device."""

    bundled: ClassVar[Path | None]  # the weights used when none are named (None: none are bundled)
    archs: ClassVar[tuple[str, ...]]  # the networks this sampler can drive

    def __init__(self, generator: nn.Module, version: str, device: torch.device = torch.device("cpu")):
        # channels-last activations: oneDNN's convolutions skip a reorder per layer (a 128 px face at batch 1
        # took 20 ms on one thread contiguous, 12.6 ms so; batch 64 halved likewise)
        self.G = generator.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)
        self.version = version
        self.device = device
        self.z_dim: int = getattr(generator.cfg, "z_dim", 0)  # 0: a network that takes no latents (the upscaler)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str = "auto") -> Self:
        """Load a weights file (default: the bundled one); the version is its file name and step."""
        path = Path(path) if path else cls.bundled
        if path is None:
            raise ValueError(f"no weights given, and no {cls.archs[0]} weights are bundled")
        dev = resolve_device(device)
        G, meta = load_module(path, dev)
        if meta["config"]["arch"] not in cls.archs:
            raise ValueError(f"{path} holds a {meta['config']['arch']} network, not {' or '.join(cls.archs)}")
        return cls(cls.assemble(G, meta, path, dev), weights_version(path, meta), dev)

    @classmethod
    def assemble(cls, network: nn.Module, meta: dict, path: Path, device: torch.device) -> nn.Module:
        """The module that draws, from the network a file holds (the network itself, unless a sampler needs
        more: see SketchSampler)."""
        return network


class FaceSampler(Sampler):
    """The face generator, and the 2x upscaler that draws its 128 px faces when one is loaded
    (else they are Lanczos enlargements of the 64 px faces)."""

    bundled = BUNDLED_GENERATOR
    archs = ("acgan", "face-gan", "seed-acgan")
    upscaler: UpscalerSampler | None = None

    @property
    def face_px(self) -> int:
        """The size the generator draws its faces at (64, or 128 for a face-gan-128)."""
        return getattr(self.G.cfg, "size", 64)

    def with_upscaler(self, path: str | os.PathLike) -> Self:
        """Draw faces of 128 px and more through the upscaler in ``path``."""
        self.upscaler = UpscalerSampler.load(path, str(self.device))
        self.version = f"{self.version}+{self.upscaler.version}"
        return self

    @torch.inference_mode()
    def enlarge(self, faces: torch.Tensor, size: int) -> torch.Tensor:
        """(B, 3, 64 or 128, ...) uint8 faces at ``size`` px: a 64 px face goes through the upscaler when there
        is one, and Lanczos goes the rest of the way (never from 64 px past a 128 px face a model drew)."""
        if self.upscaler is not None and upscales(faces.shape[-1], size):
            faces = self.upscaler.draw(faces)
        if faces.shape[-1] == size:
            return faces
        return torch.stack([from_pil(to_pil(face, size)) for face in faces])

    @torch.inference_mode()
    def draw(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """(B, z_dim) latents and (B, 22) conditions -> (B, 3, 64, 64) uint8 faces."""
        return to_uint8(self.G(z.to(self.device), cond.to(self.device)))

    def faces(self, hair: Sequence[int], eye: Sequence[int], seeds: Sequence[int], size: int = 64) -> torch.Tensor:
        """One face per (hair, eye, seed) triple, as (B, 3, size, size) uint8."""
        return self.enlarge(self.draw(*face_inputs(hair, eye, seeds, self.z_dim)), size)

    def per_tag(self, per_tag: int, seed: int = 0, size: int = 64) -> Iterator[tuple[int, int, torch.Tensor]]:
        """(hair, eye, faces) for each of the 120 colour pairs: ``per_tag`` faces from seeds seed, seed + 1, ..."""
        for h in range(N_HAIR):
            for e in range(N_EYE):
                yield h, e, self.faces([h] * per_tag, [e] * per_tag, range(seed, seed + per_tag), size)

    def mode_grid(self, mode: str, hair: int, eye: int, seed: int, n: int = 8, size: int = 64) -> Image.Image:
        """One of ``mode_rows``'s grids as a picture, each face shown at ``size`` pixels."""
        hs, es, ss, ncol = mode_rows(mode, hair, eye, seed, n)
        return grid(self.faces(hs, es, ss, size), ncol)

    def morph_frames(self, start: tuple[int, int, int], end: tuple[int, int, int], frames: int = 16,
                     size: int | None = None) -> list[Image.Image]:
        """Frames from (hair, eye, seed) ``start`` to ``end`` (see ``morph_inputs``)."""
        return [to_pil(img, size) for img in self.draw(*morph_inputs(start, end, frames, self.z_dim))]


class SketchSampler(Sampler):
    """The sketch model: a drawing (ink -1 on paper +1), colours and a seed -> a face, by the CycleGAN's
    sketch-to-face generator or by a sketch encoder and the face generator it was trained against."""

    bundled = BUNDLED_SKETCH_ENCODER  # [generator] sketch_mode's default, "encoder"
    archs = ("sketch2face", "sketch-encoder")

    @classmethod
    def assemble(cls, network: nn.Module, meta: dict, path: Path, device: torch.device) -> nn.Module:
        """A CycleGAN generator draws by itself; a sketch encoder draws through the face generator it was
        trained against (named in its file: ``generator.weights.find_face``)."""
        if meta["config"]["arch"] != "sketch-encoder":
            return network
        face, _ = load_module(find_face(meta["face"], path), device)
        return EncodedSketchToFace(network, face)

    @torch.inference_mode()
    def draw(self, sketch: torch.Tensor, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """(B, 1, 64, 64) sketches, (B, z_dim) latents and (B, 22) conditions -> (B, 3, S, S) uint8 faces (S: 64,
        or 128 for an encoder on a 128 px face model)."""
        return to_uint8(self.G(sketch.to(self.device), z.to(self.device), cond.to(self.device)))

    def faces(self, sketch: torch.Tensor, hair: Sequence[int], eye: Sequence[int], seeds: Sequence[int]
              ) -> torch.Tensor:
        """One face per sketch, painted in its (hair, eye) colours with the latent of its seed."""
        return self.draw(sketch, *face_inputs(hair, eye, seeds, self.z_dim))


def sketch_weights(configured: str, mode: str) -> str | None:
    """The sketch kind's weights for [generator] sketch_weights and sketch_mode: the file named, else the mode's
    bundled weights (None when they are the kind's default, SketchSampler.bundled)."""
    if configured:
        return configured
    return None if SKETCH_MODES[mode] == SketchSampler.bundled else str(SKETCH_MODES[mode])


class UpscalerSampler(Sampler):
    """The 2x upscaler: 64 px faces -> 128 px faces. None is bundled yet (then 128 px faces are Lanczos
    enlargements)."""

    bundled = None
    archs = ("upscaler",)

    @torch.inference_mode()
    def draw(self, faces: torch.Tensor) -> torch.Tensor:
        """(B, 3, 64, 64) uint8 faces -> (B, 3, 128, 128) uint8 faces."""
        return to_uint8(self.G(faces.to(self.device).float().div(127.5).sub(1)))
