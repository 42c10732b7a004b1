"""Benchmark: one scheduled retraining run on the real faces, as the bot runs it, and the gate's figures.

Base = every imported face; curated = N training faces of one hair colour marked curated (as if voted
up). The run is the bot's own: ``Retrainer`` starts ``python -m training.retrain`` in a child process
(nice 10, [training] threads) that fine-tunes the serving model, then the gate compares both on the
fixed held-out faces. Prints the wall time and the figures before and after. Works on a scratch copy
of the database (faces and caches are linked, not copied), so the data directory is left as it was.

    python benchmarks/retrain_gate.py --data data [--hair pink] [--curated 300] [--steps 1500] [--minutes 45]
        [--weights G.safetensors --discriminator D.safetensors]

A face-gan parent needs its discriminator (--discriminator): a fresh one first drags the generator towards
what it can tell apart, and faces blotch.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bot.config import TrainingConfig  # noqa: E402
from bot.retraining import Retrainer  # noqa: E402
from bot.store import Store  # noqa: E402
from generator.tags import HAIR_COLORS  # noqa: E402
from generator.weights import BUNDLED_GENERATOR, face_px, read_metadata  # noqa: E402
from training.dataset import DB_NAME, is_heldout  # noqa: E402

FIGURES = ("hair_ratio", "eye_ratio", "diversity_ratio", "fd", "hair_acc", "eye_acc")


def scratch_copy(data: Path, into: Path) -> Path:
    """The database copied (consistently, through SQLite's backup), faces and caches linked."""
    into.mkdir(parents=True)
    src = sqlite3.connect(data / DB_NAME)
    dst = sqlite3.connect(into / DB_NAME)
    src.backup(dst)
    src.close(), dst.close()
    for name in ("faces", "cache"):
        if (data / name).exists():
            (into / name).symlink_to((data / name).resolve())
    return into


def curate(data: Path, hair: int, n: int, size: int) -> int:
    """Mark ``n`` training faces of one hair colour curated, of the serving model's size (chat curates the
    pictures it sent: a 128 px model's at 128 px)."""
    conn = sqlite3.connect(data / DB_NAME)
    rows = [i for i, sha in conn.execute("SELECT id, sha256 FROM images WHERE hair = ? AND size = ? AND "
                                         "status = 'base' ORDER BY id", (hair, size)) if not is_heldout(sha)][:n]
    conn.executemany("UPDATE images SET status = 'curated' WHERE id = ?", [(i,) for i in rows])
    conn.commit()
    conn.close()
    return len(rows)


async def run(args: argparse.Namespace, data: Path) -> int:
    cfg = dataclasses.replace(TrainingConfig(), steps=args.steps, minutes=args.minutes, threads=args.threads,
                              **dict(args.set))
    store = await Store.open(data / DB_NAME, data)
    try:
        retrainer = Retrainer(cfg, data, store.db, Path(args.weights))
        if args.discriminator:
            await keep_discriminator(retrainer, args.discriminator)
        t0 = time.monotonic()
        print(await retrainer.start("benchmark"), flush=True)
        outcome = await retrainer.wait()
        wall = time.monotonic() - t0
        record = next(m for m in await retrainer.models() if m.version == outcome.version)
    finally:
        await store.close()
    reached = read_metadata(record.run_dir / "generator.safetensors")  # the run's last export
    print(f"run {outcome.version}: {wall / 60:.1f} min wall; training loop {reached.get('step')} steps in "
          f"{reached.get('train_minutes')} CPU-minutes (budget {args.steps} steps or {args.minutes:g} CPU-minutes, "
          f"{args.threads} thread(s), nice 10)")
    print(f"{'figure':<16}{'active':>10}{'candidate':>11}")
    for k in FIGURES:
        if k in record.metrics:
            print(f"{k:<16}{record.parent_metrics[k]:>10.3f}{record.metrics[k]:>11.3f}")
    print(f"gate: {'PROMOTED' if outcome.promoted else 'REJECTED'} — {outcome.reason}")
    if outcome.grid and args.grid:
        shutil.copyfile(outcome.grid, args.grid)
        print(f"before | after grid: {args.grid}")
    return 0


def training_setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` for a [training] field, the value read as that field's type."""
    key, _, value = text.partition("=")
    fields = {f.name: f for f in dataclasses.fields(TrainingConfig)}
    if key not in fields:
        raise argparse.ArgumentTypeError(f"no [training] setting {key!r}")
    return key, type(fields[key].default)(value)


async def keep_discriminator(retrainer: Retrainer, path: Path) -> None:
    """Record ``path`` as the serving model's partner, where the bot keeps it: beside the generator in its run
    folder (a scratch folder here), so the run starts from that pair as the bot's would."""
    version, _ = await retrainer.lifecycle.serving("face")
    folder = retrainer.data_dir / "retrain" / "parent"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, folder / "discriminator.safetensors")
    await retrainer.db.execute("UPDATE models SET run_dir = ? WHERE version = ?", (str(folder), version))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="a data directory after `moebot import`")
    p.add_argument("--hair", default="pink", choices=HAIR_COLORS)
    p.add_argument("--curated", type=int, default=300)
    p.add_argument("--steps", type=int, default=TrainingConfig.steps)
    p.add_argument("--minutes", type=float, default=TrainingConfig.minutes,
                   help="CPU-minutes of the training loop (0: the steps alone end the run)")
    p.add_argument("--threads", type=int, default=TrainingConfig.threads)
    p.add_argument("--weights", default=str(BUNDLED_GENERATOR), help="the model that serves now")
    p.add_argument("--discriminator", type=Path, help="the serving model's discriminator (a face-gan parent needs it)")
    p.add_argument("--grid", type=Path, help="copy the before|after grid here")
    p.add_argument("--set", action="append", default=[], type=training_setting, metavar="KEY=VALUE",
                   help="another [training] setting for this run, e.g. --set lr=5e-5 --set g_ramp=300")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = scratch_copy(args.data, Path(tmp) / "data")
        size = face_px(args.weights)
        n = curate(data, HAIR_COLORS.index(args.hair), args.curated, size)
        print(f"curated {n} {args.hair}-haired {size} px training faces (marked as voted up)", flush=True)
        return asyncio.run(run(args, data))


if __name__ == "__main__":
    sys.exit(main())
