"""The store that bot.toml configures, for one offline command: `moebot import`, `models` and `retrain` work on
the database the bots use (SQLite or PostgreSQL), so they see what the bots see. Light to import: no torch, no
chat libraries, so `moebot import` starts at once."""

from __future__ import annotations

import asyncio
import sys
from typing import Awaitable, Callable

import migrations
from bot.config import Config
from bot.store import Store
from bot.store.database import DatabaseUnavailable, shown_target


def storage_refusal(cfg: Config, e: DatabaseUnavailable | migrations.SchemaTooNew) -> str:
    """Why the configured database cannot be used, naming the setting or the database."""
    if isinstance(e, DatabaseUnavailable):
        return f"{e} ([storage] url in bot.toml, or MOEBOT_STORAGE_URL)"
    return f"{shown_target(cfg.storage_target)}: {e}"


def with_store(cfg: Config, work: Callable[[Store], Awaitable[int]]) -> int:
    """``await work(store)`` on the configured store, closed after; a database that cannot be used is told on
    stderr (status 2), not a traceback."""
    async def go() -> int:
        store = await Store.open(cfg.storage_target, cfg.storage.data_dir)
        try:
            return await work(store)
        finally:
            await store.close()
    try:
        return asyncio.run(go())
    except (DatabaseUnavailable, migrations.SchemaTooNew) as e:
        print(f"moebot: {storage_refusal(cfg, e)}", file=sys.stderr)
        return 2
