"""The bot's HTTP connections to the Telegram Bot API: one pool for pictures, one for everything else.

In a burst of pictures every open connection of a shared pool is busy uploading,
so an answer (``/help``, a vote's toast and new counts) has to open a new one:
a DNS lookup on the event loop's default thread pool (shared with the store's
file writes), then a TCP and TLS handshake (on loopback, with a busy fake Bot
API, 100–215 ms). With its own pool an answer finds a warm connection, and once
uploads fill their pool to its limit, answers do not queue for a connection
behind them either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from telegram.request import BaseRequest, HTTPXRequest, RequestData

if TYPE_CHECKING:
    from telegram._utils.types import ODVInput  # the type BaseRequest.do_request's timeouts are declared with

DEFAULT = BaseRequest.DEFAULT_NONE


class SplitRequest(BaseRequest):
    """Requests that carry files (uploads) and downloads (GET) go through ``files``; the others through
    ``answers``. Each is an ``HTTPXRequest`` of ``pool_size`` connections, python-telegram-bot's default."""

    def __init__(self, pool_size: int = 256):
        self.answers = HTTPXRequest(connection_pool_size=pool_size)
        self.files = HTTPXRequest(connection_pool_size=pool_size)

    @property
    def read_timeout(self) -> float | None:
        return self.answers.read_timeout

    async def initialize(self) -> None:
        await self.answers.initialize()
        await self.files.initialize()

    async def shutdown(self) -> None:
        await self.answers.shutdown()
        await self.files.shutdown()

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: ODVInput[float] = DEFAULT, write_timeout: ODVInput[float] = DEFAULT,
                         connect_timeout: ODVInput[float] = DEFAULT,
                         pool_timeout: ODVInput[float] = DEFAULT) -> tuple[int, bytes]:
        carries_files = method == "GET" or (request_data is not None and bool(request_data.multipart_data))
        pool = self.files if carries_files else self.answers
        return await pool.do_request(url, method, request_data, read_timeout, write_timeout, connect_timeout,
                                     pool_timeout)
