"""Which generator weights are active: a small pointer file that `moebot models promote` writes
and every running generator service watches, so a promotion reaches a running bot without a restart.

Promoted files are copied into ``<data_dir>/models/`` under their content hash, so the active file
can never change under the service's feet, and older versions stay for a rollback; the copy carries
the source's version name in its header, so captions, the pointer and the registry agree on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file, save

from generator.weights import read_metadata, weights_version

log = logging.getLogger(__name__)
POINTER = "active.json"


@dataclass(frozen=True)
class ActiveModel:
    weights: Path
    version: str
    promoted_at: float


def models_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "models"


def read_active(data_dir: Path) -> ActiveModel | None:
    """The promoted model, or None when nothing was promoted (the bundled weights serve)."""
    try:
        raw = json.loads((models_dir(data_dir) / POINTER).read_text())
    except FileNotFoundError:
        return None
    return ActiveModel(Path(raw["weights"]), raw["version"], raw["promoted_at"])


def promote_file(data_dir: Path, source: Path) -> ActiveModel:
    """Copy ``source`` into the models folder and point the pointer at it (atomically).

    The file must at least be a moebot weights file (its header is read, nothing is unpickled);
    whether it draws is checked by each service when it loads it, and a refused file leaves the
    service on its old weights.
    """
    meta = read_metadata(source)  # raises for anything that is not safetensors
    if "config" not in meta:
        raise ValueError(f"{source}: not a moebot weights file (no config in its header)")
    version = weights_version(source, meta)
    tensors, header = load_file(str(source)), {k: json.dumps(v) for k, v in meta.items()}
    header["version"] = json.dumps(version)  # the copy is named by hash: it carries the source's name inside
    data = save(tensors, header)
    folder = models_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{hashlib.sha256(data).hexdigest()[:12]}.safetensors"
    if not target.exists():
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    active = ActiveModel(target, version, time.time())
    tmp = folder / (POINTER + ".tmp")
    tmp.write_text(json.dumps({"weights": str(target), "version": version, "promoted_at": active.promoted_at}))
    os.replace(tmp, folder / POINTER)
    return active


async def follow_promotions(service, data_dir: Path, every: float = 2.0) -> None:
    """Hot-swap ``service`` whenever the pointer changes; a refused file is logged and skipped."""
    seen = read_active(data_dir)
    while True:
        await asyncio.sleep(every)
        current = read_active(data_dir)
        if current is None or current == seen:
            continue
        seen = current
        try:
            version = await service.promote(current.weights)
            log.info("now serving %s", version)
        except Exception as e:
            log.error("promotion of %s refused, still serving %s: %s", current.weights, service.version, e)
