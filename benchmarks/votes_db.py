"""Votes per second through the store, on SQLite and on PostgreSQL, from one bot process and from two.

    python benchmarks/votes_db.py [--votes 1500] [--concurrency 8] [--postgres-url URL]

Each process opens its own Store on the one database (as two `moebot run` processes would) and casts its share
of ``--votes`` with ``--concurrency`` votes in flight, each a ``Store.vote`` with the default [curation] rules: a
random user (of 300) presses 👍 (four in five) or 👎 on a random single-face picture (of 400, real 256 px PNGs,
so votes that curate a face cut its file out as the bot does). The processes start together; the figure is all
votes over the wall time from the start to the last vote. SQLite runs with the store's settings (WAL,
synchronous=FULL); PostgreSQL is Debian's package started in a temporary folder with its defaults (fsync on,
synchronous_commit on), unless ``--postgres-url`` names an empty database to use instead.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the PostgreSQL server helper lives with the tests

from bot.curation import CurationRules  # noqa: E402
from bot.store import NewPicture, Store  # noqa: E402
from generator.images import png_bytes  # noqa: E402

USERS, PICTURES = 300, 400


async def fill(target: str | Path, data_dir: Path) -> None:
    """The users and pictures the votes fall on."""
    from conftest import draw_face  # the tests' cartoon faces: real pictures to cut faces from
    store = await Store.open(target, data_dir)
    try:
        users = [await store.user("telegram", str(u), f"user{u}") for u in range(USERS)]
        for p in range(PICTURES):
            face = draw_face("pink", "blue", p, size=256)
            await store.add_picture(png_bytes(face), ".png", NewPicture("face", "telegram", "1", users[p % USERS],
                                                                        "pink hair, blue eyes", "v1", 7, 9, p))
    finally:
        await store.close()


def voter(target: str | Path, data_dir: Path, votes: int, concurrency: int, seed: int, ready, results) -> None:
    """One bot process: open the store, wait at ``ready`` for the others, cast ``votes`` votes, report their
    latencies (seconds)."""
    async def cast() -> list[float]:
        store = await Store.open(target, data_dir)
        rng = random.Random(seed)
        latencies: list[float] = []

        async def worker(n: int) -> None:
            for _ in range(n):
                picture, user = rng.randrange(PICTURES) + 1, rng.randrange(USERS) + 1
                start = time.perf_counter()
                await store.vote(picture, user, 1 if rng.random() < 0.8 else -1, CurationRules())
                latencies.append(time.perf_counter() - start)
        try:
            await asyncio.to_thread(ready.wait)
            await asyncio.gather(*(worker(votes // concurrency) for _ in range(concurrency)))
        finally:
            await store.close()
        return latencies
    try:
        results.put(asyncio.run(cast()))
    except BaseException as e:  # the parent reports it rather than waiting for figures that never come
        results.put(f"{type(e).__name__}: {e}")
        raise


def measure(target: str | Path, data_dir: Path, processes: int, votes: int, concurrency: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Barrier(processes + 1), ctx.Queue()
    workers = [ctx.Process(target=voter, args=(target, data_dir, votes // processes, concurrency, seed, ready,
                                               results)) for seed in range(processes)]
    for w in workers:
        w.start()
    ready.wait()  # every process has opened its store (not timed)
    started = time.perf_counter()
    reports = [results.get() for _ in workers]
    elapsed = time.perf_counter() - started
    if failed := [r for r in reports if isinstance(r, str)]:
        sys.exit(f"a voting process failed: {failed[0]}")
    latencies = [x for r in reports for x in r]
    for w in workers:
        w.join()
    latencies.sort()
    return {"votes": len(latencies), "per_s": len(latencies) / elapsed, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--votes", type=int, default=1500, help="votes per case, split between the processes")
    ap.add_argument("--concurrency", type=int, default=8, help="votes in flight in each process")
    ap.add_argument("--postgres-url", default="", help="an empty PostgreSQL database (default: start one)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the server started below on kill, too
    server = None
    if not args.postgres_url:
        from fakes.postgres_server import PostgresServer, binaries
        found = binaries()
        if found is None:
            sys.exit("PostgreSQL is not installed (apt-get install postgresql), and no --postgres-url was given")
        server = PostgresServer(found, durable=True).start()
    try:
        print(f"load average before: {os.getloadavg()[0]:.1f}; {args.votes} votes per case, "
              f"{args.concurrency} in flight per process")
        print("| database | processes | votes | votes/s | p50 | p99 |\n|---|---|---|---|---|---|")
        for backend in ("sqlite", "postgres"):
            for processes in (1, 2):
                with tempfile.TemporaryDirectory() as tmp:
                    data_dir = Path(tmp)
                    target: str | Path = data_dir / "moebot.db"
                    if backend == "postgres":
                        target = args.postgres_url if args.postgres_url else server.new_database()
                    asyncio.run(fill(target, data_dir))
                    r = measure(target, data_dir, processes, args.votes, args.concurrency)
                print(f"| {backend} | {processes} | {r['votes']} | {r['per_s']:.0f} | {r['p50_ms']:.1f} ms | "
                      f"{r['p99_ms']:.1f} ms |", flush=True)
                if args.postgres_url and backend == "postgres":
                    break  # the database given is no longer empty
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
