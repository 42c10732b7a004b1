"""The dashboard gallery's query: pages, filters, vote counts, and LIKE wildcards taken literally."""

import asyncio

from bot.store import GalleryFilter, NewPicture, Store


def test_the_gallery_query_pages_filters_and_escapes(tmp_path):
    async def scenario() -> None:
        store = await Store.open(tmp_path / "moebot.db", tmp_path)
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
