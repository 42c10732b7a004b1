"""The promotion gate: a candidate replaces the active model only if it is no worse on any figure.

Figures come from the evaluation classifier on the same held-out faces and latents for both models
(training/metrics.py). Non-finite figures (a run that produced NaNs) and a collapsed candidate (its
coverage falls) fail the gate like any other regression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Margins:
    """How much worse than the active model a candidate may be on each figure and still be promoted."""
    hair_ratio: float = 0.02       # hair accuracy / ceiling, absolute
    eye_ratio: float = 0.02        # eye accuracy / ceiling, absolute
    diversity_ratio: float = 0.03  # coverage / real coverage, absolute
    fd: float = 0.10               # Fréchet distance, relative (0.10 = up to 10% higher)


def judge(candidate: dict[str, float], active: dict[str, float], margins: Margins) -> tuple[bool, str]:
    """(promote?, why), the reason naming every figure that failed, or the figures that passed."""
    keys = ("hair_ratio", "eye_ratio", "diversity_ratio", "fd")
    bad = [k for k in keys if not math.isfinite(candidate.get(k, math.nan))]
    if bad:
        return False, f"not finite: {', '.join(bad)}"
    failed = []
    for key in ("hair_ratio", "eye_ratio", "diversity_ratio"):
        floor = active[key] - getattr(margins, key)
        if candidate[key] < floor:
            failed.append(f"{key} {candidate[key]:.3f} < {floor:.3f}")
    ceiling = active["fd"] * (1 + margins.fd)
    if candidate["fd"] > ceiling:
        failed.append(f"fd {candidate['fd']:.2f} > {ceiling:.2f}")
    if failed:
        return False, "worse than the active model: " + "; ".join(failed)
    return True, "no worse on any figure: " + ", ".join(
        f"{k} {candidate[k]:.3f} (was {active[k]:.3f})" for k in keys)
