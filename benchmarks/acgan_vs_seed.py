"""The default model against the original public ACGAN after the same CPU time, on the same data.

Trains both presets for ``--minutes`` of process CPU time each (one thread each,
side by side, so a busy machine slows both alike), then judges both with the
evaluation classifier and prints the figures next to each other. Run folders
are kept under ``--out``: a killed benchmark resumes where it stopped.

    python benchmarks/acgan_vs_seed.py --data data --minutes 30
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from training.evaluate import evaluate_weights  # noqa: E402

PRESETS = ("default", "seed-acgan")
# figure -> True when higher is better
FIGURES = {"hair_acc": True, "eye_acc": True, "hair_ratio": True, "eye_ratio": True, "fd": False,
           "diversity": True, "diversity_ratio": True}


def train_both(data: str, out: Path, minutes: float) -> None:
    procs = []
    for preset in PRESETS:
        run = out / preset
        cmd = [sys.executable, "-m", "bot.cli", "train", "acgan", "--preset", preset, "--data", data,
               "--run", str(run), "--minutes", str(minutes), "--clock", "cpu", "--threads", "1", "--quiet"]
        if (run / "snapshot.pt").exists():
            cmd.append("--resume")
        procs.append(subprocess.Popen(cmd))
    codes = [p.wait() for p in procs]
    if any(codes):
        sys.exit(f"training failed with exit codes {codes}")


def better(figure: str, a: float, b: float) -> bool:
    return a > b if FIGURES[figure] else a < b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="data directory with the imported faces")
    ap.add_argument("--minutes", type=float, default=30.0, help="CPU minutes of training per preset")
    ap.add_argument("--out", default="benchmarks/out/vs-seed", help="where the two run folders go")
    args = ap.parse_args()
    out = Path(args.out)
    train_both(args.data, out, args.minutes)
    results = {p: evaluate_weights(out / p / "generator.safetensors", args.data) for p in PRESETS}
    print(f"after {args.minutes:g} CPU-minutes each (1 thread), evaluated on "
          f"{results['default']['images']} held-out tag pairs")
    print(f"{'figure':18}{'default':>10}{'seed-acgan':>12}  winner")
    wins = 0
    for fig in FIGURES:
        a, b = results["default"][fig], results["seed-acgan"][fig]
        win = better(fig, a, b)
        wins += win
        print(f"{fig:18}{a:>10.3f}{b:>12.3f}  {'default' if win else 'seed-acgan'}")
    for p in PRESETS:
        print(f"{p}: {results[p]['model']}")
    print(f"default wins {wins} of {len(FIGURES)} figures")


if __name__ == "__main__":
    main()
