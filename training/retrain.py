"""``python -m training.retrain``: one fine-tuning run of the retrainer, in a process of its own.

It fine-tunes the parent generator on the base faces plus the curated ones (curated faces weighted, see
``batch_weights``), measures parent and candidate with the evaluation classifier on the fixed held-out base
faces and fixed latents, draws a before/after grid and writes ``verdict.json``. It decides nothing: the bot
applies the gate and promotes, so a run killed at any point leaves the active model serving. It opens no
database: the bot reads the run's faces from its own (SQLite or PostgreSQL) and hands them over in a rows
file (training/dataset.py), and holds the run's lease there while the run goes (bot/retraining.py), so two
bot processes, even on two machines, never run two.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

@dataclass(frozen=True, kw_only=True)
class FineTune:
    """How a run fine-tunes: ``[training]`` in bot.toml holds these and the run hands them to the training loop
    by name, so a new setting is written here once."""
    steps: int = 1000
    minutes: float = 0.0   # CPU-minutes of the training loop, whichever of steps and minutes ends first; 0: steps only
    batch: int = 64
    threads: int = 1       # torch threads of the training process, which also runs at nice 10
    d_warmup: int = 100    # first steps train only the fresh discriminator
    g_ramp: int = 0        # then G's rate rises from 0 to lr over these steps
    d_ramp: int = 0        # D's rate rises from 0 over the first steps (a kept D's fresh Adam moments)
    curated_share: float = 0.25  # at most this share of each batch is curated faces
    curated_half: int = 20  # curated faces that get half of curated_share
    lr: float = 1e-4       # fine-tuning learning rate (training from scratch uses 2e-4)
    g_cls_weight: float = 0.2  # G's colour loss, as the bundled models trained (1.0 smears eye colour on faces)

    def tuning(self) -> dict[str, int | float]:
        """These settings alone (not those of a subclass), by name."""
        return {f.name: getattr(self, f.name) for f in fields(FineTune)}


@dataclass(frozen=True, kw_only=True)
class RetrainOptions(FineTune):
    data: str              # the run's faces: a rows file (training.dataset.write_rows), or a data directory
    run: str               # this run's folder
    parent: str            # weights of the model that serves now
    version: str           # the name the candidate will carry
    parent_d: str = ""     # the parent's discriminator, if kept (else the run starts a fresh one)


def retrain(opts: RetrainOptions, progress: bool = False) -> dict:
    """Fine-tune, evaluate both, write and return the verdict (see the module docstring)."""
    import torch

    from generator.images import grid, to_uint8
    from generator.models import tag_condition
    from generator.weights import BUNDLED_TAGGER, load_module, save_module
    from training.dataset import FaceDataset, source_rows
    from training.metrics import Evaluator
    from training.train_acgan import SAMPLE_EYES, TrainOptions, sample_latents, training_loop

    torch.set_num_threads(opts.threads)
    run = Path(opts.run)
    _, data = source_rows(Path(opts.data), "train", ("base", "curated"))  # what the loop loads: the exact data
    # A run is never resumed (a killed one fails), so its only snapshot and grid are the last, written when
    # the steps or the CPU-minutes run out, whichever comes first.
    exported = training_loop(TrainOptions(**{
        **opts.tuning(), "minutes": opts.minutes or None, "data": opts.data, "run": opts.run, "clock": "cpu",
        "init": opts.parent, "init_d": opts.parent_d or None, "snapshot_every": opts.steps,
        "sample_every": opts.steps, "log_every": max(1, min(25, opts.steps // 10))}), progress=progress)
    parent, _ = load_module(opts.parent)
    candidate, meta = load_module(exported)
    candidate_path = run / "candidate.safetensors"
    save_module(candidate, candidate_path, candidate.cfg.to_dict(), version=opts.version,
                parent=Path(opts.parent).name, step=meta.get("step"))
    tagger, _ = load_module(BUNDLED_TAGGER)
    evaluator = Evaluator.build(tagger, FaceDataset.load(opts.data, "heldout", ("base",), progress=False))
    figures = {"candidate": evaluator.evaluate(candidate), "parent": evaluator.evaluate(parent)}
    z, hair, eye = sample_latents(candidate.cfg.z_dim)
    with torch.no_grad():
        before, after = (to_uint8(g(z, tag_condition(hair, eye))) for g in (parent, candidate))
    rows = torch.cat([before.view(-1, len(SAMPLE_EYES), *before.shape[1:]),
                      after.view(-1, len(SAMPLE_EYES), *after.shape[1:])], 1).flatten(0, 1)
    grid(rows, 2 * len(SAMPLE_EYES)).save(run / "before-after.png")  # each row: before | after
    verdict = {
        "options": asdict(opts), "candidate": str(candidate_path), "grid": str(run / "before-after.png"),
        "metrics": figures["candidate"], "parent_metrics": figures["parent"],
        "base_max_id": max(r.id for r in data if r.status == "base"),
        "curated_ids": [r.id for r in data if r.status == "curated"],
    }
    tmp = run / "verdict.json.tmp"
    tmp.write_text(json.dumps(verdict, indent=1))
    os.replace(tmp, run / "verdict.json")
    (run / "snapshot.pt").unlink(missing_ok=True)  # a finished run is never resumed: keep disk use small
    return verdict


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, field in RetrainOptions.__dataclass_fields__.items():
        flag = "--" + name.replace("_", "-")
        if field.default is MISSING:
            p.add_argument(flag, required=True, dest=name)
        else:
            p.add_argument(flag, type=type(field.default), default=field.default, dest=name)
    retrain(RetrainOptions(**vars(p.parse_args(argv))), progress=sys.stderr.isatty())
    return 0


if __name__ == "__main__":
    sys.exit(main())
