"""The priority rate limiter: Telegram's limits kept, short answers served before queued pictures."""

import asyncio
import io
import sys
import time

import pytest
from PIL import Image
from telegram import Message
from telegram.error import RetryAfter
from telegram.ext import ExtBot

from bot.telegram_adapter import queue_notice
from bot.telegram_http import SplitRequest
from bot.telegram_rate_limiter import MEDIA, TEXT, PriorityBucket, PriorityRateLimiter
from fakes.telegram_server import FakeTelegram


def test_bucket_serves_waiters_by_priority_then_in_order():
    async def go():
        bucket = PriorityBucket(rate=2, period=0.1)  # one token every 50 ms once the two saved are spent
        served: list[str] = []

        async def take(name: str, priority: int) -> None:
            await bucket.take(priority)
            served.append(name)
        tasks = [asyncio.create_task(take(f"photo{i}", MEDIA)) for i in range(4)]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(take("help", TEXT)))
        await asyncio.gather(*tasks)
        return served
    assert asyncio.run(go()) == ["photo0", "photo1", "help", "photo2", "photo3"]


def test_bucket_keeps_the_rate_and_skips_cancelled_waiters():
    async def go():
        bucket = PriorityBucket(rate=10, period=0.1)  # 100 per second, 10 saved up
        t0 = time.monotonic()
        await asyncio.gather(*(bucket.take(MEDIA) for _ in range(10)))  # the 10 saved tokens
        gone = asyncio.create_task(bucket.take(TEXT))
        waiting = [asyncio.create_task(bucket.take(MEDIA)) for _ in range(30)]
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.wait_for(asyncio.gather(*waiting), 5)  # a cancelled waiter in the heap blocks no one
        return time.monotonic() - t0, gone.cancelled()
    elapsed, cancelled = asyncio.run(go())
    assert elapsed >= 0.29  # 30 more at 100/s, however fast the machine
    assert cancelled


def test_the_reserve_is_spent_only_on_text():
    async def go():
        bucket = PriorityBucket(rate=10, period=1.0, reserve=3)
        pictures = [bucket.try_take(MEDIA) for _ in range(10)]
        texts = [bucket.try_take(TEXT) for _ in range(4)]
        return pictures, texts
    pictures, texts = asyncio.run(go())
    assert pictures == [True] * 7 + [False] * 3  # 3 of the 10 saved tokens are kept back
    assert texts == [True] * 3 + [False]


def test_a_reserve_that_would_starve_pictures_is_refused():
    with pytest.raises(ValueError, match="reserve"):
        PriorityRateLimiter(overall_per_s=3, reserve=2)


def test_chat_actions_are_dropped_not_queued_when_the_budget_is_spent():
    async def go():
        limiter = PriorityRateLimiter(overall_per_s=3, reserve=0)
        sent: list[str] = []

        async def send(endpoint: str) -> bool:
            sent.append(endpoint)
            return True
        for _ in range(3):
            await limiter.process_request(send, ("sendPhoto",), {}, "sendPhoto", {"chat_id": 1}, None)
        answer = await limiter.process_request(send, ("sendChatAction",), {}, "sendChatAction",
                                               {"chat_id": 1}, None)
        await limiter.process_request(send, ("getUpdates",), {}, "getUpdates", {}, None)  # never limited
        return answer, sent
    answer, sent = asyncio.run(go())
    assert answer is True
    assert sent == ["sendPhoto"] * 3 + ["getUpdates"]


def test_groups_get_their_own_limit_and_retry_after_is_retried():
    async def go():
        limiter = PriorityRateLimiter(overall_per_s=1000, group_per_minute=2)
        attempts = {"n": 0}

        async def flaky() -> bool:
            attempts["n"] += 1
            if attempts["n"] == 1:
                raise RetryAfter(0)
            return True
        assert await limiter.process_request(flaky, (), {}, "sendMessage", {"chat_id": 5}, None)
        for _ in range(2):  # group -7 may send two a minute; a third waits, another group does not
            await limiter.process_request(flaky, (), {}, "sendMessage", {"chat_id": -7}, None)
        third = asyncio.create_task(limiter.process_request(flaky, (), {}, "sendMessage", {"chat_id": -7}, None))
        other = await asyncio.wait_for(
            limiter.process_request(flaky, (), {}, "sendMessage", {"chat_id": "@channel"}, None), 1)
        await asyncio.sleep(0.1)
        stuck = not third.done()
        third.cancel()
        return attempts["n"], other, stuck
    attempts, other, stuck = asyncio.run(go())
    assert attempts == 5 and other and stuck


def test_a_text_answer_overtakes_queued_photos_through_the_bot_api():
    """The real python-telegram-bot ExtBot against the fake Bot API: 12 photos are queued at 4 a second,
    then one text message; it reaches the server before all but the few photos already on their way."""
    async def go():
        server = FakeTelegram()
        await server.start()
        png = io.BytesIO()
        Image.new("RGB", (8, 8), "pink").save(png, "PNG")
        bot = ExtBot("1:LIMIT", base_url=server.base_url, rate_limiter=PriorityRateLimiter(overall_per_s=4, reserve=1))
        try:
            await bot.initialize()
            photos = [asyncio.create_task(bot.send_photo(-100 - i, png.getvalue())) for i in range(12)]
            await asyncio.sleep(0.05)
            await bot.send_message(-99, "help text")
            await asyncio.gather(*photos)
        finally:
            await bot.shutdown()
            await server.stop()
        return [c.method for c in server.of("sendPhoto", "sendMessage")]
    order = asyncio.run(go())
    assert len(order) == 13
    assert order.index("sendMessage") <= 5, order


def test_an_answer_overtakes_queue_notices_through_the_bot_api():
    """A burst of pictures brings a "you're number N" notice for most of them (136 of 200 in the field: 4.5 s of
    Telegram's 30/s). 16 notices, sent as the Telegram adapter sends them, are queued at 8 a second; a /help
    answer sent after them reaches the server before all but the notices already on their way."""
    async def go():
        server = FakeTelegram()
        await server.start()
        bot = ExtBot("1:LIMIT", base_url=server.base_url, rate_limiter=PriorityRateLimiter(overall_per_s=8, reserve=1))
        try:
            await bot.initialize()
            waiting = [Message.de_json(await server.send_command("/waifu", user_id=i, chat_id=-100 - i,
                                                                 chat_type="group"), bot) for i in range(16)]
            notices = [asyncio.create_task(queue_notice(m, i + 1)) for i, m in enumerate(waiting)]
            await asyncio.sleep(0.05)
            asked = Message.de_json(await server.send_command("/help", user_id=99), bot)
            await asked.reply_text("help text")
            await asyncio.gather(*notices)
        finally:
            await bot.shutdown()
            await server.stop()
        return [c.params["text"] for c in server.of("sendMessage")]
    texts = asyncio.run(go())
    assert len(texts) == 17 and texts[0].startswith("⏳ You're number")
    assert texts.index("help text") <= 7, texts


class _Lookups:
    """A meta path finder that only records which modules Python searched for."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name, path=None, target=None):
        self.names.append(name)
        return None


def test_requests_to_the_bot_api_search_for_no_module():
    """httpcore asks ``import sniffio`` on every request, 4 times; without sniffio installed each is a failed
    search of sys.path (about 0.2 ms), which the event loop pays per message in a burst of pictures."""
    async def go():
        server = FakeTelegram()
        await server.start()
        bot = ExtBot("1:LOOKUP", base_url=server.base_url)
        lookups = _Lookups()
        try:
            await bot.initialize()
            await bot.send_message(1, "warm")  # the first request may import what it needs, once
            sys.meta_path.insert(0, lookups)
            for _ in range(3):
                await bot.send_message(1, "again")
        finally:
            if lookups in sys.meta_path:
                sys.meta_path.remove(lookups)
            await bot.shutdown()
            await server.stop()
        return lookups.names
    assert asyncio.run(go()) == []


def test_an_answer_does_not_wait_for_a_connection_that_uploads_hold():
    """Two uploads hold both connections a pool of two allows, their answers delayed by the Bot API; a text
    answer still reaches it at once, through a connection of its own."""
    async def go():
        server = FakeTelegram()
        await server.start()
        png = io.BytesIO()
        Image.new("RGB", (8, 8), "pink").save(png, "PNG")
        bot = ExtBot("1:POOL", base_url=server.base_url, request=SplitRequest(pool_size=2))
        photos: list[asyncio.Task] = []
        try:
            await bot.initialize()
            server.hold("sendPhoto")
            photos += [asyncio.create_task(bot.send_photo(-100 - i, png.getvalue())) for i in range(2)]
            await server.wait_for("sendPhoto", count=2)
            await asyncio.wait_for(bot.send_message(1, "help text"), 5)  # one shared pool: a pool timeout after 1 s
            answered_first = not any(p.done() for p in photos)
        finally:
            server.release()
            await asyncio.gather(*photos, return_exceptions=True)
            await bot.shutdown()
            await server.stop()
        return answered_first
    assert asyncio.run(go())


def test_the_bot_sends_answers_and_pictures_through_their_own_pools(tmp_path):
    from bot.config import TelegramConfig
    from bot.telegram_adapter import build_application
    from fakes.bot_parts import closed, make_core

    async def go():
        core = await make_core(tmp_path)
        try:
            return build_application(core, TelegramConfig(), "1:WIRED").bot.request
        finally:
            await closed(core)
    assert isinstance(asyncio.run(go()), SplitRequest)
