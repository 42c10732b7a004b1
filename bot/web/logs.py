"""What the web server writes to the log: client faults as one line each, and floods collapsed.

A client that sends a malformed request or hangs up mid-answer is not a fault of the bot, so it gets
one line, not a traceback. A message that repeats (asyncio logs every failed ``accept()`` while the
process is out of file descriptors: 288,763 times in 70 s in the field) is written a few times a
minute with a count of the rest, so the log cannot fill the disk.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable

from aiohttp.http_exceptions import HttpProcessingError

# the loggers a flood comes through: asyncio's accept loop, aiohttp's request handling
NOISY = ("asyncio", "aiohttp.server")
CLIENT_FAULTS = (HttpProcessingError, ConnectionError)  # a bad request line or header; a client gone


class RepeatFilter(logging.Filter):
    """Lets ``burst`` records of one kind through per ``window_s`` and counts the rest; the next one let
    through after the window says how many were left out. A kind is the logger, level and message
    template (not its arguments), so the same error from a thousand addresses is one kind."""

    def __init__(self, burst: int = 5, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.burst, self.window_s, self._clock = burst, window_s, clock
        self._kinds: dict[tuple[str, int, str], tuple[float, int]] = {}  # kind -> (window start, records in it)

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, str(record.msg)[:300])
        now = self._clock()
        start, seen = self._kinds.get(kind, (now, 0))
        if now - start >= self.window_s:
            if seen > self.burst:
                record.msg = f"{record.msg}\n[{seen - self.burst} more like this in {now - start:.0f} s not logged]"
            start, seen = now, 0
        seen += 1
        if len(self._kinds) >= 1000 and kind not in self._kinds:
            self._kinds = {k: v for k, v in self._kinds.items() if now - v[0] < self.window_s}
        self._kinds[kind] = (start, seen)
        if seen == self.burst:
            record.msg = f"{record.msg}\n[repeats in the next {self.window_s - (now - start):.0f} s are counted, " \
                         "not logged]"
        return seen <= self.burst


class ClientFaultLog(logging.LoggerAdapter):
    """aiohttp's server logger, with an error a client caused written as one line without a traceback."""

    def log(self, level: int, msg: object, *args: Any, exc_info: Any = None, **kwargs: Any) -> None:
        error = sys.exc_info()[1] if exc_info is True else exc_info
        if isinstance(error, CLIENT_FAULTS):
            reason = " ".join(str(error).split()) or type(error).__name__
            self.logger.log(min(level, logging.INFO), f"{msg} (a client fault): %s", *args, reason)
            return
        super().log(level, msg, *args, exc_info=exc_info, **kwargs)


SERVER_LOG = ClientFaultLog(logging.getLogger("aiohttp.server"))


def collapse_floods() -> None:
    """Put a RepeatFilter on the noisy loggers, once per process."""
    for name in NOISY:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter())
