"""Per-user cooldown and per-chat rate for drawing commands, so one person or one group cannot hog the generator."""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Callable


class Limits:
    def __init__(self, user_cooldown_s: float, chat_per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.user_cooldown_s = user_cooldown_s
        self.chat_per_minute = chat_per_minute
        self._clock = clock
        self._last: dict[str, float] = {}  # user key -> time of their last drawing command
        self._chat: dict[str, deque[float]] = {}  # chat key -> times of its commands in the last minute

    def check(self, user: str, chat: str) -> str | None:
        """The refusal the user should read, or None when they may draw now."""
        now = self._clock()
        wait = self._last.get(user, -math.inf) + self.user_cooldown_s - now
        if wait > 0:
            return f"Slow down a little — you can draw again in {math.ceil(wait)} s."
        window = self._window(chat, now)
        if len(window) >= self.chat_per_minute:
            return f"This chat is drawing a lot — try again in {math.ceil(window[0] + 60 - now)} s."
        return None

    def take(self, user: str, chat: str) -> str | None:
        """Like ``check``, and when allowed, count this command."""
        refusal = self.check(user, chat)
        if refusal is None:
            now = self._clock()
            self._last[user] = now
            self._window(chat, now).append(now)
            if len(self._last) > 10_000:  # forget users whose cooldown is long over
                self._last = {u: t for u, t in self._last.items() if now - t < self.user_cooldown_s}
        return refusal

    def give_back(self, user: str, chat: str) -> None:
        """Undo the last ``take`` (the command was refused later, e.g. the queue was full)."""
        self._last.pop(user, None)
        if self._chat.get(chat):
            self._chat[chat].pop()

    def _window(self, chat: str, now: float) -> deque[float]:
        window = self._chat.setdefault(chat, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if not window and len(self._chat) > 10_000:
            self._chat = {c: w for c, w in self._chat.items() if w} | {chat: window}
        return window
