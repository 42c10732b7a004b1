"""Which weights of each model kind are active: a small pointer file that every running generator service
watches, so a promotion reaches a running bot without a restart.

The pointer is derived from the model registry (training/lifecycle.py writes it once a promotion is
recorded there); nothing else decides what it names. Promoted files are checked first (they load as
their kind, and draw finite output: ``model_check``), then copied into ``<data_dir>/models/`` under
their content hash, so the active file can never change under the service's feet, and older versions
stay for a rollback; the copy carries the source's version name in its header, so captions, the
pointer and the registry agree on it. Every pointer change is also appended to a history, which a
damaged pointer (cut short by a full disk, or by hand) falls back to, with a logged error rather than
an exception.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors.torch import load_file, save

from generator.durable import write_durably
from generator.model_check import check_weights
from generator.model_kinds import KINDS
from generator.weights import read_metadata, weights_version

if TYPE_CHECKING:
    from generator.service import DrawingService

log = logging.getLogger(__name__)
POINTER = "active.json"  # {kind: {"weights", "version", "promoted_at"}}
HISTORY = "history.jsonl"  # every pointer change, oldest first: what a damaged pointer falls back to


@dataclass(frozen=True)
class ActiveModel:
    weights: Path
    version: str
    promoted_at: float
    kind: str = "face"

    def entry(self) -> dict:
        return {"weights": str(self.weights), "version": self.version, "promoted_at": self.promoted_at}

    def to_json(self) -> str:
        return json.dumps({**self.entry(), "kind": self.kind})


def models_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "models"


def read_active(data_dir: Path, kind: str = "face") -> ActiveModel | None:
    """The promoted model of ``kind``, or None when none was promoted (the configured or bundled weights serve);
    a damaged pointer is logged and reads as the last promotions the history recorded."""
    active, problem = read_pointer(data_dir)
    if problem:
        log.error("%s", problem)
    return active.get(kind)


def read_pointer(data_dir: Path) -> tuple[dict[str, ActiveModel], str | None]:
    """(the promoted model of each kind, what is wrong with the pointer or None), for callers that log it."""
    path = models_dir(data_dir) / POINTER
    try:
        raw = json.loads(path.read_text())
        if "weights" in raw:  # written before model kinds: the face generator's
            raw = {"face": raw}
        return {kind: _parse(entry, kind) for kind, entry in raw.items()}, None
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        fallback = last_promotions(data_dir)
        instead = "; ".join(f"the last recorded {kind} promotion, {a.version}, serves" for kind, a in
                            fallback.items()) or "no promotion is recorded, so the configured weights serve"
        return fallback, f"the active-model pointer {path} is damaged ({type(e).__name__}: {e}); {instead}"


def _parse(raw: dict, kind: str = "face") -> ActiveModel:
    return ActiveModel(Path(raw["weights"]), str(raw["version"]), float(raw["promoted_at"]), raw.get("kind", kind))


def last_promotions(data_dir: Path) -> dict[str, ActiveModel]:
    """The newest whole line of the history of each kind whose weights file is still there."""
    try:
        lines = (models_dir(data_dir) / HISTORY).read_text().splitlines()
    except OSError:
        return {}
    found: dict[str, ActiveModel | None] = {}
    for line in reversed(lines):
        try:
            raw = json.loads(line)
            active = None if raw["weights"] is None else _parse(raw)  # None: the kind was switched off
            kind = raw.get("kind", "face")
        except (ValueError, KeyError, TypeError, AttributeError):  # a line cut short
            continue
        if kind not in found and (active is None or active.weights.is_file()):
            found[kind] = active
    return {kind: active for kind, active in found.items() if active is not None}


def keep_copy(data_dir: Path, source: Path) -> ActiveModel:
    """Copy ``source`` into the models folder under its content hash, once it proved it draws as the kind its
    architecture names; returns what the pointer would name (nothing is pointed yet). ValueError says why a
    file is refused; nothing is unpickled."""
    kind = check_weights(source)  # raises for anything that is not a servable safetensors file
    meta = read_metadata(source)
    version = weights_version(source, meta)
    tensors, header = load_file(str(source)), {k: json.dumps(v) for k, v in meta.items()}
    header["version"] = json.dumps(version)  # the copy is named by hash: it carries the source's name inside
    data = save(tensors, header)
    folder = models_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{hashlib.sha256(data).hexdigest()[:12]}.safetensors"
    if not target.exists():
        write_durably(target, data)
    return ActiveModel(target, version, time.time(), kind)


def point_to(data_dir: Path, active: ActiveModel) -> None:
    """Make ``active`` the active model of its kind: appended to the history first, then the pointer replaced
    atomically, the other kinds' entries kept (one writer at a time, across processes)."""
    _repoint(data_dir, active.kind, active, active.to_json())


def point_to_none(data_dir: Path, kind: str, version: str) -> None:
    """No model of ``kind`` serves (a kind a service can go without, such as the upscaler): the kind leaves the
    pointer, and the history records ``version`` (the registry's name for none) with no weights."""
    _repoint(data_dir, kind, None, json.dumps({"weights": None, "version": version, "promoted_at": time.time(),
                                               "kind": kind}))


def _repoint(data_dir: Path, kind: str, active: ActiveModel | None, history_line: str) -> None:
    folder = models_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / HISTORY, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(history_line + "\n")
        f.flush()
        os.fsync(f.fileno())
        current, _ = read_pointer(data_dir)
        current.pop(kind, None)
        if active is not None:
            current[kind] = active
        write_durably(folder / POINTER, json.dumps({k: a.entry() for k, a in current.items()}).encode())


async def follow_promotions(service: DrawingService, data_dir: Path, every: float = 2.0) -> None:
    """Hot-swap each kind of ``service`` whenever the pointer changes it (a kind that may go without a model and
    leaves the pointer is dropped). A refused file is logged and skipped; a damaged pointer is logged once (it
    reads as the last recorded promotions) and following goes on."""
    seen, problem = read_pointer(data_dir)
    while True:
        await asyncio.sleep(every)
        current, trouble = read_pointer(data_dir)
        if trouble and trouble != problem:
            log.error("%s", trouble)
        problem = trouble
        for kind, active in {**dict.fromkeys(seen), **current}.items():  # None: the kind left the pointer
            if seen.get(kind) == active or (active is None and KINDS[kind].required):
                continue
            try:
                version = await service.promote(active.weights if active else None, kind)
                log.info("now serving %s as the %s model", version, kind)
            except Exception as e:
                log.error("promotion of %s refused, still serving %s: %s", active.weights if active else "none",
                          getattr(service.models.get(kind), "version", f"no {kind} model"), e)
        seen = current
