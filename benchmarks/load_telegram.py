"""Load test: many /waifu commands at once through the fake Telegram Bot API, then a burst of votes.

Every command must be answered (a picture or a "busy, try again" refusal) and
every vote must be counted. Prints p50/p99 latency from the command arriving
at the fake server to the bot's answer, and the same for a /help sent every
50 ms while the burst is drawn: the event loop must stay responsive.

    python benchmarks/load_telegram.py [--commands 200] [--users 50] [--weights PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fake server lives with the tests

from bot.config import TelegramConfig  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.limits import Limits  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.telegram_adapter import build_application, start, stop  # noqa: E402
from fakes.telegram_server import FakeTelegram  # noqa: E402
from generator.models.acgan import ACGANConfig, Generator  # noqa: E402
from generator.service import GeneratorService, ServiceOptions  # noqa: E402
from generator.weights import save_module  # noqa: E402

COLOURS = ["pink blue", "blonde red", "", "blue eyes black hair", "silver green", "aqua", "red 2", "purple yellow"]


def weights_for(weights: str | None, data_dir: Path) -> Path:
    """The given weights, or an untrained model of the real model's size and cost."""
    if weights:
        return Path(weights)
    import torch
    torch.manual_seed(0)
    G = Generator(ACGANConfig())
    path = data_dir / "untrained.safetensors"
    save_module(G, path, G.cfg.to_dict(), step=0, version="untrained-default-size")
    return path


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def load(args: argparse.Namespace, data_dir: Path) -> int:
    server = FakeTelegram()
    await server.start()
    store = await Store.open(data_dir / "moebot.db", data_dir)
    service = GeneratorService(weights_for(args.weights, data_dir), ServiceOptions(queue_limit=args.queue))
    await service.start()
    core = Core(store, service, Limits(0, 10_000), display_size=256)
    cfg = TelegramConfig(base_url=server.base_url, base_file_url=server.base_file_url, poll_timeout_s=1)
    app = build_application(core, cfg, "1:LOAD")
    await start(app, cfg)
    rng = random.Random(0)
    try:
        sent: dict[int, tuple[float, int]] = {}  # command message id -> (time, user)
        t0 = time.monotonic()
        for i in range(args.commands):
            user = 1 + i % args.users  # each command from its own group chat, so the answer quotes it
            message = await server.send_command(f"/waifu {rng.choice(COLOURS)}".strip(), user_id=user,
                                                chat_id=-1000 - i, chat_type="group")
            sent[message["message_id"]] = (time.monotonic(), user)

        def answers() -> dict[int, object]:
            out = {}
            for call in server.of("sendPhoto", "sendMessage"):
                if call.method == "sendMessage" and str(call.params.get("text", "")).startswith("⏳"):
                    continue  # a queue position notice, not the answer
                replied_to = call.params["reply_parameters"]["message_id"]
                if replied_to in sent:  # not a /help probe's answer
                    out.setdefault(replied_to, call)
            return out

        help_latencies: list[float] = []

        async def probe_help() -> None:
            """/help from one user, each in a new group (Telegram's per-group limit would otherwise pace it)."""
            k = 0
            while len(answers()) < len(sent):
                k += 1
                message = await server.send_command("/help", user_id=99_999, chat_id=-500_000 - k, chat_type="group")
                t = time.monotonic()
                while not (calls := [c for c in server.of("sendMessage")
                                     if c.params.get("reply_parameters", {}).get("message_id") ==
                                     message["message_id"] and c.params["chat_id"] == -500_000 - k]):
                    await asyncio.sleep(0.002)
                help_latencies.append(calls[0].at - t)
                await asyncio.sleep(0.05)

        prober = asyncio.create_task(probe_help())
        deadline = time.monotonic() + args.timeout
        while len(answers()) < len(sent) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.wait_for(prober, 30)
        done = answers()
        wall = time.monotonic() - t0
        latencies = [done[m].at - t for m, (t, _) in sent.items() if m in done]
        photos = [c for c in done.values() if c.method == "sendPhoto"]
        busy = [c for c in done.values() if c.method == "sendMessage" and "busy" in c.params["text"]]
        other = len(done) - len(photos) - len(busy)
        queued = sum(1 for c in server.of("sendMessage") if str(c.params.get("text", "")).startswith("⏳"))

        # votes: args.voters users press 👍 on every picture, all at once
        presses = 0
        for photo in photos:
            up_id = photo.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            msg = {"message_id": 1, "date": 0, "chat": {"id": photo.params["chat_id"], "type": "group", "title": "g"}}
            for voter in range(args.voters):
                await server.press(msg, up_id, user_id=10_000 + voter)
                presses += 1
        await server.wait_for("answerCallbackQuery", count=presses, timeout=args.timeout)
        await server.wait_for("editMessageReplyMarkup", count=presses, timeout=args.timeout)
        totals = await store.totals()
    finally:
        await stop(app)
        await core.close()
        await service.close()
        await server.stop()

    print(f"commands: {len(sent)} from {args.users} users; answered {len(done)} in {wall:.1f} s "
          f"({len(photos)} pictures, {len(busy)} busy, {other} other; {queued} queue-position notices)")
    print(f"latency to answer: p50 {pct(latencies, 50):.2f} s, p99 {pct(latencies, 99):.2f} s, "
          f"max {max(latencies):.2f} s")
    print(f"/help during the burst: {len(help_latencies)} answered, p50 {1000 * pct(help_latencies, 50):.0f} ms, "
          f"p99 {1000 * pct(help_latencies, 99):.0f} ms")
    print(f"votes: {presses} presses, {totals.votes} stored (expected {len(photos) * args.voters})")
    ok = len(done) == len(sent) and other == 0 and totals.votes == len(photos) * args.voters
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--commands", type=int, default=200)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--voters", type=int, default=3, help="users who press 👍 on every picture")
    p.add_argument("--queue", type=int, default=256, help="[generator] queue_limit: faces that may wait")
    p.add_argument("--weights", help="generator weights (default: an untrained model of the default size)")
    p.add_argument("--timeout", type=float, default=300)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(load(args, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
