"""/morph's GIF: every frame, one shared palette (not Pillow's slow palette per frame), encoded where the queue
counts it."""

import asyncio
import io
import threading

import numpy as np
from PIL import Image

from bot import pictures
from bot.commands import Morph, Waifu
from bot.core import Who
from fakes.bot_parts import closed, make_core
from generator.images import gif_bytes

ALICE = Who("telegram", "1", "alice", "100")
BOB = Who("telegram", "2", "bob", "200")


def test_morph_gif_has_every_frame_on_one_palette():
    from generator.sampler import FaceSampler

    frames = FaceSampler.load(device="cpu").morph_frames((7, 9, 1), (2, 4, 2), frames=8, size=256)
    gif = Image.open(io.BytesIO(gif_bytes(frames)))
    assert gif.format == "GIF" and gif.n_frames == 14  # 8 forward, 6 back
    assert gif.info["loop"] == 0 and gif.info["duration"] == 80
    colours: set[tuple[int, int, int]] = set()
    for i in range(gif.n_frames):
        gif.seek(i)
        shown = np.asarray(gif.convert("RGB"))
        colours.update(map(tuple, shown.reshape(-1, 3)))
        source = frames[i if i < 8 else 14 - i]
        assert shown.shape == (256, 256, 3) and np.abs(shown.astype(float) - np.asarray(source)).mean() < 8
    assert len(colours) <= 256  # Pillow's default gives each frame its own palette: thousands in all


def test_pictures_waiting_to_be_encoded_count_toward_the_queue(tmp_path, monkeypatch):
    """A morph's GIF took seconds to encode outside the queue's count: requests kept being accepted meanwhile."""
    started, release = threading.Event(), threading.Event()
    threads: list[str] = []

    def slow_gif(frames):
        threads.append(threading.current_thread().name)
        started.set()
        release.wait(30)
        return gif_bytes(frames)
    monkeypatch.setattr(pictures, "gif_bytes", slow_gif)

    async def go():
        core = await make_core(tmp_path, queue_limit=4)  # morphs of 3 frames
        try:
            morph = asyncio.ensure_future(core.handle(ALICE, Morph(seed=1, seed2=2)))
            await asyncio.to_thread(started.wait, 30)
            busy = await core.handle(BOB, Waifu(None, None, 2, 1))  # 3 faces encoding + 2 > 4
            release.set()
            return await morph, busy, await core.handle(BOB, Waifu(None, None, 2, 1))
        finally:
            release.set()
            await closed(core)
    morph, busy, drawn = asyncio.run(asyncio.wait_for(go(), 60))
    assert busy.refusal and "busy" in busy.text
    assert not drawn.refusal and Image.open(io.BytesIO(morph.files[0].data)).n_frames == 4
    assert len(threads) == 1 and threads[0].startswith("moebot-encode_")  # the service's encoders, not the shared pool
