"""The model registry: every generator the retrainer made or started from, with its data, metrics and state.

A version moves ``training`` -> ``candidate`` -> ``active`` (promoted) or ``rejected`` (the gate said no);
a run that dies is ``failed``; an active version that another replaces is ``retired`` and may come back
by rollback. The active pointer file (generator/active_model.py) is what services follow; this table is
the history and the reasons, kept in the same SQLite database as the votes.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

STATES = ("training", "candidate", "active", "rejected", "retired", "failed")
NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"  # SQL: the time stamps the migrations use


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


_COLUMNS = "version, parent, state, path, metrics, parent_metrics, grid, run_dir, reason, created_at, updated_at"


def _record(row: tuple) -> ModelRecord:
    version, parent, state, path, metrics, parent_metrics, grid, run_dir, reason, created, updated = row
    return ModelRecord(version, parent, state, Path(path) if path else None, json.loads(metrics or "{}"),
                       json.loads(parent_metrics or "{}"), Path(grid) if grid else None,
                       Path(run_dir) if run_dir else None, reason, created, updated)


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


def ensure_active(conn: sqlite3.Connection, version: str, path: Path, reason: str = "serving") -> None:
    """Record the model that serves now (the bundled one, or one promoted by hand) if the registry lacks it,
    and make it the one active row; a row that is already active keeps the reason it became so."""
    with transaction(conn):
        known = conn.execute("SELECT state FROM models WHERE version = ?", (version,)).fetchone()
        if known is None:
            conn.execute("INSERT INTO models (version, path, state, reason) VALUES (?, ?, 'active', ?)",
                         (version, str(path), reason))
        if known is None or known[0] != "active":
            _activate(conn, version, reason)


def begin(conn: sqlite3.Connection, version: str, parent: str, run_dir: Path) -> None:
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


def set_state(conn: sqlite3.Connection, version: str, state: str, reason: str, path: Path | None = None) -> None:
    """Move one version to ``state`` (and its weights to ``path``, e.g. the promoted copy); making one
    active retires the one before it."""
    if state not in STATES:
        raise ValueError(f"unknown model state {state!r}")
    with transaction(conn):
        if path is not None:
            conn.execute("UPDATE models SET path = ? WHERE version = ?", (str(path), version))
        if state == "active":
            _activate(conn, version, reason)
        else:
            conn.execute(f"UPDATE models SET state = ?, reason = ?, updated_at = {NOW} WHERE version = ?",
                         (state, reason, version))


def _activate(conn: sqlite3.Connection, version: str, reason: str) -> None:
    conn.execute(f"UPDATE models SET state = 'retired', reason = ?, updated_at = {NOW} "
                 "WHERE state = 'active' AND version != ?", (f"replaced by {version}", version))
    conn.execute(f"UPDATE models SET state = 'active', reason = ?, updated_at = {NOW} WHERE version = ?",
                 (reason, version))


def previous_active(conn: sqlite3.Connection) -> ModelRecord | None:
    """The version that served before the current one: the most recently retired with weights."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM models WHERE state = 'retired' AND path IS NOT NULL "
                       "ORDER BY updated_at DESC, id DESC LIMIT 1").fetchone()
    return _record(row) if row else None


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
