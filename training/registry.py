"""The model registry: every model of every kind (generator/model_kinds.py) that served, was promoted, or that
the retrainer made or started from, with its data, metrics and state.

A version moves ``training`` -> ``candidate`` -> ``active`` (promoted) or ``rejected`` (the gate said no);
a run that dies is ``failed``; an active version that another of its kind replaces is ``retired`` and may
come back by rollback. Each kind has one active version. ``promote`` is the one way a version becomes
active, logged in ``promotions`` with who and why; the active pointer file that services follow
(generator/active_model.py) is derived from that log (training/lifecycle.py). Kept in the same SQLite
database as the votes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import migrations

STATES = ("training", "candidate", "active", "rejected", "retired", "failed")
NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"  # SQL: the time stamps the migrations use
T = TypeVar("T")


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
    path: Path
    actor: str
    reason: str
    at: str


_COLUMNS = "version, parent, state, path, metrics, parent_metrics, grid, run_dir, reason, created_at, updated_at, " \
           "kind"


def _record(row: tuple) -> ModelRecord:
    version, parent, state, path, metrics, parent_metrics, grid, run_dir, reason, created, updated, kind = row
    return ModelRecord(version, parent, state, Path(path) if path else None, json.loads(metrics or "{}"),
                       json.loads(parent_metrics or "{}"), Path(grid) if grid else None,
                       Path(run_dir) if run_dir else None, reason, created, updated, kind)


async def in_thread(database: Path, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn(connection)`` in a thread on a short-lived connection (the store's is async-only)."""
    def call() -> T:
        conn = migrations.connect(database)
        try:
            return fn(conn)
        finally:
            conn.close()
    return await asyncio.to_thread(call)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """All or nothing (the connection is in autocommit mode, as migrations.connect opens it)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def get(conn: sqlite3.Connection, version: str) -> ModelRecord | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM models WHERE version = ?", (version,)).fetchone()
    return _record(row) if row else None


def listing(conn: sqlite3.Connection, limit: int = 50) -> list[ModelRecord]:
    """Newest first."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM models ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [_record(r) for r in rows]


def ensure_active(conn: sqlite3.Connection, version: str, path: Path, reason: str = "serving",
                  kind: str = "face") -> None:
    """Record the model of ``kind`` that serves now (the configured or bundled one, or one a pointer names) if
    the registry lacks it, and make it the one active row of its kind; a row that is already active keeps the
    reason it became so."""
    with transaction(conn):
        known = conn.execute("SELECT state FROM models WHERE version = ?", (version,)).fetchone()
        if known is None:
            conn.execute("INSERT INTO models (version, path, state, reason, kind) VALUES (?, ?, 'active', ?, ?)",
                         (version, str(path), reason, kind))
        if known is None or known[0] != "active":
            _activate(conn, version, reason)


def register(conn: sqlite3.Connection, kind: str, version: str, path: Path) -> None:
    """Record a weights file of ``kind`` as a candidate, unless its version is known (then only its kind is
    checked); ValueError when the version names a model of another kind."""
    with transaction(conn):
        known = conn.execute("SELECT kind FROM models WHERE version = ?", (version,)).fetchone()
        if known is None:
            conn.execute("INSERT INTO models (version, path, state, reason, kind) VALUES (?, ?, 'candidate', ?, ?)",
                         (version, str(path), "awaiting promotion", kind))
        elif known[0] != kind:
            raise ValueError(f"version {version} is already a {known[0]} model, so a {kind} model cannot take "
                             "its name")


def promote(conn: sqlite3.Connection, kind: str, version: str, actor: str, reason: str, path: Path) -> None:
    """Make ``version`` the one active model of ``kind``, in one transaction: its row active with its weights at
    ``path``, the one before it retired, and the promotion logged with who made it and why. ValueError when
    the registry has no such version of that kind."""
    with transaction(conn):
        known = conn.execute("SELECT kind FROM models WHERE version = ?", (version,)).fetchone()
        if known is None or known[0] != kind:
            raise ValueError(f"there is no {kind} model {version!r}")
        conn.execute("UPDATE models SET path = ? WHERE version = ?", (str(path), version))
        _activate(conn, version, reason)
        conn.execute("INSERT INTO promotions (kind, version, path, actor, reason) VALUES (?, ?, ?, ?, ?)",
                     (kind, version, str(path), actor, reason))


def latest_promotions(conn: sqlite3.Connection) -> dict[str, Promotion]:
    """The newest promotion of each kind: what the active-model pointer names."""
    rows = conn.execute("SELECT kind, version, path, actor, reason, at FROM promotions WHERE id IN "
                        "(SELECT MAX(id) FROM promotions GROUP BY kind)").fetchall()
    return {r[0]: Promotion(r[0], r[1], Path(r[2]), r[3], r[4], r[5]) for r in rows}


def begin(conn: sqlite3.Connection, version: str, parent: str, run_dir: Path) -> None:
    """A retraining run of the face generator starts."""
    with transaction(conn):
        conn.execute("INSERT INTO models (version, parent, state, run_dir, reason) VALUES (?, ?, 'training', ?, ?)",
                     (version, parent, str(run_dir), "training"))


def record_result(conn: sqlite3.Connection, version: str, path: Path, metrics: dict, parent_metrics: dict,
                  grid: Path | None, base_max_id: int, curated_ids: Iterable[int]) -> None:
    """A finished run: its weights, figures and exact data; it is a candidate until the gate decides."""
    with transaction(conn):
        conn.execute(f"UPDATE models SET state = 'candidate', path = ?, metrics = ?, parent_metrics = ?, grid = ?, "
                     f"base_max_id = ?, reason = 'awaiting the gate', updated_at = {NOW} WHERE version = ?",
                     (str(path), json.dumps(metrics), json.dumps(parent_metrics), str(grid) if grid else None,
                      base_max_id, version))
        model_id = conn.execute("SELECT id FROM models WHERE version = ?", (version,)).fetchone()[0]
        conn.executemany("INSERT OR IGNORE INTO model_data (model_id, image_id) VALUES (?, ?)",
                         [(model_id, i) for i in curated_ids])


def set_state(conn: sqlite3.Connection, version: str, state: str, reason: str) -> None:
    """Move one version to ``state``, any but active (``promote`` makes a version active)."""
    if state not in STATES or state == "active":
        raise ValueError(f"cannot set model state {state!r} (promote makes a version active)")
    with transaction(conn):
        conn.execute(f"UPDATE models SET state = ?, reason = ?, updated_at = {NOW} WHERE version = ?",
                     (state, reason, version))


def _activate(conn: sqlite3.Connection, version: str, reason: str) -> None:
    """Make ``version`` active and retire the active one of its kind (inside the caller's transaction)."""
    conn.execute(f"UPDATE models SET state = 'retired', reason = ?, updated_at = {NOW} WHERE state = 'active' "
                 "AND version != ? AND kind = (SELECT kind FROM models WHERE version = ?)",
                 (f"replaced by {version}", version, version))
    conn.execute(f"UPDATE models SET state = 'active', reason = ?, updated_at = {NOW} WHERE version = ?",
                 (reason, version))


def retired(conn: sqlite3.Connection, kind: str = "face") -> list[ModelRecord]:
    """The versions of ``kind`` that served before the current one, with weights, the most recent first."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM models WHERE state = 'retired' AND path IS NOT NULL AND kind = ? "
                        "ORDER BY updated_at DESC, id DESC", (kind,)).fetchall()
    return [_record(r) for r in rows]


def fail_interrupted(conn: sqlite3.Connection) -> list[str]:
    """Mark runs left 'training' by a process that died (only call while holding the run lock)."""
    with transaction(conn):
        stale = [r[0] for r in conn.execute("SELECT version FROM models WHERE state = 'training'")]
        conn.execute(f"UPDATE models SET state = 'failed', reason = 'interrupted (the process stopped)', "
                     f"updated_at = {NOW} WHERE state = 'training'")
    return stale


def trained_on(conn: sqlite3.Connection, version: str) -> set[int]:
    """The curated faces a version was trained on."""
    return {r[0] for r in conn.execute(
        "SELECT image_id FROM model_data JOIN models ON models.id = model_data.model_id WHERE version = ?",
        (version,))}
