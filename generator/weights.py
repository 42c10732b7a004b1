"""Weight files: safetensors with the model's config in the header.

Loading never unpickles: safetensors holds plain tensors, and the config is JSON
in its metadata, so a weights file from anywhere is safe to open.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from generator.models import acgan, face_gan, seed_acgan, sketch_encoder, sketch_gan, tagger, upscaler

BUNDLED_DIR = Path(__file__).parent / "weights"
BUNDLED_GENERATOR = BUNDLED_DIR / "face-gan-128.safetensors"
BUNDLED_DISCRIMINATOR = BUNDLED_DIR / "face-gan-128-d.safetensors"  # its partner: fine-tunes start here
BUNDLED_TAGGER = BUNDLED_DIR / "tagger.safetensors"
BUNDLED_SKETCH = BUNDLED_DIR / "sketch.safetensors"
BUNDLED_SKETCH_ENCODER = BUNDLED_DIR / "sketch-encoder.safetensors"

# arch name -> (config class, module class) for every network a weights file may hold
ARCHS: dict[str, tuple[type, type[nn.Module]]] = {
    "acgan": (acgan.ACGANConfig, acgan.Generator),
    "acgan-d": (acgan.ACGANConfig, acgan.Discriminator),
    "face-gan": (face_gan.FaceGANConfig, face_gan.Generator),
    "face-gan-d": (face_gan.FaceGANConfig, face_gan.Discriminator),
    "seed-acgan": (seed_acgan.SeedACGANConfig, seed_acgan.Generator),
    "tagger": (tagger.TaggerConfig, tagger.Tagger),
    "upscaler": (upscaler.UpscalerConfig, upscaler.Upscaler),
    "sketch2face": (sketch_gan.SketchGANConfig, sketch_gan.SketchToFace),
    "face2sketch": (sketch_gan.SketchGANConfig, sketch_gan.FaceToSketch),
    "sketch-encoder": (sketch_encoder.SketchEncoderConfig, sketch_encoder.SketchEncoder),
}


def save_module(module: nn.Module, path: str | os.PathLike, config: dict, **info: Any) -> None:
    """Write ``module``'s weights and buffers atomically, with its config and ``info`` as metadata.

    Float tensors are stored as fp16 (half the bytes, no visible change in a
    face) and widened back to fp32 by ``load_module``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v).detach().contiguous().cpu()
             for k, v in module.state_dict().items()}
    meta = {"config": json.dumps(config), **{k: json.dumps(v) for k, v in info.items()}}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, path)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON metadata of a weights file; ValueError when it is not a safetensors file."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except SafetensorError as e:
        raise ValueError(f"{path}: not a safetensors file ({e})") from None
    return {k: json.loads(v) for k, v in meta.items()}


def face_px(path: str | os.PathLike) -> int:
    """The size a face generator's weights file draws its faces at: 64, or 128 for a face-gan-128."""
    return read_metadata(path)["config"].get("size", 64)


def weights_version(path: str | os.PathLike, meta: dict[str, Any]) -> str:
    """What a reply names as the model that drew it: the file's own version, else its name and step."""
    return str(meta.get("version") or f"{Path(path).stem}@{meta.get('step', '?')}")


def load_module(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Build the network named in the file's config and load its tensors; returns (module in eval mode, metadata)."""
    meta = read_metadata(path)
    if "config" not in meta:
        raise ValueError(f"{path}: not a moebot weights file (no config in its header)")
    cfg_dict = dict(meta["config"])
    arch = cfg_dict.pop("arch", None)
    if arch not in ARCHS:
        raise ValueError(f"{path}: unknown architecture {arch!r}")
    cfg_cls, module_cls = ARCHS[arch]
    module = module_cls(cfg_cls(**cfg_dict))
    module.load_state_dict(load_file(str(path), device=str(device)))  # copies widen fp16 into fp32 params
    return module.to(device).eval(), meta


def file_sha256(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def face_reference(path: str | os.PathLike) -> dict[str, str]:
    """What a network trained against the face generator in ``path`` records of it: its version, the file
    (relative to the bundled weights when it is one of them) and its SHA-256, which ``find_face`` checks."""
    path = Path(path).resolve()
    where = path.name if path.parent == BUNDLED_DIR.resolve() else str(path)
    return {"version": weights_version(path, read_metadata(path)), "file": where, "sha256": file_sha256(path)}


def find_face(reference: dict[str, str], beside: str | os.PathLike) -> Path:
    """The face generator file a ``face_reference`` names: at its recorded place (a bare name: among the
    bundled weights), else under that name beside ``beside`` (a copied run folder); ValueError unless its
    bytes are the ones recorded (another face model's latents mean nothing to the network)."""
    name = Path(reference["file"])
    places = [BUNDLED_DIR / name if len(name.parts) == 1 else name, Path(beside).parent / name.name]
    for place in places:
        if place.is_file() and file_sha256(place) == reference["sha256"]:
            return place
    raise ValueError(f"{beside} was trained against the face model {reference['version']} "
                     f"({reference['file']}, SHA-256 {reference['sha256'][:12]}), which is not at "
                     f"{' or '.join(str(p) for p in places)} (or has changed)")
