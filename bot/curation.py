"""When votes make a chat picture training data: the ``[curation]`` rules and the decision they give.

An item's up-share is only known roughly from a handful of votes, so the rule
looks at the Wilson score interval (95%) of it rather than the raw share: three
👍 of three is promising, not proof. An item is **curated** once the interval's
lower bound reaches ``curate_above`` and **rejected** once its upper bound falls
to ``reject_below``, and never before ``min_voters`` people voted. With the
defaults (0.5 both) that is four 👍 without a 👎 (or 7 of 8, 9 of 11, ...) to
curate, four 👎 without a 👍 (or 1 of 8, ...) to reject.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z = 1.959964  # 95% two-sided normal quantile


@dataclass(frozen=True)
class CurationRules:
    min_voters: int = 3  # no decision before this many distinct people voted
    curate_above: float = 0.5  # curated when the Wilson lower bound of the up-share reaches this
    reject_below: float = 0.5  # rejected when its Wilson upper bound falls to this


@dataclass(frozen=True)
class Decision:
    status: str  # 'curated' or 'rejected'
    reason: str  # for the curation log, e.g. "4 👍 0 👎: 95% sure the up-share is at least 0.51"


def wilson_interval(up: int, n: int, z: float = Z) -> tuple[float, float]:
    """The Wilson score interval of the up-share from ``up`` of ``n`` votes; (0, 1) without votes."""
    if n == 0:
        return 0.0, 1.0
    p = up / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


def decide(up: int, down: int, rules: CurationRules) -> Decision | None:
    """What ``up`` 👍 and ``down`` 👎 make of an undecided item; None while the votes leave it open."""
    n = up + down
    if n < rules.min_voters:
        return None
    low, high = wilson_interval(up, n)
    if low >= rules.curate_above:
        return Decision("curated", f"{up} 👍 {down} 👎: 95% sure the up-share is at least {low:.2f}")
    if high <= rules.reject_below:
        return Decision("rejected", f"{up} 👍 {down} 👎: 95% sure the up-share is at most {high:.2f}")
    return None
