"""Telegram's flood limits, with short answers first.

Telegram allows a bot about 30 messages a second overall and 20 a minute per
group. python-telegram-bot's ``AIORateLimiter`` enforces them first come, first
served, so in a burst of pictures a ``/help`` or a vote's refreshed buttons wait
seconds behind every photo queued before them. This limiter enforces the same
limits but lets waiting requests through by priority: text answers and button
updates, then notices about pictures still being drawn ("you're number 5 in the
queue", marked with ``ranked(NOTICE)``: a burst of 200 pictures brings over a
hundred, 4 s of the budget, which an answer must not wait behind), then pictures,
then "sending a photo…" chat actions, which are merely cosmetic and are dropped
rather than queued when the budget is spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from contextvars import ContextVar
from typing import Any, Callable, Coroutine, Iterator

from telegram.constants import FloodLimit
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

TEXT, NOTICE, MEDIA, ACTION = 0, 1, 2, 3  # priorities: lower goes first
PRIORITY = {"sendMessage": TEXT, "editMessageText": TEXT, "editMessageReplyMarkup": TEXT,
            "editMessageCaption": TEXT, "sendChatAction": ACTION}  # anything else with a chat_id: MEDIA
_ranked: ContextVar[int | None] = ContextVar("telegram_request_priority", default=None)

JSON = bool | dict[str, Any] | list[dict[str, Any]]


@contextlib.contextmanager
def ranked(priority: int) -> Iterator[None]:
    """Serve the requests made inside at ``priority`` rather than their endpoint's: python-telegram-bot's
    shortcuts (``message.reply_text``) cannot pass ``rate_limit_args``, but run in the caller's context."""
    token = _ranked.set(priority)
    try:
        yield
    finally:
        _ranked.reset(token)


class PriorityBucket:
    """A token bucket of ``rate`` tokens per ``period`` seconds whose waiters are served by priority
    (FIFO within one priority). Tokens refill continuously; at most ``rate`` can be saved up, and the
    last ``reserve`` of them only the most urgent requests (priority 0) may spend, so under a steady
    stream of pictures a text answer still finds a token at once instead of waiting for the next."""

    def __init__(self, rate: float, period: float, reserve: int = 0):
        self.capacity = rate
        self.per_s = rate / period
        self.reserve = reserve
        self._tokens = rate
        self._at = time.monotonic()
        self._waiting: list[tuple[int, int, asyncio.Future]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.per_s)
        self._at = now

    def _need(self, priority: int) -> float:
        return 1 + (self.reserve if priority > TEXT else 0)

    def try_take(self, priority: int = TEXT) -> bool:
        """Take a token only if one is free now for this priority and nobody as urgent waits for it."""
        self._refill()
        if (self._waiting and self._waiting[0][0] <= priority) or self._tokens < self._need(priority):
            return False
        self._tokens -= 1
        return True

    async def take(self, priority: int) -> None:
        if self.try_take(priority):
            return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), future))
        self._wake_later()
        await future  # a cancelled waiter's future is cancelled too, and skipped when its turn comes

    def _wake_later(self) -> None:
        if self._timer is None and self._waiting:
            delay = max(0.0, (self._need(self._waiting[0][0]) - self._tokens) / self.per_s)
            self._timer = asyncio.get_running_loop().call_later(delay, self._wake)

    def _wake(self) -> None:
        self._timer = None
        self._refill()
        while self._waiting:
            priority, _, future = self._waiting[0]
            if not future.done():
                if self._tokens < self._need(priority):
                    break
                self._tokens -= 1
                future.set_result(None)
            heapq.heappop(self._waiting)
        self._wake_later()

    def idle(self) -> bool:
        """Whether the bucket is full and nobody waits: it may be forgotten."""
        self._refill()
        return not self._waiting and self._tokens >= self.capacity


class PriorityRateLimiter(BaseRateLimiter[int]):
    """Telegram's overall and per-group limits, served by priority (see the module docstring).

    ``reserve`` tokens of the overall budget are kept for text answers (3 is 100 ms of Telegram's 30/s).
    ``rate_limit_args`` (per request) is the number of retries after a ``RetryAfter``, as in
    ``AIORateLimiter``; a ``RetryAfter`` pauses every request until it has passed.
    """

    def __init__(self, overall_per_s: float = FloodLimit.MESSAGES_PER_SECOND,
                 group_per_minute: float = FloodLimit.MESSAGES_PER_MINUTE_PER_GROUP, reserve: int = 3,
                 max_retries: int = 1):
        if not 0 <= reserve < overall_per_s - 1:
            raise ValueError(f"reserve must leave pictures at least 2 of the {overall_per_s:g} tokens a second")
        self._overall = PriorityBucket(overall_per_s, 1.0, reserve=reserve)
        self._group_per_minute = group_per_minute
        self._groups: dict[int | str, PriorityBucket] = {}
        self._max_retries = max_retries
        self._resume = asyncio.Event()
        self._resume.set()

    async def initialize(self) -> None:
        """Nothing to set up: buckets are made on first use."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    def _group(self, chat_id: int | str) -> PriorityBucket:
        if len(self._groups) > 512:  # forget groups that have been quiet for a minute
            for key in [k for k, b in self._groups.items() if k != chat_id and b.idle()]:
                del self._groups[key]
        if chat_id not in self._groups:
            self._groups[chat_id] = PriorityBucket(self._group_per_minute, 60.0)
        return self._groups[chat_id]

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, JSON]], args: Any,
                              kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> JSON:
        chat_id = data.get("chat_id")
        if chat_id is None:  # getUpdates, answerCallbackQuery, getFile…: not a message to a chat
            return await callback(*args, **kwargs)
        with contextlib.suppress(ValueError, TypeError):
            chat_id = int(chat_id)
        group = chat_id if isinstance(chat_id, str) or chat_id < 0 else None  # groups and channels
        priority = _ranked.get()
        if priority is None:
            priority = PRIORITY.get(endpoint, MEDIA)
        if priority == ACTION:
            if not self._overall.try_take(ACTION):
                return True  # a status hint is not worth a message slot others are waiting for
        else:
            if group is not None:
                await self._group(group).take(priority)
            await self._overall.take(priority)
        retries = self._max_retries if rate_limit_args is None else rate_limit_args
        for attempt in itertools.count():
            await self._resume.wait()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as e:
                if attempt >= retries:
                    raise
                await self._pause(e)

    async def _pause(self, e: RetryAfter) -> None:
        """Hold every request for as long as Telegram asked."""
        pause = e._retry_after.total_seconds()  # as AIORateLimiter reads it: the public one is int or timedelta
        log.info("telegram asked to slow down; pausing all requests for %.1f s", pause)
        self._resume.clear()
        try:
            await asyncio.sleep(pause + 0.1)
        finally:
            self._resume.set()
