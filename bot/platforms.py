"""Connecting the chat platforms: a server that cannot be reached is tried again with back-off, one log line a try;
a token the platform rejects is a setting to fix, said in one line that names it (never the token itself).

A platform that stops for good ends ``moebot run`` with a non-zero status (so ``Restart=on-failure`` sees it),
unless the playground is served: it keeps running, and the line stays in the log.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Awaitable, Callable, TypeVar

import aiohttp

from bot.config import DiscordConfig, TelegramConfig

if TYPE_CHECKING:
    from telegram.ext import Application

    from bot.core import Core

log = logging.getLogger("moebot")

FIRST_RETRY_S = 1.0  # then 2, 4, 8… seconds
MAX_RETRY_S = 60.0
REJECTED = {
    "telegram": "Telegram rejected the token in TELEGRAM_TOKEN: copy it again from @BotFather (/mybots > your bot "
                "> API Token)",
    "discord": "Discord rejected the token in DISCORD_TOKEN: reset it in the Discord developer portal (your "
               "application > Bot > Reset Token)",
}
T = TypeVar("T")


class TokenRejected(Exception):
    """A platform refused its token: trying again cannot help, the operator has to change the setting."""


def one_line(e: BaseException) -> str:
    """``Type: message`` on one line (a library's message may span several)."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


async def retrying(platform: str, attempt: Callable[[], Awaitable[T]],
                   transient: Callable[[Exception], bool]) -> T:
    """``attempt()`` until it succeeds: an error that ``transient`` accepts is logged in one line and tried again
    after 1, 2, 4… seconds (at most a minute apart); any other error is raised."""
    delay = FIRST_RETRY_S
    while True:
        try:
            return await attempt()
        except Exception as e:
            if not transient(e):
                raise
            log.warning("%s: cannot reach the server (%s); trying again in %g s", platform, one_line(e), delay)
        await asyncio.sleep(delay)
        delay = min(2 * delay, MAX_RETRY_S)


def _telegram_transient(e: Exception) -> bool:
    from telegram.error import BadRequest, NetworkError, RetryAfter
    return isinstance(e, (NetworkError, RetryAfter)) and not isinstance(e, BadRequest)  # BadRequest is a NetworkError


def _discord_transient(e: Exception) -> bool:
    import discord
    return isinstance(e, (OSError, aiohttp.ClientError, discord.DiscordServerError))  # OSError: timeouts too


class ChatPlatforms:
    """The chat platforms of one ``moebot run``, each connecting (and reconnecting) in a task of its own, so that
    one that cannot reach its server holds up neither the other nor the playground."""

    def __init__(self, stop: asyncio.Event, *, playground: bool) -> None:
        self.stop = stop
        self.playground = playground
        self.status = 0  # 2: a token was rejected, 1: a platform stopped on an error
        self._tasks: list[asyncio.Task] = []
        self._telegram: Application | None = None

    def start_telegram(self, core: Core, cfg: TelegramConfig, token: str) -> None:
        from bot import telegram_adapter
        self._telegram = telegram_adapter.build_application(core, cfg, token)
        self._watch("telegram", self._connect_telegram(self._telegram, cfg))

    def start_discord(self, core: Core, cfg: DiscordConfig, token: str) -> None:
        self._watch("discord", self._run_discord(core, cfg, token))

    async def close(self) -> None:
        """Stop every platform, whether it is connected or still trying to."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._telegram is not None:
            await self._close_telegram(self._telegram)

    def _watch(self, platform: str, work: Awaitable[None]) -> None:
        task = asyncio.create_task(work, name=f"moebot-{platform}")
        task.add_done_callback(lambda t: self._ended(platform, t))
        self._tasks.append(task)

    def _ended(self, platform: str, task: asyncio.Task) -> None:
        """A platform gave up: one line, then the run ends unless the playground goes on."""
        if task.cancelled() or task.exception() is None:
            return
        e = task.exception()
        why = str(e) if isinstance(e, TokenRejected) else f"{platform} stopped: {one_line(e)}"
        log.error("%s%s", why, "; the playground keeps running" if self.playground else "")
        if not self.playground:
            self.status = max(self.status, 2 if isinstance(e, TokenRejected) else 1)
            self.stop.set()

    @staticmethod
    async def _connect_telegram(app: Application, cfg: TelegramConfig) -> None:
        from telegram.error import InvalidToken

        from bot import telegram_adapter

        async def attempt() -> None:
            try:
                await telegram_adapter.start(app, cfg)
            except InvalidToken:
                raise TokenRejected(REJECTED["telegram"]) from None  # its message quotes the token
            except BaseException:
                if app.running:  # polling did not start: the next try starts the application again
                    await app.stop()
                raise
        await retrying("telegram", attempt, _telegram_transient)
        log.info("telegram: polling as @%s", app.bot.username)  # from here the library retries polling itself

    @staticmethod
    async def _close_telegram(app: Application) -> None:
        from bot import telegram_adapter
        if app.updater.running:
            await telegram_adapter.stop(app)
        else:  # it never got to polling: close what a failed start opened
            await app.shutdown()
            await app.bot.shutdown()

    @staticmethod
    async def _run_discord(core: Core, cfg: DiscordConfig, token: str) -> None:
        """Log in, then stay connected (discord.py reconnects a dropped gateway itself) until cancelled."""
        import discord

        from bot.discord_adapter import MoeBot

        async def attempt() -> MoeBot:
            bot = MoeBot(core, cfg)  # a fresh client a try: a failed login leaves its HTTP session closed
            try:
                await bot.login(token)
            except discord.LoginFailure:
                await bot.close()
                raise TokenRejected(REJECTED["discord"]) from None
            except BaseException:
                await bot.close()
                raise
            return bot
        bot = await retrying("discord", attempt, _discord_transient)
        log.info("discord: logged in as %s", bot.user)
        try:
            await bot.connect()
        finally:
            await bot.close()
