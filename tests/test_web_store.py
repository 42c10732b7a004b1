"""The dashboard gallery's query: pages, filters, vote counts, and LIKE wildcards taken literally (both backends)."""

import asyncio

from PIL import Image

from bot.store import GalleryFilter, NewPicture, Store
from generator.images import png_bytes


def test_the_gallery_query_pages_filters_and_escapes(store_target, tmp_path):
    async def scenario() -> None:
        store = await Store.open(store_target, tmp_path)
        try:
            user = await store.user("web", "local", "you")
            voter = await store.user("telegram", "7", "v")
            for i in range(30):
                tags = "100% pink hair, blue eyes" if i == 29 else f"{'pink' if i % 2 else 'blonde'} hair, red eyes"
                await store.add_picture(f"{i}".encode(), ".png", NewPicture(
                    "face" if i % 3 else "grid", "web" if i < 20 else "telegram", "c", user, tags, "v1"))
            await store.vote(3, voter, 1)
            await store.vote(4, voter, -1)
            items, total = await store.gallery(GalleryFilter(), 2, 24)
            assert total == 30 and [p.id for p in items] == list(range(6, 0, -1))
            assert (await store.gallery(GalleryFilter(tags="pink red"), 1, 100))[1] == 14
            assert [p.id for p in (await store.gallery(GalleryFilter(tags="100%"), 1, 100))[0]] == [30]
            assert (await store.gallery(GalleryFilter(tags="_"), 1, 100))[1] == 0  # LIKE wildcards are literal
            assert [(p.id, p.up) for p in (await store.gallery(GalleryFilter(votes="up"), 1, 9))[0]] == [(3, 1)]
            assert [(p.id, p.down) for p in (await store.gallery(GalleryFilter(votes="down"), 1, 9))[0]] == [(4, 1)]
            assert (await store.gallery(GalleryFilter(votes="none"), 1, 9))[1] == 28
            assert (await store.gallery(GalleryFilter(platform="telegram", kind="grid"), 1, 9))[1] == 3
            assert await store.platforms_and_kinds() == (["telegram", "web"], ["face", "grid"])
            assert (await store.picture_file(1)).read_bytes() == b"0" and await store.picture_file(99) is None
        finally:
            await store.close()
    asyncio.run(scenario())


def test_the_queues_page_items_by_state_and_the_gallery_filters_by_it(store_target, tmp_path):
    """Two submissions wait, one is approved; the gallery shows each picture's training state."""
    async def scenario() -> None:
        store = await Store.open(store_target, tmp_path)
        try:
            user = await store.user("telegram", "1", "ann")
            for i in range(3):
                face = Image.new("RGB", (64, 64), (80 * i, 10, 200))
                meta = NewPicture("submission", "telegram", "c", user, "pink hair, blue eyes", "submitted",
                                  hair=7, eye=9)
                await store.add_submission(face, png_bytes(face), meta, "telegram:1", f"{i}.png")
            ids = [item.id for item in (await store.queue("pending", 1, 10))[0]]
            assert len(ids) == 3
            await store.add_picture(b"drawn", ".png", NewPicture("face", "web", "c", user, "red hair, red eyes", "v1"))
            assert await store.decide_item(ids[1], "curated", "web:dashboard", "approved") == "pending"
            pending, total = await store.queue("pending", 1, 1)
            assert total == 2 and [i.id for i in pending] == [ids[0]]
            assert [i.id for i in (await store.queue("pending", 2, 1))[0]] == [ids[2]]  # oldest first, paged
            assert [i.id for i in (await store.queue("curated", 1, 10))[0]] == [ids[1]]
            assert await store.queue_sizes() == {"pending": 2, "curated": 1}
            assert sorted(p.state or "" for p in (await store.gallery(GalleryFilter(), 1, 10))[0]) == \
                ["", "curated", "pending", "pending"]
            assert (await store.gallery(GalleryFilter(state="curated"), 1, 10))[1] == 1
            assert (await store.gallery(GalleryFilter(state="pending"), 1, 10))[1] == 2
            assert [p.tags for p in (await store.gallery(GalleryFilter(state="none"), 1, 10))[0]] == \
                ["red hair, red eyes"]
        finally:
            await store.close()
    asyncio.run(scenario())
