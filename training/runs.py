"""A run folder, the stylegan2-ada way: options, JSON-lines stats, sample grids, snapshots.

``options.json`` holds what the run was started with; ``stats.jsonl`` one line
per logging interval; ``snapshot.pt`` the whole resumable state (replaced
atomically, so a kill loses at most one snapshot interval); sample grids and
exported weights sit beside them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm


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


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def open_run(opts: Any, resume: bool) -> tuple[RunFolder, dict | None, torch.device]:
    """The setup every training loop shares: refuse a run with no end before a folder is made for nothing,
    make (or reopen) the run folder, and fix the device, torch threads and seed. Returns the folder, the
    state to resume from (if any) and the device."""
    if opts.steps is None and opts.minutes is None:
        raise ValueError("give --steps or --minutes")
    run = RunFolder(opts.run)
    resume_state = run.start(opts, resume)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    return run, resume_state, pick_device(opts.device)


class Schedule:
    """The clockwork every training loop shares: the step count and training time (totals across resumes),
    when to stop (``steps`` or ``minutes``), a progress bar, means of the losses logged every ``log_every``
    steps, and whether a grid or a snapshot is due. A non-finite loss stops the run; the last snapshot stays."""

    def __init__(self, run: RunFolder, opts: Any, batch: int, name: str, progress: bool,
                 step: int = 0, elapsed: float = 0.0):
        self.run, self.opts, self.batch = run, opts, batch
        self.step, self.elapsed = step, elapsed
        self.clock = time.process_time if opts.clock == "cpu" else time.perf_counter
        by_steps = opts.steps is not None
        self.bar = tqdm(total=opts.steps if by_steps else int(opts.minutes * 60),
                        initial=step if by_steps else int(elapsed), unit="step" if by_steps else "s",
                        disable=not progress, desc=f"{name} {run.path.name}", dynamic_ncols=True)
        self._sums: dict[str, float] = {}
        self._t0 = 0.0

    def done(self) -> bool:
        o = self.opts
        return (o.steps is not None and self.step >= o.steps) or (
            o.minutes is not None and self.elapsed >= o.minutes * 60)

    def begin(self) -> None:
        self._t0 = self.clock()

    def end(self, losses: dict[str, Any], postfix: Callable[[dict[str, float]], dict[str, str]],
            write_grid: Callable[[], None], write_snapshot: Callable[[], None]) -> None:
        """Count the step that began at ``begin`` (``losses`` are its tensors; ``loss`` itself is left out),
        and write the grid and the snapshot when they are due."""
        stats = {k: float(v.detach()) for k, v in losses.items() if k != "loss"}
        if not all(math.isfinite(v) for v in stats.values()):
            raise FloatingPointError(f"step {self.step}: non-finite loss {stats}; the last snapshot is kept")
        for k, v in stats.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        self.step += 1
        dt = self.clock() - self._t0
        self.elapsed += dt
        self.bar.update(1 if self.opts.steps is not None else dt)
        if self.step % self.opts.log_every == 0:
            means = {k: v / self.opts.log_every for k, v in self._sums.items()}
            self.run.log(self.step, kimg=self.step * self.batch / 1000, sec_per_step=dt,
                         minutes=self.elapsed / 60, **means)
            self.bar.set_postfix(**postfix(means))
            self._sums.clear()
        if self.step % self.opts.sample_every == 0:
            write_grid()
        if self.step % self.opts.snapshot_every == 0:
            write_snapshot()

    def finish(self, write_grid: Callable[[], None], write_snapshot: Callable[[], None]) -> None:
        """The run is done: close the bar, write the last grid and snapshot."""
        self.bar.close()
        write_grid()
        write_snapshot()


def restore(state: dict | None, parts: dict[str, Any]) -> tuple[int, float]:
    """Load each part (a network or an optimiser, by its name in the snapshot) and the RNG from ``state``;
    return the (step, elapsed) to go on from: (0, 0.0) for a new run (``state`` None)."""
    if state is None:
        return 0, 0.0
    for name, part in parts.items():
        part.load_state_dict(state[name])
    torch.set_rng_state(state["rng"])
    return state["step"], state["elapsed"]


def snapshot_state(parts: dict[str, Any], step: int, elapsed: float, **extra: Any) -> dict:
    """What ``restore`` reads back: each part's state dict, the RNG, the step and the training time."""
    return {**{name: part.state_dict() for name, part in parts.items()}, **extra,
            "rng": torch.get_rng_state(), "step": step, "elapsed": elapsed}
