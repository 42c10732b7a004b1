"""Tokens never reach the log: the configured ones and anything token-shaped, in messages, arguments and the
tracebacks of libraries (python-telegram-bot's InvalidToken quotes the token it was given)."""

import asyncio
import io
import logging

import pytest
from telegram import Bot
from telegram.error import InvalidToken

from bot.redact import REDACTED, redacted_logs
from fakes.telegram_server import FakeTelegram

TELEGRAM_SHAPED = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
DISCORD_SHAPED = "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"


@pytest.fixture
def written():
    """What a root handler writes (as the console handler of `moebot run` does), the test's handler alone."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root, httpx = logging.getLogger(), logging.getLogger("httpx")
    saved = root.handlers[:], root.level, httpx.level
    root.handlers, root.level = [handler], logging.INFO
    httpx.setLevel(logging.INFO)  # `moebot run` quiets it; here its request lines (URLs, tokens) are wanted
    yield stream
    root.handlers, root.level = saved[:2]
    httpx.setLevel(saved[2])


def test_a_library_exception_that_quotes_the_token_is_scrubbed(written):
    """A real Bot refused by the fake Bot API raises InvalidToken with the token in its message and traceback."""
    async def refused() -> InvalidToken:
        server = FakeTelegram(token="1:THE-RIGHT-ONE")
        await server.start()
        try:
            await Bot(TELEGRAM_SHAPED, base_url=server.base_url).initialize()
        except InvalidToken as e:
            return e
        finally:
            await server.stop()
    with redacted_logs([TELEGRAM_SHAPED]):
        error = asyncio.run(refused())  # httpx logs the URL, token included, at INFO
        assert TELEGRAM_SHAPED in str(error)  # what would have been logged
        try:
            raise error
        except InvalidToken:
            logging.getLogger("telegram.ext.Application").exception("telegram start failed")
    text = written.getvalue()
    assert f"/bot{REDACTED}/getMe" in text and "telegram start failed" in text and "Traceback" in text
    assert f"The token `{REDACTED}` was rejected" in text
    assert TELEGRAM_SHAPED not in text and "7012345678" not in text


def test_configured_secrets_and_token_shapes_are_scrubbed_from_messages_and_arguments(written):
    log = logging.getLogger("httpx")
    with redacted_logs(["plain-admin-secret"]):
        log.warning("HTTP Request: POST https://api.telegram.org/bot%s/getMe", TELEGRAM_SHAPED)  # not configured
        log.warning("Authorization: Bot %s", DISCORD_SHAPED)
        log.warning("web token %s in %s", "plain-admin-secret", {"token": "plain-admin-secret"})
        log.warning("bad format %d", "not a number")  # still written, still scrubbed
        log.warning("ordinary line: model ft-20240101-120000 (step 5,422), 12:30 UTC, a.b.c")
    lines = written.getvalue().splitlines()
    assert lines == [
        f"WARNING httpx: HTTP Request: POST https://api.telegram.org/bot{REDACTED}/getMe",
        f"WARNING httpx: Authorization: Bot {REDACTED}",
        f"WARNING httpx: web token {REDACTED} in {{'token': '{REDACTED}'}}",
        "WARNING httpx: bad format %d ('not a number',)",
        "WARNING httpx: ordinary line: model ft-20240101-120000 (step 5,422), 12:30 UTC, a.b.c"]
    log.warning("after the block: %s", "plain-admin-secret")  # the filter went with the block
    assert written.getvalue().splitlines()[-1].endswith("after the block: plain-admin-secret")
