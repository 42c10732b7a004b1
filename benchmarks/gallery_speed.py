"""How fast the dashboard's gallery answers for a large database: 10,000 pictures with votes, served by the real
web app over loopback HTTP.

    python benchmarks/gallery_speed.py [--pictures 10000] [--repeat 7]

Rows are written straight into a fresh SQLite file (the schema from migrations/, files shared between rows: a
gallery page reads rows and serves files by id, the file contents do not matter); then each page is fetched
``--repeat`` times: the JSON page alone, and the page with its 24 thumbnails, as a browser loads it.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import migrations  # noqa: E402
from bot.commands import COMMANDS  # noqa: E402
from bot.config import WebConfig  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.limits import Limits  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.web import server  # noqa: E402
from generator.service import GeneratorService  # noqa: E402
from generator.tags import EYE_COLORS, HAIR_COLORS  # noqa: E402

KINDS = ("face", "face", "face", "grid", "morph", "sketch")
PLATFORMS = ("telegram", "discord", "web")


def fill(data_dir: Path, n: int, seed: int = 0) -> None:
    """``n`` pictures from 200 users across three platforms, about two votes per picture, 16 shared files."""
    rng = random.Random(seed)
    files = []
    for i in range(16):
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (i * 15, 100, 255 - i * 15)).save(buf, "PNG")
        rel = f"pictures/bench/{i:02d}.png"
        (data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (data_dir / rel).write_bytes(buf.getvalue())
        files.append(rel)
    conn = migrations.connect(data_dir / "moebot.db")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO users (platform, external_id, name) VALUES (?, ?, ?)",
                     [(PLATFORMS[u % 3], str(u), f"user{u}") for u in range(200)])
    rows = []
    for i in range(n):
        hair, eye = rng.randrange(len(HAIR_COLORS)), rng.randrange(len(EYE_COLORS))
        user = rng.randrange(200) + 1
        rows.append((f"{i:064x}", files[i % 16], KINDS[i % len(KINDS)], user, PLATFORMS[(user - 1) % 3], "c",
                     hair, eye, i, f"{HAIR_COLORS[hair]} hair, {EYE_COLORS[eye]} eyes", "bench-v1"))
    conn.executemany("INSERT INTO pictures (sha256, path, kind, user_id, platform, chat_id, hair, eye, seed, tags, "
                     "model_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    votes = {(rng.randrange(n) + 1, rng.randrange(200) + 1) for _ in range(2 * n)}
    conn.executemany("INSERT INTO votes (picture_id, user_id, value) VALUES (?, ?, ?)",
                     [(p, u, rng.choice((1, 1, -1))) for p, u in votes])
    conn.execute("COMMIT")
    conn.close()


async def measure(data_dir: Path, repeat: int) -> list[tuple[str, int, float, float, float]]:
    """(case, pictures matched, median JSON ms, worst JSON ms, median ms with thumbnails) per case."""
    store = await Store.open(data_dir / "moebot.db", data_dir)
    # the gallery never draws: the service stays unstarted
    core = Core(store, GeneratorService(), Limits(store.db, 5.0, 20), commands=COMMANDS)
    runner, url = await server.start(server.create_app(core, data_dir / "runs"), WebConfig("127.0.0.1", 0))
    results = []
    try:
        async with aiohttp.ClientSession() as http:
            async def page(query: str) -> dict:
                async with http.get(f"{url}api/gallery?{query}") as r:
                    r.raise_for_status()
                    return await r.json()

            last = (await page("page=1"))["pages"]
            cases = [("first page", "page=1"), ("middle page", f"page={last // 2}"), ("last page", f"page={last}"),
                     ("tags 'pink blue'", "tags=pink+blue"), ("votes: with 👍", "votes=up"),
                     ("votes: none, page 50", "votes=none&page=50"),
                     ("platform web, kind face", "platform=web&kind=face"),
                     ("all filters, page 2", "tags=blonde&votes=up&platform=telegram&kind=face&page=2")]
            for name, query in cases:
                json_ms, full_ms = [], []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    data = await page(query)
                    json_ms.append(1000 * (time.perf_counter() - t0))
                    await asyncio.gather(*(fetch(http, url + item["url"][1:]) for item in data["items"]))
                    full_ms.append(1000 * (time.perf_counter() - t0))
                results.append((name, data["total"], statistics.median(json_ms), max(json_ms),
                                statistics.median(full_ms)))
    finally:
        await runner.cleanup()
        await core.close()
    return results


async def fetch(http: aiohttp.ClientSession, url: str) -> None:
    async with http.get(url) as r:
        r.raise_for_status()
        await r.read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pictures", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fill(Path(tmp), args.pictures)
        print(f"{args.pictures} pictures written in {time.perf_counter() - t0:.1f} s")
        rows = asyncio.run(measure(Path(tmp), args.repeat))
    print(f"{'case':<28} {'matched':>8} {'JSON median':>12} {'JSON worst':>11} {'+24 thumbs':>11}")
    for name, total, med, worst, full in rows:
        print(f"{name:<28} {total:>8} {med:>9.1f} ms {worst:>8.1f} ms {full:>8.1f} ms")
    print(f"slowest page (worst JSON): {max(r[3] for r in rows):.1f} ms; bar: under 1000 ms")


if __name__ == "__main__":
    main()
