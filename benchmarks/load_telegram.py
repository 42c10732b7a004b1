"""Load test through real HTTP, as in production: a burst of /waifu in group chats, /help in a private chat.

The bot runs as ``python -m bot run`` in its own process (the real python-telegram-bot
``Application``, the real generator worker process, the bundled weights unless
``--weights``), polling the fake Telegram Bot API (tests/fakes/telegram_server.py),
which this process serves on loopback and drives. The burst: ``--commands`` /waifu at
once from ``--users`` users, each in its own group chat; meanwhile one user sends /help
in a private chat every ``--help-every`` seconds. Then ``--voters`` users press 👍 on
every picture at once. Latency is from an update being offered to the bot to the fake
server receiving the bot's answer (the whole request read). Every command must be
answered, every vote stored and every voter shown a toast.

    python benchmarks/load_telegram.py [--commands 200] [--users 50] [--help-every 0.5] [--weights PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fake server lives with the tests

from fakes.telegram_server import Call, FakeTelegram  # noqa: E402

COLOURS = ["pink blue", "blonde red", "", "blue eyes black hair", "silver green", "aqua", "red 2", "purple yellow"]
HELPER = 99_999  # the user who sends /help in a private chat


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def bot_toml(tmp: Path, server: FakeTelegram, args: argparse.Namespace) -> Path:
    """A bot.toml for the bot under test: the fake Bot API, no cooldown (every /waifu is drawn), a fresh data dir."""
    weights = f'weights = "{Path(args.weights).resolve()}"\n' if args.weights else ""
    path = tmp / "bot.toml"
    path.write_text(f'[storage]\ndata_dir = "{tmp / "data"}"\n'
                    f'[generator]\n{weights}queue_limit = {args.queue}\nmax_batch = {args.max_batch}\n'
                    f'compile = {str(args.compile).lower()}\n'
                    f'[limits]\nuser_cooldown_s = 0\nchat_per_minute = 10000\n'
                    f'[telegram]\nbase_url = "{server.base_url}"\nbase_file_url = "{server.base_file_url}"\n')
    return path


async def start_bot(config: Path) -> asyncio.subprocess.Process:
    """``python -m bot run`` as the operator would start it, with a token; its log goes to bot.log beside config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOEBOT_")}
    env.update(TELEGRAM_TOKEN="1:LOAD", PYTHONPATH=str(ROOT))
    with open(config.with_name("bot.log"), "wb") as log:
        return await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "--config", str(config),
                                                    cwd=config.parent, env=env, stdout=log, stderr=log)


def replies_to(server: FakeTelegram, message: dict) -> list[Call]:
    """The bot's answers to ``message``, queue-position notices left out: in a group they quote it; in a private
    chat (where answers quote nothing) every answer after it counts."""
    def answers(c: Call) -> bool:
        quoted = c.params.get("reply_parameters", {}).get("message_id")
        return quoted == message["message_id"] if quoted or message["chat"]["type"] != "private" else \
            c.at >= message["offered_at"]
    return [c for c in server.of("sendPhoto", "sendMessage") if c.params["chat_id"] == message["chat"]["id"]
            and not str(c.params.get("text", "")).startswith("⏳") and answers(c)]


async def answered(server: FakeTelegram, message: dict, timeout: float) -> Call:
    async def first() -> Call:
        while not (calls := replies_to(server, message)):
            await asyncio.sleep(0.002)
        return calls[0]
    return await asyncio.wait_for(first(), timeout)


async def load(args: argparse.Namespace, tmp: Path) -> int:
    server = FakeTelegram()
    await server.start()
    bot = await start_bot(bot_toml(tmp, server, args))
    try:
        await server.wait_for("setMyCommands", timeout=120)
        warm = await server.send_command("/waifu", user_id=1, chat_id=-999, chat_type="group")
        await answered(server, warm, 60)  # one picture first: one-time costs stay out of the figures
        rng = random.Random(0)
        burst = [await server.send_command(f"/waifu {rng.choice(COLOURS)}".strip(), user_id=1 + i % args.users,
                                           chat_id=-1000 - i, chat_type="group") for i in range(args.commands)]
        t0 = time.monotonic()
        help_latencies: list[float] = []

        async def probe_help() -> None:
            while not all(replies_to(server, m) for m in burst):
                t = time.monotonic()
                asked = {**await server.send_command("/help", user_id=HELPER), "offered_at": t}
                help_latencies.append((await answered(server, asked, args.timeout)).at - t)
                await asyncio.sleep(max(0.0, t + args.help_every - time.monotonic()))

        prober = asyncio.create_task(probe_help())
        done = {m["message_id"]: await answered(server, m, args.timeout) for m in burst}
        await prober
        wall = time.monotonic() - t0
        latencies = [done[m["message_id"]].at - t0 for m in burst]
        photos = [c for c in done.values() if c.method == "sendPhoto"]
        busy = [c for c in done.values() if c.method == "sendMessage" and "busy" in c.params["text"]]
        queued = sum(1 for c in server.of("sendMessage") if str(c.params.get("text", "")).startswith("⏳"))

        presses = 0
        for photo in photos:  # args.voters users press 👍 on every picture, all at once
            up_id = photo.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            message = {"message_id": 1, "date": 0, "chat": {"id": photo.params["chat_id"], "type": "group",
                                                             "title": "g"}}
            for voter in range(args.voters):
                await server.press(message, up_id, user_id=10_000 + voter)
                presses += 1
        toasts = await server.wait_for("answerCallbackQuery", count=presses, timeout=args.timeout)
        await server.wait_for("editMessageReplyMarkup", count=presses, timeout=args.timeout)
    finally:
        if bot.returncode is None:
            bot.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(bot.wait(), 60)
        except asyncio.TimeoutError:
            bot.kill()
        await server.stop()
        if sys.exc_info()[0] is not None:  # failed: show what the bot said
            print((tmp / "bot.log").read_text(errors="replace")[-3000:], file=sys.stderr)
    with sqlite3.connect(tmp / "data" / "moebot.db") as db:
        votes = db.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
    shown = sum(1 for c in toasts if c.params.get("text"))

    print(f"commands: {len(burst)} from {args.users} users in {len(burst)} group chats; answered {len(done)} "
          f"in {wall:.1f} s ({len(photos)} pictures, {len(busy)} busy; {queued} queue-position notices)")
    print(f"pictures: p50 {pct(latencies, 50):.2f} s, p99 {pct(latencies, 99):.2f} s, max {max(latencies):.2f} s")
    print(f"/help every {args.help_every:g} s in a private chat during the burst: {len(help_latencies)} answered, "
          f"p50 {1000 * pct(help_latencies, 50):.0f} ms, p99 {1000 * pct(help_latencies, 99):.0f} ms, "
          f"max {1000 * max(help_latencies):.0f} ms")
    print(f"votes: {presses} presses, {votes} stored, {shown} toasts with text (expected {len(photos) * args.voters})")
    ok = len(photos) + len(busy) == len(burst) and votes == shown == len(photos) * args.voters
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--commands", type=int, default=200)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--help-every", dest="help_every", type=float, default=0.5, help="seconds between two /help")
    p.add_argument("--voters", type=int, default=3, help="users who press 👍 on every picture")
    p.add_argument("--queue", type=int, default=256, help="[generator] queue_limit: faces that may wait")
    p.add_argument("--max-batch", dest="max_batch", type=int, default=64,
                   help="[generator] max_batch: a request that misses the next batch gets a queue-position notice")
    p.add_argument("--weights", help="generator weights (default: the bundled ones)")
    p.add_argument("--compile", action="store_true",
                   help="[generator] compile = true (compiling takes tens of seconds of CPU after start)")
    p.add_argument("--timeout", type=float, default=300)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(load(args, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
