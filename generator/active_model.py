"""Which generator weights are active: a small pointer file that `moebot models promote` writes
and every running generator service watches, so a promotion reaches a running bot without a restart.

Promoted files are checked first (they load, and draw finite pixels: ``model_check``), then copied
into ``<data_dir>/models/`` under their content hash, so the active file can never change under the
service's feet, and older versions stay for a rollback; the copy carries the source's version name
in its header, so captions, the pointer and the registry agree on it. Every promotion is also
appended to a history, which a damaged pointer (cut short by a full disk, or by hand) falls back to,
with a logged error rather than an exception.
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
from typing import TYPE_CHECKING, Sequence

from safetensors.torch import load_file, save

from generator.durable import write_durably
from generator.model_check import check_weights
from generator.weights import read_metadata, weights_version

if TYPE_CHECKING:
    from generator.service import DrawingService

log = logging.getLogger(__name__)
POINTER = "active.json"
HISTORY = "history.jsonl"  # every promotion, oldest first: what a damaged pointer falls back to


@dataclass(frozen=True)
class ActiveModel:
    weights: Path
    version: str
    promoted_at: float

    def to_json(self) -> str:
        return json.dumps({"weights": str(self.weights), "version": self.version, "promoted_at": self.promoted_at})


def models_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "models"


def read_active(data_dir: Path) -> ActiveModel | None:
    """The promoted model, or None when nothing was promoted (the bundled weights serve); a damaged pointer
    is logged and reads as the last promotion the history recorded."""
    active, problem = read_pointer(data_dir)
    if problem:
        log.error("%s", problem)
    return active


def read_pointer(data_dir: Path) -> tuple[ActiveModel | None, str | None]:
    """(what ``read_active`` returns, what is wrong with the pointer or None), for callers that log it."""
    path = models_dir(data_dir) / POINTER
    try:
        return _parse(path.read_text()), None
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError, KeyError, TypeError) as e:
        fallback = last_promotion(data_dir)
        instead = f"the last recorded promotion, {fallback.version}, serves" if fallback else \
            "no promotion is recorded, so the configured weights serve"
        return fallback, f"the active-model pointer {path} is damaged ({type(e).__name__}: {e}); {instead}"


def _parse(text: str) -> ActiveModel:
    raw = json.loads(text)
    return ActiveModel(Path(raw["weights"]), str(raw["version"]), float(raw["promoted_at"]))


def last_promotion(data_dir: Path) -> ActiveModel | None:
    """The newest whole line of the history whose weights file is still there."""
    try:
        lines = (models_dir(data_dir) / HISTORY).read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            active = _parse(line)
        except (ValueError, KeyError, TypeError):  # a line cut short
            continue
        if active.weights.is_file():
            return active
    return None


def promote_file(data_dir: Path, source: Path) -> ActiveModel:
    """Check and copy ``source`` (``keep_copy``), then point the pointer at the copy (``point_to``).

    Services in other processes follow within seconds; to switch this process's own service before
    saying so, use ``promote_and_serve``."""
    active = keep_copy(data_dir, source)
    point_to(data_dir, active)
    return active


def keep_copy(data_dir: Path, source: Path) -> ActiveModel:
    """Copy ``source`` into the models folder under its content hash, once it proved it draws; returns what
    the pointer would name (nothing is pointed yet). ValueError says why a file is refused; nothing is
    unpickled."""
    meta = read_metadata(source)  # raises for anything that is not safetensors
    if "config" not in meta:
        raise ValueError(f"{source}: not a moebot weights file (no config in its header)")
    check_weights(source)
    version = weights_version(source, meta)
    tensors, header = load_file(str(source)), {k: json.dumps(v) for k, v in meta.items()}
    header["version"] = json.dumps(version)  # the copy is named by hash: it carries the source's name inside
    data = save(tensors, header)
    folder = models_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{hashlib.sha256(data).hexdigest()[:12]}.safetensors"
    if not target.exists():
        write_durably(target, data)
    return ActiveModel(target, version, time.time())


def point_to(data_dir: Path, active: ActiveModel) -> None:
    """Make ``active`` the active model: appended to the history first, then the pointer replaced atomically."""
    folder = models_dir(data_dir)
    with open(folder / HISTORY, "a") as f:
        f.write(active.to_json() + "\n")
        f.flush()
        os.fsync(f.fileno())
    write_durably(folder / POINTER, active.to_json().encode())


async def promote_and_serve(data_dir: Path, source: Path, services: Sequence[DrawingService]) -> ActiveModel:
    """``promote_file``, with this process's generator ``services`` switched to the new model before the pointer
    names it, so whoever is told "promoted" next gets a picture by it. ValueError or WorkerFailed (a service
    refused it) leave the pointer as it was."""
    active = await asyncio.to_thread(keep_copy, data_dir, source)
    for service in services:
        await service.promote(active.weights)
    await asyncio.to_thread(point_to, data_dir, active)
    return active


async def follow_promotions(service, data_dir: Path, every: float = 2.0) -> None:
    """Hot-swap ``service`` whenever the pointer changes. A refused file is logged and skipped; a damaged pointer
    is logged once (it reads as the last recorded promotion) and following goes on."""
    seen, problem = read_pointer(data_dir)
    while True:
        await asyncio.sleep(every)
        current, trouble = read_pointer(data_dir)
        if trouble and trouble != problem:
            log.error("%s", trouble)
        problem = trouble
        if current is None or current == seen:
            continue
        seen = current
        try:
            version = await service.promote(current.weights)
            log.info("now serving %s", version)
        except Exception as e:
            log.error("promotion of %s refused, still serving %s: %s", current.weights, service.version, e)
