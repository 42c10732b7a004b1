"""The model versions: /models lists them with their figures and grids, admins /retrain and /rollback."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bot import pictures
from bot.core import Attachment, Call, Core, Reply
from bot.registry import Spec, Text

MODELS_SHOWN = 3  # newest versions whose grids /models puts side by side
NO_RETRAINER = "Retraining is not set up here (no [training] in this bot's configuration)."


@dataclass(frozen=True)
class Rollback:
    """Admins: serve an earlier model version again."""
    version: str | None = None  # None = the one that served before the current one


def figures(metrics: dict[str, Any]) -> str:
    """The gate's figures of a model, short."""
    names = {"hair_ratio": "hair", "eye_ratio": "eyes", "diversity_ratio": "diversity", "fd": "FD"}
    return ", ".join(f"{short} {metrics[key]:.3g}" for key, short in names.items()
                     if isinstance(metrics.get(key), (int, float)))


async def models(core: Core, call: Call) -> Reply:
    """Every model version with its state and figures; the newest ones' before/after grids side by side."""
    if core.retrainer is None:
        return Reply(NO_RETRAINER, refusal=True)
    records = await core.retrainer.models()
    if not records:
        return Reply("No model versions are recorded yet.")
    lines = ["Model versions, newest first:"]
    lines += [f"{r.version} · {r.state}" + (f" (from {r.parent})" if r.parent else "")
              + ("" if r.kind == "face" else f" · {r.kind}")
              + (f" · {figures(r.metrics)}" if r.metrics else "") + f" · {r.created_at[:16]}"
              + (f" — {r.reason}" if r.reason else "") for r in records]
    shown = [r for r in records if r.grid is not None and r.grid.exists()][:MODELS_SHOWN]
    if not shown:
        return Reply("\n".join(lines))
    lines.append("Grids, left to right: " + ", ".join(r.version for r in shown)
                 + " (each: its parent's faces | its own)")
    grids = await asyncio.to_thread(pictures.row_png, [r.grid for r in shown])
    return Reply("\n".join(lines), [Attachment("models.png", grids)])


async def retrain(core: Core, call: Call) -> Reply:
    if core.retrainer is None:
        return Reply(NO_RETRAINER, refusal=True)
    return Reply(await core.retrainer.start(call.who.user_key))


async def rollback(core: Core, call: Call) -> Reply:
    if core.retrainer is None:
        return Reply(NO_RETRAINER, refusal=True)
    try:
        return Reply(await core.retrainer.rollback(call.command.version, call.who.user_key))
    except ValueError as e:
        return Reply(f"I can't roll back: {e}.", refusal=True)


SPECS = (
    Spec("models", "model versions, their figures and sample grids", models),
    Spec("retrain", "admins: retrain the model on the curated faces now", retrain, admin=True),
    Spec("rollback", "admins: serve an earlier model version again", rollback, type=Rollback, admin=True, args=(
        Text("version", r"[\w.@+-]{1,64}", 64, "the version to serve again (see /models); empty: the one before "
             "the current", "{value!r} is not a model version; /models lists them"),)),
)
Models, Retrain = SPECS[0].type, SPECS[1].type
