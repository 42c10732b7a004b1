"""The model registry: every model of every kind (generator/model_kinds.py) that served, was promoted, or that
the retrainer made or started from, with its data, metrics and state.

A version moves ``training`` -> ``candidate`` -> ``active`` (promoted) or ``rejected`` (the gate said no);
a run that dies is ``failed``; an active version that another of its kind replaces is ``retired`` and may
come back by rollback. Each kind has one active version. ``promote`` is the one way a version becomes
active, logged in ``promotions`` with who and why; the active pointer file that services follow
(generator/active_model.py) is derived from that log (training/lifecycle.py). Kept in the bot's database
beside the votes (SQLite or PostgreSQL), reached through the store's interface (training/sql.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from training.sql import Sql, SqlDatabase, now_text

STATES = ("training", "candidate", "active", "rejected", "retired", "failed")


@dataclass(frozen=True)
class ModelRecord:
    version: str
    parent: str | None
    state: str
    path: Path | None
    metrics: dict[str, Any]
    parent_metrics: dict[str, Any]
    grid: Path | None
    run_dir: Path | None
    reason: str
    created_at: str
    updated_at: str
    kind: str = "face"


@dataclass(frozen=True)
class Promotion:
    kind: str
    version: str
    path: Path | None  # None: the kind's "none" version (no model of the kind serves)
    actor: str
    reason: str
    at: str


_COLUMNS = "version, parent, state, path, metrics, parent_metrics, grid, run_dir, reason, created_at, updated_at, " \
           "kind"


def none_version(kind: str) -> str:
    """The registry's version for "no model of ``kind`` serves" (a kind a service can go without, such as the
    upscaler): a row without weights, active while the kind is switched off, promoted and rolled back like any."""
    return f"no-{kind}"


def _path(path: Path | None) -> str | None:
    return str(path) if path else None


def _record(row: tuple) -> ModelRecord:
    version, parent, state, path, metrics, parent_metrics, grid, run_dir, reason, created, updated, kind = row
    return ModelRecord(version, parent, state, Path(path) if path else None, json.loads(metrics or "{}"),
                       json.loads(parent_metrics or "{}"), Path(grid) if grid else None,
                       Path(run_dir) if run_dir else None, reason, created, updated, kind)


async def get(db: Sql, version: str) -> ModelRecord | None:
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM models WHERE version = ?", (version,))
    return _record(row) if row else None


async def listing(db: Sql, limit: int = 50) -> list[ModelRecord]:
    """Newest first."""
    return [_record(r) for r in await db.fetchall(f"SELECT {_COLUMNS} FROM models ORDER BY id DESC LIMIT ?", (limit,))]


async def ensure_active(db: SqlDatabase, version: str, path: Path, reason: str = "serving", kind: str = "face") -> None:
    """Record the model of ``kind`` that serves now (the configured or bundled one, or one a pointer names) if
    the registry lacks it, and make it the one active row of its kind; a row that is already active keeps the
    reason it became so."""
    async with db.transaction() as tx:
        known = await tx.fetchval("SELECT state FROM models WHERE version = ?", (version,))
        if known is None:
            await tx.execute("INSERT INTO models (version, path, state, reason, kind) VALUES (?, ?, 'active', ?, ?)",
                             (version, str(path), reason, kind))
        if known != "active":
            await _activate(tx, version, reason)


async def register(db: SqlDatabase, kind: str, version: str, path: Path | None) -> None:
    """Record a weights file of ``kind`` as a candidate, unless its version is known (then only its kind is
    checked); ValueError when the version names a model of another kind."""
    async with db.transaction() as tx:
        known = await tx.fetchval("SELECT kind FROM models WHERE version = ?", (version,))
        if known is None:
            await tx.execute("INSERT INTO models (version, path, state, reason, kind) VALUES (?, ?, 'candidate', ?, ?)",
                             (version, _path(path), "awaiting promotion", kind))
        elif known != kind:
            raise ValueError(f"version {version} is already a {known} model, so a {kind} model cannot take its name")


async def promote(db: SqlDatabase, kind: str, version: str, actor: str, reason: str, path: Path | None) -> None:
    """Make ``version`` the one active model of ``kind``, in one transaction: its row active with its weights at
    ``path`` (None: ``none_version``), the one before it retired, and the promotion logged with who made it and
    why. ValueError when the registry has no such version of that kind."""
    async with db.transaction() as tx:
        if await tx.fetchval("SELECT kind FROM models WHERE version = ?", (version,)) != kind:
            raise ValueError(f"there is no {kind} model {version!r}")
        await tx.execute("UPDATE models SET path = ? WHERE version = ?", (_path(path), version))
        await _activate(tx, version, reason)
        await tx.execute("INSERT INTO promotions (kind, version, path, actor, reason, at) VALUES (?, ?, ?, ?, ?, ?)",
                         (kind, version, _path(path) or "", actor, reason, now_text()))


async def latest_promotions(db: Sql) -> dict[str, Promotion]:
    """The newest promotion of each kind: what the active-model pointer names."""
    rows = await db.fetchall("SELECT kind, version, path, actor, reason, at FROM promotions WHERE id IN "
                             "(SELECT MAX(id) FROM promotions GROUP BY kind)")
    return {r[0]: Promotion(r[0], r[1], Path(r[2]) if r[2] else None, r[3], r[4], r[5]) for r in rows}


async def begin(db: Sql, version: str, parent: str, run_dir: Path) -> None:
    """A retraining run of the face generator starts."""
    await db.execute("INSERT INTO models (version, parent, state, run_dir, reason) VALUES (?, ?, 'training', ?, ?)",
                     (version, parent, str(run_dir), "training"))


async def record_result(db: SqlDatabase, version: str, path: Path, metrics: dict, parent_metrics: dict,
                        grid: Path | None, base_max_id: int, curated_ids: Iterable[int]) -> None:
    """A finished run: its weights, figures and exact data; it is a candidate until the gate decides."""
    async with db.transaction() as tx:
        model_id = await tx.fetchval(
            "UPDATE models SET state = 'candidate', path = ?, metrics = ?, parent_metrics = ?, grid = ?, "
            "base_max_id = ?, reason = 'awaiting the gate', updated_at = ? WHERE version = ? RETURNING id",
            (str(path), json.dumps(metrics), json.dumps(parent_metrics), str(grid) if grid else None, base_max_id,
             now_text(), version))
        for image_id in curated_ids:
            await tx.execute("INSERT INTO model_data (model_id, image_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                             (model_id, image_id))


async def set_state(db: Sql, version: str, state: str, reason: str) -> None:
    """Move one version to ``state``, any but active (``promote`` makes a version active)."""
    if state not in STATES or state == "active":
        raise ValueError(f"cannot set model state {state!r} (promote makes a version active)")
    await db.execute("UPDATE models SET state = ?, reason = ?, updated_at = ? WHERE version = ?",
                     (state, reason, now_text(), version))


async def _activate(tx: Sql, version: str, reason: str) -> None:
    """Make ``version`` active and retire the active one of its kind (inside the caller's transaction)."""
    now = now_text()
    await tx.execute("UPDATE models SET state = 'retired', reason = ?, updated_at = ? WHERE state = 'active' "
                     "AND version != ? AND kind = (SELECT kind FROM models WHERE version = ?)",
                     (f"replaced by {version}", now, version, version))
    await tx.execute("UPDATE models SET state = 'active', reason = ?, updated_at = ? WHERE version = ?",
                     (reason, now, version))


async def retired(db: Sql, kind: str = "face") -> list[ModelRecord]:
    """The versions of ``kind`` that served before the current one, with weights (or the kind's none version),
    the most recent first."""
    rows = await db.fetchall(f"SELECT {_COLUMNS} FROM models WHERE state = 'retired' AND kind = ? AND "
                             "(path IS NOT NULL OR version = ?) ORDER BY updated_at DESC, id DESC",
                             (kind, none_version(kind)))
    return [_record(r) for r in rows]


async def training(db: Sql) -> bool:
    """Whether a run is recorded as going (``begin``, not yet finished or failed)."""
    return await db.fetchval("SELECT 1 FROM models WHERE state = 'training' LIMIT 1") is not None


async def fail_interrupted(db: Sql) -> list[str]:
    """Mark runs left 'training' by a process that died (only call while holding the run's lease)."""
    rows = await db.fetchall("UPDATE models SET state = 'failed', reason = 'interrupted (the process stopped)', "
                             "updated_at = ? WHERE state = 'training' RETURNING version", (now_text(),))
    return [r[0] for r in rows]


async def trained_on(db: Sql, version: str) -> set[int]:
    """The curated faces a version was trained on."""
    return {r[0] for r in await db.fetchall(
        "SELECT image_id FROM model_data JOIN models ON models.id = model_data.model_id WHERE version = ?",
        (version,))}
