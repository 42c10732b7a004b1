"""Tokens never reach the log: a filter on the root logger's handlers scrubs the configured secrets, and anything
shaped like a Telegram or Discord bot token, from every record, a library's exception text included (Telegram's
``InvalidToken`` quotes the token it was given, httpx logs URLs that hold it)."""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Iterable, Iterator

REDACTED = "<redacted>"
# a Telegram bot token (a bot id, a colon, 35 characters; also inside .../bot<token>/getMe) and a Discord bot
# token (three base64url parts joined by dots)
TOKEN_SHAPES = re.compile(r"(?<!\d)\d{5,}:[\w-]{30,}|[\w-]{20,}\.[\w-]{6,}\.[\w-]{20,}")


class RedactTokens(logging.Filter):
    """Rewrites each record in place so that every handler (and every formatter) sees it scrubbed."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)  # a longer secret may hold a shorter

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return TOKEN_SHAPES.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: keep both, scrubbed, rather than lose the line
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = self.scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)  # formatters reuse exc_text
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


@contextlib.contextmanager
def redacted_logs(secrets: Iterable[str]) -> Iterator[RedactTokens]:
    """Scrub ``secrets`` (and token-shaped text) from what the root logger's handlers write, until the block ends."""
    redact = RedactTokens(secrets)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(redact)
    try:
        yield redact
    finally:
        for handler in handlers:
            handler.removeFilter(redact)
