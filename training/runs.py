"""A run folder, the stylegan2-ada way: options, JSON-lines stats, sample grids, snapshots.

``options.json`` holds what the run was started with; ``stats.jsonl`` one line
per logging interval; ``snapshot.pt`` the whole resumable state (replaced
atomically, so a kill loses at most one snapshot interval); sample grids and
exported weights sit beside them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import torch


class RunFolder:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def snapshot(self) -> Path:
        return self.path / "snapshot.pt"

    @property
    def stats(self) -> Path:
        return self.path / "stats.jsonl"

    def start(self, options: Any, resume: bool) -> dict | None:
        """Create the folder (or reopen it with ``resume``); return the snapshot state to resume from, if any."""
        if self.snapshot.exists() and not resume:
            raise FileExistsError(f"{self.path} already holds a run; pass --resume to continue it")
        self.path.mkdir(parents=True, exist_ok=True)
        opts = dataclasses.asdict(options) if dataclasses.is_dataclass(options) else dict(options)
        if not (self.path / "options.json").exists():
            self._write_text("options.json", json.dumps(opts, indent=2, default=str))
        if not resume or not self.snapshot.exists():
            self.stats.unlink(missing_ok=True)
            return None
        state = torch.load(self.snapshot, map_location="cpu", weights_only=True)
        self._truncate_stats(state["step"])
        return state

    def saved_options(self) -> dict:
        return json.loads((self.path / "options.json").read_text())

    def log(self, step: int, **values: float) -> None:
        row = {"step": step, "time": round(time.time(), 3), **{k: round(float(v), 5) for k, v in values.items()}}
        with open(self.stats, "a") as f:
            f.write(json.dumps(row) + "\n")

    def save_snapshot(self, state: dict) -> None:
        tmp = self.snapshot.with_suffix(".pt.tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.snapshot)

    def _truncate_stats(self, step: int) -> None:
        """Drop stats logged after the snapshot, so a resumed run's curve has no doubled stretch."""
        if self.stats.exists():
            keep = [ln for ln in self.stats.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
            self._write_text("stats.jsonl", "".join(ln + "\n" for ln in keep))

    def _write_text(self, name: str, text: str) -> None:
        tmp = self.path / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path / name)
