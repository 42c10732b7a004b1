"""Named leases in the database, so that processes sharing it take turns: whoever holds ``job:<id>`` runs a
scheduled job, whoever holds ``near-duplicates`` checks a submission against the training set.

A lease is one row (name, holder, expiry), taken or renewed by one atomic upsert, so it works alike on SQLite
and PostgreSQL. It expires on its own: a process that dies holding one blocks the others only until then.
Expiry is wall-clock time: machines sharing a database keep their clocks in step (NTP), as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from typing import AsyncIterator, Callable

from bot.store.database import Session

CLAIM = ("INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
         "SET holder = excluded.holder, expires_at = excluded.expires_at "
         "WHERE leases.expires_at <= ? OR leases.holder = excluded.holder RETURNING holder")


def process_name() -> str:
    """Who holds a lease: this host and process, made unique (a pid is reused after a restart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Leases:
    def __init__(self, db: Session, holder: str | None = None, clock: Callable[[], float] = time.time):
        self._db = db
        self.holder = holder or process_name()
        self._clock = clock

    async def claim(self, name: str, ttl_s: float, holder: str | None = None) -> bool:
        """Take ``name`` for ``ttl_s`` seconds if it is free, expired or held by ``holder`` (default: this process)
        already, which renews it."""
        now = self._clock()
        return await self._db.fetchone(CLAIM, (name, holder or self.holder, now + ttl_s, now)) is not None

    async def release(self, name: str, holder: str | None = None) -> None:
        """Give ``name`` up now, if ``holder`` (default: this process) holds it."""
        await self._db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder or self.holder))

    async def holder_of(self, name: str) -> str | None:
        """Who holds ``name`` now (None: nobody, or the lease expired)."""
        return await self._db.fetchval("SELECT holder FROM leases WHERE name = ? AND expires_at > ?",
                                       (name, self._clock()))

    @contextlib.asynccontextmanager
    async def held(self, name: str, ttl_s: float, poll_s: float = 0.05) -> AsyncIterator[None]:
        """Wait until ``name`` is ours, hold it for the block, then give it up. ``ttl_s`` bounds how long a
        process that died inside the block keeps the others waiting. Each hold is a holder of its own, so two
        tasks of one process wait for each other too."""
        holder = f"{self.holder}/{secrets.token_hex(4)}"
        while not await self.claim(name, ttl_s, holder):
            await asyncio.sleep(poll_s)
        try:
            yield
        finally:
            await self.release(name, holder)
