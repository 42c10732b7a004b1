"""The store's suite, run on both backends: a SQLite file, and a database of its own on a real PostgreSQL server
(tests/fakes/postgres_server.py). Each test gets ``store_target`` once per backend."""

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from PIL import Image

import migrations
from bot.curation import CurationRules
from bot.store import NewPicture, NewUpload, Store, storage_full
from bot.store import items as store_items
from bot.store import votes as store_votes
from bot.store.database import is_postgres
from bot.store.leases import Leases
from conftest import draw_face
from generator.images import png_bytes
from migrations import postgres as postgres_migrations
from training.importer import pixel_hash, store_image

TWO_UP = CurationRules(min_voters=2, curate_above=0.0, reject_below=0.0)  # two votes decide


def with_store(target, data_dir: Path, scenario):
    """Run ``scenario(store)`` on a store opened on ``target``, closed afterwards; its result."""
    async def go():
        store = await Store.open(target, data_dir)
        try:
            return await scenario(store)
        finally:
            await store.close()
    return asyncio.run(go())


def face_picture(user: int, kind: str = "face", hair: int | None = 7, eye: int | None = 9) -> NewPicture:
    return NewPicture(kind, "telegram", "100", user, "pink hair, blue eyes", "v1", hair=hair, eye=eye, seed=1)


def test_users_pictures_and_uploads(store_target, tmp_path):
    async def scenario(store: Store):
        ann = await store.user("telegram", "1", "ann")
        again = await store.user("telegram", "1", "ann")
        renamed = await store.user("telegram", "1", "Ann B")
        bob = await store.user("discord", "1", "bob")
        first = await store.add_picture(b"same bytes", ".png", face_picture(ann))
        second = await store.add_picture(b"same bytes", ".png", face_picture(bob))
        upload = await store.add_upload(b"drawing", ".png", NewUpload(bob, "discord", "5", "x" * 300))
        sketch = await store.add_picture(b"painted", ".png", NewPicture(
            "sketch", "discord", "5", bob, "t", "sketch-v1", upload_id=upload))
        files = [await store.picture_file(p) for p in (first, second, sketch, 99)]
        names = [r[0] for r in await store.db.fetchall("SELECT name FROM users ORDER BY id")]
        filename = await store.db.fetchval("SELECT filename FROM uploads WHERE id = ?", (upload,))
        return ann, again, renamed, bob, (first, second, sketch), files, names, filename
    ann, again, renamed, bob, ids, files, names, filename = with_store(store_target, tmp_path, scenario)
    assert ann == again == renamed != bob and names == ["Ann B", "bob"]
    assert ids == (1, 2, 3) and files[0] == files[1] and files[0].read_bytes() == b"same bytes"  # one file
    assert files[2].read_bytes() == b"painted" and files[3] is None and len(filename) == 200


def test_votes_are_one_per_user_replaced_or_withdrawn(store_target, tmp_path):
    async def scenario(store: Store):
        ann, bob = await store.user("telegram", "1", "ann"), await store.user("telegram", "2", "bob")
        picture = await store.add_picture(b"p", ".png", face_picture(ann))
        steps = [await store.vote(picture, ann, 1), await store.vote(picture, bob, 1),
                 await store.vote(picture, ann, -1), await store.vote(picture, bob, 1)]
        return steps, await store.counts(picture), await store.vote(404, ann, 1)
    steps, counts, missing = with_store(store_target, tmp_path, scenario)
    assert [(c.up, c.down, c.mine) for c in steps] == [(1, 0, 1), (2, 0, 1), (1, 1, -1), (0, 1, 0)]
    assert (counts.up, counts.down, counts.mine) == (0, 1, 0) and missing is None


def test_votes_make_a_drawn_face_training_data_once(store_target, tmp_path):
    """A face picture and a sketch picture (drawing | face) reach two votes: each enters the training set once,
    as the 64 px face it shows, with its tags, logged; more votes change nothing."""
    async def scenario(store: Store):
        users = [await store.user("telegram", str(i), f"u{i}") for i in range(4)]
        face = draw_face("pink", "blue", 1, size=128)
        drawn = await store.add_picture(png_bytes(face), ".png", face_picture(users[0]))
        pair = Image.new("RGB", (256, 128), "white")
        pair.paste(draw_face("red", "aqua", 2, size=128), (128, 0))
        sketch = await store.add_picture(png_bytes(pair), ".png", face_picture(users[0], "sketch", 10, 4))
        grid = await store.add_picture(png_bytes(pair), ".png", NewPicture("grid", "telegram", "1", users[0], "t",
                                                                           "v1", hair=1, eye=1, count=2))
        decided = [(await store.vote(p, u, 1, TWO_UP)).decided for p in (drawn, sketch, grid) for u in users]
        items = await store.db.fetchall("SELECT picture_id, status, hair, eye, path, source FROM images ORDER BY id")
        log = await store.db.fetchall("SELECT image_id, old_status, new_status, actor FROM curation_log ORDER BY id")
        return drawn, sketch, decided, items, log
    drawn, sketch, decided, items, log = with_store(store_target, tmp_path, scenario)
    assert decided == [None, "curated", None, None] * 2 + [None] * 4  # a grid never becomes training data
    assert [tuple(r)[:4] for r in items] == [(drawn, "curated", 7, 9), (sketch, "curated", 10, 4)]
    assert [r[5] for r in items] == ["chat:face", "chat:sketch"]
    with Image.open(tmp_path / items[1][4]) as cut:  # the sketch's face cell, not the drawing beside it
        red, green, _ = cut.getpixel((32, 8))
        assert cut.size == (64, 64) and red > 150 and green < 100  # red hair at the top
    assert [tuple(r) for r in log] == [(1, None, "curated", "votes"), (2, None, "curated", "votes")]


def test_submissions_queues_decisions_and_tags(store_target, tmp_path):
    async def scenario(store: Store):
        ann = await store.user("telegram", "1", "ann")
        added = []
        for i in range(3):
            face = draw_face("pink", "blue", i)
            added.append(await store.add_submission(face, png_bytes(face), face_picture(ann, "submission"),
                                                    "telegram:1", f"{i}.png"))
        duplicate = await store.add_submission(draw_face("pink", "blue", 0), b"other", face_picture(ann),
                                               "telegram:1", "again.png")
        ids = [a[0] for a in added]
        first = await store.decide_item(ids[0], "curated", "telegram:99", "approved")
        again = await store.decide_item(ids[0], "rejected", "telegram:99", "changed my mind")
        none = await store.decide_item(404, "curated", "telegram:99", "no such item")
        retagged = await store.retag(ids[1], "telegram:99", eye=3), await store.retag(404, "telegram:99", hair=1)
        return (ids, duplicate, (first, again, none), retagged, await store.item(ids[1]), await store.pending(10),
                await store.queue("pending", 2, 1), await store.queue_sizes(),
                await store.db.fetchall("SELECT image_id, old_status, new_status, hair, eye, actor, reason "
                                        "FROM curation_log ORDER BY id"))
    ids, duplicate, decisions, retagged, item, pending, page, sizes, log = with_store(store_target, tmp_path,
                                                                                      scenario)
    assert duplicate is None and decisions == ("pending", "curated", None) and retagged == (True, False)
    assert (item.hair, item.eye, item.status, item.source) == (7, 3, "pending", "submit:telegram")
    assert item.path.exists() and Image.open(item.path).size == (64, 64)
    assert [i.id for i in pending] == ids[1:] and [i.id for i in page[0]] == [ids[2]] and page[1] == 2
    assert sizes == {"pending": 2, "curated": 1}
    assert [tuple(r) for r in log][3:] == [(ids[0], "pending", "curated", 7, 9, "telegram:99", "approved"),
                                           (ids[1], "pending", "pending", 7, 3, "telegram:99", "re-tagged")]


def test_forget_deletes_the_users_rows_and_unshared_files(store_target, tmp_path):
    async def scenario(store: Store):
        ann, bob = await store.user("telegram", "1", "ann"), await store.user("telegram", "2", "bob")
        face = draw_face("pink", "blue", 1)
        item, shown = await store.add_submission(face, png_bytes(face), face_picture(ann, "submission"),
                                                 "telegram:1", "me.png")
        mine = await store.add_upload(b"shared drawing", ".png", NewUpload(ann, "telegram", "1", "a.png"))
        await store.add_upload(b"shared drawing", ".png", NewUpload(bob, "telegram", "1", "b.png"))
        sketch = await store.add_picture(b"painted", ".png", NewPicture("sketch", "telegram", "1", ann, "t", "s",
                                                                        upload_id=mine))
        drawn = await store.add_picture(b"drawn", ".png", face_picture(ann))
        for picture in (shown, sketch, drawn):
            await store.vote(picture, ann, 1)
            await store.vote(picture, bob, -1)
        forgotten = await store.forget(ann, "telegram:1")
        left = {table: await store.db.fetchval(f"SELECT COUNT(*) FROM {table}")
                for table in ("images", "pictures", "uploads", "votes")}
        return item, forgotten, left, await store.counts(drawn), await store.forget(ann, "telegram:1")
    item, forgotten, left, drawn_counts, nothing = with_store(store_target, tmp_path, scenario)
    assert (forgotten.submissions, forgotten.training_items, forgotten.uploads, forgotten.pictures,
            forgotten.votes_on_them, forgotten.votes) == (1, 1, 1, 2, 2, 3)
    assert left == {"images": 0, "pictures": 1, "uploads": 1, "votes": 1} and (drawn_counts.up, drawn_counts.down) \
        == (0, 1)
    files = {p.read_bytes() for p in tmp_path.glob("*/*/*") if p.is_file()}
    assert files == {b"shared drawing", b"drawn"}  # bob's upload keeps the shared file
    assert (nothing.training_items, nothing.pictures, nothing.votes) == (0, 0, 0)


def test_top_and_totals(store_target, tmp_path):
    async def scenario(store: Store):
        users = [await store.user("telegram", str(i), f"u{i}") for i in range(3)]
        pictures = [await store.add_picture(bytes([i]), ".png", face_picture(users[0])) for i in range(4)]
        for picture, values in zip(pictures, [(1, 1, -1), (1, 1, 1), (-1, -1), (1,)]):
            for user, value in zip(users, values):
                await store.vote(picture, user, value)
        return await store.top(None, 3), await store.totals()
    top, totals = with_store(store_target, tmp_path, scenario)
    assert [(p.id, p.up, p.down) for p in top] == [(2, 3, 0), (1, 2, 1), (4, 1, 0)]
    assert top[0].path.read_bytes() == bytes([1])
    assert (totals.pictures, totals.votes, totals.voters, totals.users, totals.dataset) == (4, 9, 3, 3, 0)


def test_leases_are_taken_renewed_released_and_expire(store_target, tmp_path):
    now = [1000.0]

    async def scenario(store: Store):
        a, b = (Leases(store.db, name, clock=lambda: now[0]) for name in ("a", "b"))
        seen = [await a.claim("job", 10), await b.claim("job", 10), await a.claim("job", 10)]
        now[0] += 9
        seen += [await b.claim("job", 10), await a.holder_of("job")]  # a renewed at 1000: held until 1010
        now[0] += 2
        seen += [await b.claim("job", 10), await a.claim("job", 10)]  # expired: b takes it
        await a.release("job")  # not a's to give up
        seen.append(await b.holder_of("job"))
        await b.release("job")
        seen.append(await b.holder_of("job"))
        return seen
    assert with_store(store_target, tmp_path, scenario) == [True, False, True, False, "a", True, False, "b", None]


def test_a_held_lease_makes_tasks_take_turns(store_target, tmp_path):
    """Two tasks of one process (one holder name) still wait for each other."""
    async def scenario(store: Store):
        inside, most = [0], [0]

        async def task():
            async with store.leases.held("near-duplicates", 30, poll_s=0.01):
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                await asyncio.sleep(0.02)
                inside[0] -= 1
        await asyncio.gather(*(task() for _ in range(4)))
        return most[0], await store.leases.holder_of("near-duplicates")
    assert with_store(store_target, tmp_path, scenario) == (1, None)


def test_two_stores_on_one_database_count_every_vote_and_judge_once(store_target, tmp_path):
    """Like two bot processes: two stores (two connections or pools) vote at once on the same pictures."""
    async def scenario(first: Store):
        second = await Store.open(store_target, tmp_path)
        try:
            users = [await first.user("telegram", str(i), f"u{i}") for i in range(12)]
            face = draw_face("pink", "blue", 1)
            pictures = [await first.add_picture(png_bytes(face), ".png", face_picture(users[0])) for _ in range(3)]
            rules = CurationRules(min_voters=5, curate_above=0.0, reject_below=0.0)
            await asyncio.gather(*(store.vote(p, u, 1, rules) for p in pictures
                                   for n, u in enumerate(users) for store in [(first, second)[n % 2]]))
            counts = [await second.counts(p) for p in pictures]
            items = await first.db.fetchall("SELECT picture_id FROM images")
            log = await first.db.fetchval("SELECT COUNT(*) FROM curation_log")
            return pictures, counts, items, log
        finally:
            await second.close()
    pictures, counts, items, log = with_store(store_target, tmp_path, scenario)
    assert [c.up for c in counts] == [12, 12, 12]
    assert len(items) == 1 and items[0][0] in pictures and log == 1  # the same face: in the training set once


def test_no_file_is_written_inside_a_write_transaction(store_target, tmp_path, monkeypatch):
    """While the store writes a face file (a vote that curates, a submission), another connection can write:
    no transaction holds SQLite's write lock, or stands open on PostgreSQL, meanwhile."""
    probes: list[str] = []

    def probe() -> None:
        if is_postgres(store_target):
            with psycopg.connect(store_target) as conn:
                open_ = conn.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND state LIKE 'idle in transaction%'").fetchone()[0]
            probes.append("open transaction" if open_ else "ok")
            return
        conn = sqlite3.connect(store_target, timeout=0)
        try:
            conn.execute("INSERT INTO leases (name, holder, expires_at) VALUES ('probe', 'test', 0) "
                         "ON CONFLICT (name) DO NOTHING")
            probes.append("ok")
        except sqlite3.OperationalError as e:
            probes.append(str(e))
        finally:
            conn.close()

    def probing(real):
        def wrapped(*args):
            probe()
            return real(*args)
        return wrapped
    monkeypatch.setattr(store_votes, "store_face", probing(store_votes.store_face))
    monkeypatch.setattr(store_items, "store_image", probing(store_items.store_image))

    async def scenario(store: Store):
        users = [await store.user("telegram", str(i), f"u{i}") for i in range(2)]
        picture = await store.add_picture(png_bytes(draw_face("pink", "blue", 1)), ".png", face_picture(users[0]))
        decided = [(await store.vote(picture, u, 1, TWO_UP)).decided for u in users]
        face = draw_face("red", "aqua", 2)
        added = await store.add_submission(face, png_bytes(face), face_picture(users[0], "submission"), "t:1", "f")
        return decided, added
    decided, added = with_store(store_target, tmp_path, scenario)
    assert decided == [None, "curated"] and added is not None
    assert probes == ["ok", "ok"]


def test_two_writers_of_the_same_face_file_both_succeed(tmp_path, monkeypatch):
    """Cut out outside any transaction, the same face can be written by two processes at once (two votes that
    curate it): both have written their temporary file before either renames it."""
    both_written = threading.Barrier(2, timeout=10)
    save = Image.Image.save

    def save_then_wait(image, target, *args, **kwargs):
        save(image, target, *args, **kwargs)
        both_written.wait()
    monkeypatch.setattr(Image.Image, "save", save_then_wait)
    face = draw_face("pink", "blue", 1)
    sha = pixel_hash(face)
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: store_image(tmp_path, face, sha), range(2)))
    assert paths[0] == paths[1] and Image.open(tmp_path / paths[0]).size == (64, 64)
    assert [p.name for p in (tmp_path / paths[0]).parent.iterdir()] == [f"{sha}.png"]  # no temporary file left


def test_both_dialects_have_the_same_migrations():
    sqlite_steps = [p.name for _, p in migrations.available()]
    postgres_steps = [p.name for _, p in migrations.available(postgres_migrations.FOLDER)]
    assert sqlite_steps == postgres_steps and len(sqlite_steps) == migrations.latest_version()


def test_postgres_has_the_tables_and_columns_of_sqlite(postgres_url, tmp_path):
    sqlite_conn = migrations.connect(tmp_path / "m.db")
    tables = [r[0] for r in sqlite_conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    expected = {t: [r[1] for r in sqlite_conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    sqlite_conn.close()
    with_store(postgres_url, tmp_path, lambda store: asyncio.sleep(0))  # upgraded on opening
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "
                            "'public' AND table_name != 'schema_version' ORDER BY ordinal_position").fetchall()
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(table, []).append(column)
    assert {t: sorted(c) for t, c in found.items()} == {t: sorted(c) for t, c in expected.items()}


def test_postgres_upgrades_once_with_two_processes_and_refuses_a_newer_schema(postgres_url, tmp_path):
    async def two_at_once():
        stores = await asyncio.gather(Store.open(postgres_url, tmp_path), Store.open(postgres_url, tmp_path))
        versions = await stores[0].db.fetchall("SELECT version FROM schema_version ORDER BY version")
        for store in stores:
            await store.close()
        return [r[0] for r in versions]
    assert asyncio.run(two_at_once()) == list(range(1, migrations.latest_version() + 1))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (migrations.latest_version() + 1,))
    with pytest.raises(migrations.SchemaTooNew, match="upgrade moebot"):
        asyncio.run(Store.open(postgres_url, tmp_path))


def test_a_full_disk_reads_the_same_on_both_engines():
    assert storage_full(psycopg.errors.DiskFull("could not extend file"))
    assert not storage_full(psycopg.errors.UniqueViolation("duplicate key"))
