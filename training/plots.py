"""Pictures of a run that people would rather look at than read: the loss curves."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def loss_curve(stats_file: Path, out: Path, keys: tuple[str, ...]) -> None:
    """Plot ``keys`` from a JSON-lines stats file against step, one panel each, written atomically."""
    if not stats_file.exists():
        return
    rows = [json.loads(line) for line in stats_file.read_text().splitlines() if line.strip()]
    if not rows:
        return
    keys = tuple(k for k in keys if any(k in r for r in rows))
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.2 * len(keys)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.2)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(out)
