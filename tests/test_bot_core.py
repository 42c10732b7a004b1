"""The platform-free core: drawing, limits, the bounded queue, votes and the store, on a real SQLite file."""

import asyncio
import contextlib
import io
import logging
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from bot.commands import Grid, Help, Morph, Stats, Top, Waifu
from bot.core import STORAGE_FULL, Who, parse_vote_id, vote_id
from bot.limits import Limits
from bot.store import Store
from fakes.bot_parts import closed, make_core, tiny_weights
from generator.tags import eye_index, hair_index

ALICE = Who("telegram", "1", "alice", "100")
BOB = Who("telegram", "2", "bob", "100")


def run(coro):
    return asyncio.run(coro)


def test_waifu_draws_stores_and_offers_vote_buttons(tmp_path):
    async def go():
        core = await make_core(tmp_path)
        try:
            reply = await core.handle(ALICE, Waifu(hair_index("pink"), eye_index("blue"), 1, 42))
            again = await core.handle(BOB, Waifu(hair_index("pink"), eye_index("blue"), 1, 42))
            return reply, again
        finally:
            await closed(core)
    reply, again = run(go())
    assert not reply.refusal
    assert "pink hair, blue eyes" in reply.text and "seed 42" in reply.text and "test-v1" in reply.text
    assert reply.files[0].data == again.files[0].data  # same seed, same face
    img = Image.open(io.BytesIO(reply.files[0].data))
    assert img.format == "PNG" and img.size == (64, 64)
    assert reply.buttons.labelled() == [("👍 0", f"vote:{reply.buttons.picture_id}:up"),
                                        ("👎 0", f"vote:{reply.buttons.picture_id}:down")]
    db = sqlite3.connect(tmp_path / "moebot.db")
    rows = db.execute("SELECT p.path, p.platform, p.chat_id, p.seed, p.hair, p.eye, p.model_version, u.name "
                      "FROM pictures p JOIN users u ON u.id = p.user_id ORDER BY p.id").fetchall()
    assert [r[1:] for r in rows] == [("telegram", "100", 42, 7, 9, "test-v1", "alice"),
                                     ("telegram", "100", 42, 7, 9, "test-v1", "bob")]
    assert rows[0][0] == rows[1][0] and (tmp_path / rows[0][0]).read_bytes() == reply.files[0].data


def test_count_grid_and_morph(tmp_path):
    async def go():
        core = await make_core(tmp_path)
        try:
            return [await core.handle(ALICE, c) for c in
                    (Waifu(None, None, 4, 5), Grid("hair", None, None, 1), Grid("all"), Morph(seed=1, seed2=2))]
        finally:
            await closed(core)
    four, hair_grid, all_grid, morph = run(go())
    assert Image.open(io.BytesIO(four.files[0].data)).size == (2 * 66 + 2, 2 * 66 + 2)
    assert "seeds 5–8" in four.text
    assert Image.open(io.BytesIO(hair_grid.files[0].data)).width > 12 * 64
    assert Image.open(io.BytesIO(all_grid.files[0].data)).size == (10 * 66 + 2, 12 * 66 + 2)
    gif = Image.open(io.BytesIO(morph.files[0].data))
    assert gif.format == "GIF" and gif.n_frames == 4  # 3 frames forward and one back
    assert all(r.buttons is not None for r in (four, hair_grid, all_grid, morph))


def test_votes_one_per_user_changed_or_withdrawn_and_survive_reopening(tmp_path):
    async def go():
        core = await make_core(tmp_path)
        pid = (await core.handle(ALICE, Waifu(seed=1))).buttons.picture_id
        results = [await core.vote(ALICE, vote_id(pid, True)),
                   await core.vote(ALICE, vote_id(pid, True)),   # same again: withdrawn
                   await core.vote(ALICE, vote_id(pid, False)),
                   await core.vote(ALICE, vote_id(pid, True)),   # changed
                   await core.vote(BOB, vote_id(pid, True))]
        await closed(core)
        core = await make_core(tmp_path)
        try:
            after = await core.vote(Who("discord", "1", "alice", "9"), vote_id(pid, False))  # another platform
            missing = await core.vote(ALICE, vote_id(pid + 100, True))
            bogus = await core.vote(ALICE, "vote:x:up")
            return pid, results, after, missing, bogus
        finally:
            await closed(core)
    pid, results, after, missing, bogus = run(go())
    assert [(r.buttons.up, r.buttons.down) for r in results] == [(1, 0), (0, 0), (0, 1), (1, 0), (2, 0)]
    assert [r.notice for r in results[:2]] == ["You voted 👍", "Vote withdrawn"]
    assert (after.buttons.up, after.buttons.down) == (2, 1)
    assert missing.buttons is None and "can't find" in missing.notice
    assert bogus.buttons is None
    assert parse_vote_id(vote_id(pid, False)) == (pid, -1) and len(vote_id(10**17, False)) <= 64


def test_cooldown_and_chat_limit(tmp_path):
    now = [1000.0]

    async def go():
        core = await make_core(tmp_path, cooldown_s=10, chat_per_minute=2, clock=lambda: now[0])
        try:
            first = await core.handle(ALICE, Waifu(seed=1))
            soon = await core.handle(ALICE, Waifu(seed=1))
            info = await core.handle(ALICE, Help())  # not a drawing: never limited
            bob = await core.handle(BOB, Waifu(seed=2))
            third = await core.handle(Who("telegram", "3", "cy", "100"), Waifu(seed=3))
            other_chat = await core.handle(Who("telegram", "3", "cy", "200"), Waifu(seed=3))
            now[0] += 61
            later = await core.handle(ALICE, Waifu(seed=1))
            return first, soon, info, bob, third, other_chat, later
        finally:
            await closed(core)
    first, soon, info, bob, third, other_chat, later = run(go())
    assert not first.refusal and not bob.refusal and not other_chat.refusal and not later.refusal
    assert soon.refusal and "again in 10 s" in soon.text and not soon.files
    assert not info.refusal
    assert third.refusal and "This chat is drawing a lot" in third.text


def test_limits_give_back_undoes_a_take(tmp_path):
    async def go():
        store = await Store.open(tmp_path / "moebot.db", tmp_path)
        limits = Limits(store.db, 30, 1, clock=lambda: 5.0)
        try:
            return [await limits.take("u", "c"), await limits.check("u", "c"), await limits.give_back("u", "c"),
                    await limits.check("u", "c")]
        finally:
            await store.close()
    taken, refused, _, again = run(go())
    assert taken is None and refused is not None and again is None


def _burst(tmp_path, count: int, requests: int, **service):
    """``requests`` /waifu of ``count`` faces from different users at once: (replies, positions told)."""
    async def go():
        core = await make_core(tmp_path, **service)
        positions: list[int] = []

        async def on_queued(p):
            positions.append(p)
        try:
            return await asyncio.gather(*(core.handle(Who("telegram", str(i), "u", "1"), Waifu(None, None, count, i),
                                                      on_queued) for i in range(requests))), positions
        finally:
            await closed(core)
    return run(go())


def test_full_queue_answers_busy(tmp_path):
    # the first request waits 1.5 s for others to fill its batch: time for all five to arrive
    replies, positions = _burst(tmp_path, 4, 5, queue_limit=12, max_wait_ms=1500)
    drawn = [r for r in replies if not r.refusal]
    busy = [r for r in replies if r.refusal]
    assert len(drawn) == 3 and len(busy) == 2  # 12 faces may wait: three requests of four
    assert all("busy" in r.text and "try again in" in r.text for r in busy)
    assert positions == []  # the three drawn share one batch: nobody waits for another, nobody is told to


def test_users_who_miss_the_next_batch_hear_their_position(tmp_path):
    # batches of 4 faces, requests of 3: the first waits for company, every later one misses its batch
    replies, positions = _burst(tmp_path, 3, 3, queue_limit=12, max_wait_ms=1500, max_batch=4)
    assert not any(r.refusal for r in replies)
    assert len(positions) == 2 and all(p >= 1 for p in positions)


def test_stats_top_and_help(tmp_path):
    async def go():
        core = await make_core(tmp_path)
        try:
            empty = await core.handle(ALICE, Top("week"))
            a = (await core.handle(ALICE, Waifu(hair_index("red"), None, 1, 1))).buttons.picture_id
            b = (await core.handle(ALICE, Waifu(hair_index("blue"), None, 1, 2))).buttons.picture_id
            await core.handle(ALICE, Waifu(seed=3))
            await core.vote(ALICE, vote_id(b, True))
            await core.vote(BOB, vote_id(b, True))
            await core.vote(ALICE, vote_id(a, True))
            return empty, await core.handle(ALICE, Top("day")), await core.handle(ALICE, Stats()), \
                await core.handle(ALICE, Help())
        finally:
            await closed(core)
    empty, top, stats, help_ = run(go())
    assert "No votes this week" in empty.text and not empty.files
    assert top.text.splitlines()[1].startswith("1. blue hair") and "👍 2" in top.text.splitlines()[1]
    assert top.text.splitlines()[2].startswith("2. red hair") and len(top.files) == 2
    assert "Pictures made: 3" in stats.text and "Votes: 3 from 2 people" in stats.text
    assert "Dataset: 0 faces" in stats.text and "Model: test-v1" in stats.text
    assert "/waifu" in help_.text and "/morph" in help_.text


def test_a_crashed_generator_gets_a_polite_answer_and_the_bot_carries_on(tmp_path):
    heavy = tiny_weights(tmp_path / "heavy.safetensors", g_ch=96)  # ~0.5 s for a full grid: time to kill it

    async def go():
        core = await make_core(tmp_path, weights=heavy, cooldown_s=60, max_batch=256)
        try:
            doomed = asyncio.create_task(core.handle(ALICE, Grid("all")))
            while core.generator.metrics.in_flight == 0:
                await asyncio.sleep(0.005)
            core.generator._worker.process.kill()
            return await doomed, await core.handle(ALICE, Waifu(seed=1))  # the cooldown was given back
        finally:
            await closed(core)
    failed, after = run(go())
    assert failed.refusal and "hiccuped" in failed.text and "please try again" in failed.text
    assert "crashed" not in failed.text and not failed.files
    assert not after.refusal and len(after.files) == 1


def test_caption_and_stored_version_come_from_the_model_that_drew(tmp_path):
    async def go():
        core = await make_core(tmp_path)
        try:
            before = await core.handle(ALICE, Waifu(seed=1))
            await core.generator.promote(tiny_weights(tmp_path / "v2.safetensors", seed=1, version="v2"))
            return before, await core.handle(ALICE, Grid("hair", seed=1)), core.model_version
        finally:
            await closed(core)
    before, after, version = run(go())
    assert "model test-v1" in before.text and "model v2" in after.text and version == "v2"
    rows = sqlite3.connect(tmp_path / "moebot.db").execute("SELECT model_version FROM pictures ORDER BY id")
    assert [r[0] for r in rows] == ["test-v1", "v2"]


def test_admins_also_see_the_generator_metrics(tmp_path):
    async def go():
        core = await make_core(tmp_path, admins=(ALICE.user_key,))
        try:
            await core.handle(BOB, Waifu(seed=1))
            return await core.handle(ALICE, Stats()), await core.handle(BOB, Stats())
        finally:
            await closed(core)
    admin, user = run(go())
    assert "Queue: 0 drawing or waiting" in admin.text and "Queue: 0 drawing or waiting" in user.text
    assert "Generator: queue 0 requests" in admin.text and "1 requests, 0 failed" in admin.text
    assert "Generator" not in user.text


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs that a test can fill up: the real "No space left on device" (needs root; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk) -> Path:
    """Write a file until the disk has no byte left; returns it (deleting it makes room again)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_gets_a_plain_answer_no_error_and_no_temporary_file(small_disk, caplog):
    admin = Who("telegram", "9", "ada", "100")

    async def go():
        core = await make_core(small_disk, admins=(admin.user_key,))
        try:
            pid = (await core.handle(ALICE, Waifu(seed=1))).buttons.picture_id
            await core.handle(BOB, Stats())  # Bob is known before the disk fills up
            filler = fill(small_disk)
            full = [await core.vote(BOB, vote_id(pid, True)), await core.handle(ALICE, Waifu(seed=2))]
            stats = await core.handle(admin, Stats())
            left = sorted(p.name for p in small_disk.rglob("*.tmp"))
            filler.unlink()
            return full, stats, left, await core.vote(BOB, vote_id(pid, True))
        finally:
            await closed(core)

    with caplog.at_level(logging.ERROR):
        (vote, picture), stats, left, later = run(go())
    assert vote.notice == picture.text == STORAGE_FULL and vote.buttons is None
    assert picture.refusal and not picture.files
    assert left == []  # the picture's failed write took its temporary file with it
    assert "⚠ The disk was full at" in stats.text
    full = [r for r in caplog.records if "storage is full" in r.getMessage()]
    assert len(full) == 2 and not any(r.exc_info for r in caplog.records)  # a line each, no traceback
    assert later.buttons.up == 1  # with room again, votes count


def test_temporary_files_a_crash_left_are_removed_at_start(tmp_path):
    folder = tmp_path / "pictures" / "ab"
    folder.mkdir(parents=True)
    stale, fresh = folder / "ab12.png.0123456789ab.tmp", folder / "ab34.png.0123456789ab.tmp"
    stale.write_bytes(b"x" * 1000)
    fresh.write_bytes(b"y")  # another writer's, mid-write
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    async def go():
        store = await Store.open(tmp_path / "moebot.db", tmp_path)
        await store.close()
    run(go())
    assert not stale.exists() and fresh.exists()
