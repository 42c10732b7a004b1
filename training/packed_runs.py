"""A run's resumable state in one small file that can be committed, and back.

A bundled model may train for many CPU-hours across working sessions on fresh
machines, so its state must travel in the repository: kept small and replaced,
not piled up in history. ``snapshot.pt`` is fp32 and ~34 MB for the face GAN;
packed, network weights are fp16 and Adam's moments bf16 (rounded once per
session; training goes on in fp32), and Adam's first moment is left out where
beta1 is 0 (Adam then overwrites it with the gradient every step). The run's
options, stats and resume log travel in the header, so ``unpack`` rebuilds a
run folder that ``moebot train --resume`` continues.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, safe_open, save_file

from training.runs import RunFolder

TEXT_FILES = ("options.json", "stats.jsonl", "resumes.jsonl")


def _flatten(tree: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Move every tensor of a nested dict/list into ``tensors`` under its path; return the rest as JSON-able."""
    if isinstance(tree, torch.Tensor):
        tensors[prefix] = tree
        return {"$tensor": prefix}
    if isinstance(tree, dict):
        return {"$dict": [[k, _flatten(v, f"{prefix}/{k}", tensors)] for k, v in tree.items()]}
    if isinstance(tree, (list, tuple)):
        return [_flatten(v, f"{prefix}/{i}", tensors) for i, v in enumerate(tree)]
    return tree


def _unflatten(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, dict) and "$tensor" in tree:
        return tensors.get(tree["$tensor"])
    if isinstance(tree, dict) and "$dict" in tree:
        return {k: _unflatten(v, tensors) for k, v in tree["$dict"]}
    if isinstance(tree, list):
        return [_unflatten(v, tensors) for v in tree]
    return tree


def _drop_unused_moments(state: dict) -> None:
    """Adam with beta1 = 0 never reads its first moment; do not carry it."""
    for opt in (v for v in state.values() if isinstance(v, dict) and "param_groups" in v):
        for group in opt["param_groups"]:
            if group["betas"][0] == 0:
                for idx in group["params"]:
                    opt["state"].get(idx, {}).pop("exp_avg", None)


def pack(run_dir: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Write the run's snapshot, options and logs into ``dest`` (a .safetensors file)."""
    run = RunFolder(run_dir)
    state = torch.load(run.snapshot, map_location="cpu", weights_only=True)
    _drop_unused_moments(state)
    tensors: dict[str, torch.Tensor] = {}
    tree = _flatten(state, "", tensors)
    small = {}
    for key, t in tensors.items():
        if t.is_floating_point() and t.dim() > 0:
            t = t.to(torch.bfloat16 if "/state/" in key else torch.float16)  # optimizer moments: bf16's range
        small[key] = t.contiguous()
    meta = {"tree": json.dumps(tree)}
    meta.update({name: (run.path / name).read_text() for name in TEXT_FILES if (run.path / name).exists()})
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    save_file(small, str(tmp), metadata=meta)
    os.replace(tmp, dest)
    return dest


def unpack(packed: str | os.PathLike, run_dir: str | os.PathLike) -> RunFolder:
    """Rebuild a run folder from ``pack``'s file: fp32 tensors in ``snapshot.pt``, the options and logs beside it.
    A missing first moment comes back as zeros (Adam with beta1 = 0 overwrites it)."""
    run = RunFolder(run_dir)
    if run.snapshot.exists():
        raise FileExistsError(f"{run.path} already holds a run; unpack into an empty folder")
    with safe_open(str(packed), framework="pt") as f:
        meta = f.metadata() or {}
    tensors = {k: (v.float() if v.is_floating_point() and v.dim() > 0 else v)
               for k, v in load_file(str(packed)).items()}
    state = _unflatten(json.loads(meta["tree"]), tensors)
    for opt in (v for v in state.values() if isinstance(v, dict) and "param_groups" in v):
        for moments in opt["state"].values():
            if "exp_avg" not in moments:
                moments["exp_avg"] = torch.zeros_like(moments["exp_avg_sq"])
    run.path.mkdir(parents=True, exist_ok=True)
    for name in TEXT_FILES:
        if name in meta:
            (run.path / name).write_text(meta[name])
    run.save_snapshot(state)
    return run
