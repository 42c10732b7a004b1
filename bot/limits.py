"""Per-user cooldown and per-chat rate for drawing commands, so one person or one group cannot hog the generator.

The turns are kept in the database (tables limit_users and limit_chat_turns), so the limits hold across every
bot process on it: a user who draws on Telegram in one process waits out the cooldown in the playground of
another. Times are wall-clock seconds, as processes on several machines share them.
"""

from __future__ import annotations

import math
import time
from typing import Callable

from bot.store.database import Database, Session

WINDOW_S = 60.0  # chat_per_minute counts the turns of the last minute


class Limits:
    def __init__(self, db: Database, user_cooldown_s: float, chat_per_minute: int,
                 clock: Callable[[], float] = time.time):
        self._db = db
        self.user_cooldown_s = user_cooldown_s
        self.chat_per_minute = chat_per_minute
        self._clock = clock

    async def check(self, user: str, chat: str) -> str | None:
        """The refusal the user should read, or None when they may draw now."""
        return await self._refusal(self._db, user, chat, self._clock())

    async def take(self, user: str, chat: str) -> str | None:
        """Like ``check``, and when allowed, count this command: checked and counted in one transaction, with
        other processes taking turns for the same user or chat waiting (user first, then chat: no deadlock)."""
        now = self._clock()
        async with self._db.transaction() as tx:
            await tx.serialize(f"limits:user:{user}")
            await tx.serialize(f"limits:chat:{chat}")
            refusal = await self._refusal(tx, user, chat, now)
            if refusal is None:
                await tx.execute("INSERT INTO limit_users (user_key, last_at) VALUES (?, ?) ON CONFLICT (user_key) "
                                 "DO UPDATE SET last_at = excluded.last_at", (user, now))
                await tx.execute("INSERT INTO limit_chat_turns (chat_key, at) VALUES (?, ?)", (chat, now))
                await tx.execute("DELETE FROM limit_chat_turns WHERE chat_key = ? AND at <= ?", (chat, now - WINDOW_S))
        return refusal

    async def give_back(self, user: str, chat: str) -> None:
        """Undo the last ``take`` (the command was refused later, e.g. the queue was full)."""
        async with self._db.transaction() as tx:
            await tx.execute("DELETE FROM limit_users WHERE user_key = ?", (user,))
            await tx.execute("DELETE FROM limit_chat_turns WHERE id = (SELECT id FROM limit_chat_turns WHERE "
                             "chat_key = ? ORDER BY at DESC, id DESC LIMIT 1)", (chat,))

    async def _refusal(self, db: Session, user: str, chat: str, now: float) -> str | None:
        last = await db.fetchval("SELECT last_at FROM limit_users WHERE user_key = ?", (user,))
        wait = (last if last is not None else -math.inf) + self.user_cooldown_s - now
        if wait > 0:
            return f"Slow down a little — you can draw again in {math.ceil(wait)} s."
        turns, first = await db.fetchone("SELECT COUNT(*), MIN(at) FROM limit_chat_turns WHERE chat_key = ? AND at > ?",
                                         (chat, now - WINDOW_S))
        if turns >= self.chat_per_minute:
            return f"This chat is drawing a lot — try again in {math.ceil(first + WINDOW_S - now)} s."
        return None
