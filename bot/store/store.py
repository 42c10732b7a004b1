"""The bot's memory: users, pictures, votes and training items in one database, picture files on disk by content.

Every write is committed before the bot answers, and a file is fsynced before its row points at it, so a crash
or restart loses nothing a user has seen. A full disk fails the write it hit and nothing else (``storage_full``
tells such errors apart, for a plain answer to the user), and leaves no temporary file behind.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.store.database import Database, open_database
from bot.store.files import FILE_FOLDERS
from bot.store.items import Items
from bot.store.leases import Leases
from bot.store.reports import Reports
from bot.store.votes import Votes
from generator.durable import remove_stale


class Store(Votes, Items, Reports):
    def __init__(self, db: Database, data_dir: Path):
        self.db = db  # the model registry (training/registry.py) is kept here too
        self.data_dir = Path(data_dir)
        self.leases = Leases(db)

    @classmethod
    async def open(cls, target: str | Path, data_dir: Path) -> "Store":
        """Upgrade the schema (SchemaTooNew stops the bot), then connect: ``target`` is a ``postgresql://`` URL or
        a SQLite file. Temporary files a crash left among the stored files are removed first (one can hold the
        last free bytes of a disk)."""
        for folder in FILE_FOLDERS:
            await asyncio.to_thread(remove_stale, Path(data_dir) / folder)
        return cls(await open_database(target), data_dir)

    async def close(self) -> None:
        await self.db.close()
