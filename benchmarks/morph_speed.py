"""/morph on this CPU: the GIF encoder alone (Pillow's default against ``gif_bytes``), then the command end to end.

1. Encoding: the frames of one morph (``--frames`` faces from the bundled
   generator at 256 px, played forward and back) saved as a GIF by Pillow's
   default path (a median-cut palette per frame, as ``gif_bytes`` did before)
   and by ``gif_bytes`` (one fast-octree palette for all frames, no dither).
2. End to end: ``Core.handle(Morph)`` as the chat adapters call it, from the
   command to the reply's GIF bytes (drawing through the generator service's
   worker process, encoding on the service's encoder threads, storing the
   picture in a fresh SQLite store), one at a time and then 2 and 4 at once.

    python benchmarks/morph_speed.py [--weights FILE] [--frames 16] [--runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from PIL import Image  # noqa: E402

from bot.commands import COMMANDS, Morph  # noqa: E402
from bot.core import Core, Who  # noqa: E402
from bot.limits import Limits  # noqa: E402
from bot.store import Store  # noqa: E402
from generator.images import gif_bytes  # noqa: E402
from generator.metrics import percentile  # noqa: E402
from generator.sampler import FaceSampler  # noqa: E402
from generator.service import GeneratorService, ServiceOptions  # noqa: E402

SIZE = 256  # the bot's morph size (display_size, at most 256)


def pillow_default_gif(frames: list[Image.Image]) -> bytes:
    """The GIF as Pillow saves RGB frames when asked nothing more: a palette quantised for each frame."""
    seq = frames + frames[-2:0:-1]
    buf = io.BytesIO()
    seq[0].save(buf, format="GIF", save_all=True, append_images=seq[1:], duration=80, loop=0, disposal=2)
    return buf.getvalue()


def timed(fn, runs: int) -> tuple[list[float], bytes]:
    seconds, out = [], b""
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - t0)
    return seconds, out


def figures(seconds: list[float]) -> str:
    return f"p50 {percentile(seconds, 50):.3f} s, max {max(seconds):.3f} s"


async def end_to_end(weights: str | None, frames: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        service = await GeneratorService(weights, ServiceOptions(threads=0)).start()
        store = await Store.open(data_dir / "moebot.db", data_dir)
        core = Core(store, service, Limits(store.db, 0, 10_000), commands=COMMANDS, display_size=SIZE,
                    morph_frames=frames)
        try:
            async def one(k: int) -> float:
                t0 = time.perf_counter()
                reply = await core.handle(Who("telegram", str(k), f"user{k}", str(k)), Morph(seed=k, seed2=k + 1))
                assert not reply.refusal and reply.files[0].filename.endswith(".gif"), reply.text
                return time.perf_counter() - t0

            await one(0)  # warm up: the worker's first batch
            for together in (1, 2, 4):
                seconds: list[float] = []
                for r in range(runs):
                    seconds += await asyncio.gather(*(one(100 * r + i + 1) for i in range(together)))
                print(f"/morph end to end, {together} at once, {runs} rounds: {figures(seconds)}")
        finally:
            await core.close()
            await service.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", help="face generator weights (default: the bundled ones)")
    ap.add_argument("--frames", type=int, default=16, help="[generator] morph_frames")
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    sampler = FaceSampler.load(args.weights, "cpu")
    frames = sampler.morph_frames((7, 9, 1), (2, 4, 2), args.frames, SIZE)
    print(f"model {sampler.version}, {args.frames} frames of {SIZE} px, played forward and back "
          f"({2 * args.frames - 2} in the GIF); load average {os.getloadavg()[0]:.1f}")
    for name, encode in (("Pillow default (palette per frame)", lambda: pillow_default_gif(frames)),
                         ("gif_bytes (one fast-octree palette)", lambda: gif_bytes(frames))):
        seconds, data = timed(encode, args.runs)
        print(f"encode, {name}: {figures(seconds)}, {len(data) / 1024:.0f} KB")
    asyncio.run(end_to_end(args.weights, args.frames, args.runs))


if __name__ == "__main__":
    main()
