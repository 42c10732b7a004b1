"""Curation by votes and by admins, and /forget, on the platform-free core with a real SQLite file."""

import asyncio
import io
import sqlite3

import numpy as np
import pytest
from PIL import Image

from bot.commands import Forget, Grid, Review, Sketch, Waifu
from bot.core import Upload, Who
from bot.curation import CurationRules, decide, wilson_interval
from bot.store import NewPicture
from conftest import draw_face
from fakes.bot_parts import closed, make_core
from generator.images import png_bytes
from generator.tags import eye_index, hair_index
from test_sketch_input import drawing, encoded

ADMIN = Who("telegram", "99", "Ada", "99")
ALICE = Who("telegram", "1", "alice", "100")
BOB = Who("telegram", "2", "bob", "100")
VOTERS = [Who("telegram", str(10 + i), f"voter{i}", "100") for i in range(5)]


@pytest.mark.parametrize("up, down, expected", [
    (3, 0, None),  # promising, not proof: the lower bound is 0.44
    (4, 0, "curated"), (7, 1, "curated"), (6, 2, None), (0, 4, "rejected"), (1, 8, "rejected"), (2, 2, None),
])
def test_the_default_rules(up, down, expected):
    decision = decide(up, down, CurationRules())
    assert (decision.status if decision else None) == expected


def test_min_voters_and_the_interval():
    lax = CurationRules(min_voters=2, curate_above=0.0, reject_below=0.0)
    assert decide(1, 0, lax) is None and decide(2, 0, lax).status == "curated"
    low, high = wilson_interval(4, 4)
    assert 0.50 < low < 0.52 and high == pytest.approx(1.0) and wilson_interval(0, 0) == (0.0, 1.0)
    assert "4 👍 0 👎" in decide(4, 0, CurationRules()).reason


async def vote_all(core, picture_id: int, voters, up: bool = True):
    return [await core.vote(v, f"vote:{picture_id}:{'up' if up else 'down'}") for v in voters]


async def submit(core, who: Who, face: Image.Image, hair: str, eye: str) -> int | None:
    """A pending submission, as /submit leaves it; its item id."""
    user = await core.store.user(who.platform, who.user_id, who.user_name)
    meta = NewPicture("submission", who.platform, who.chat_id, user, f"{hair} hair, {eye} eyes", "submitted",
                      hair=hair_index(hair), eye=eye_index(eye))
    added = await core.store.add_submission(face, png_bytes(face), meta, who.user_key, "face.png")
    return added and added[0]


def test_votes_curate_or_reject_generated_faces_once(tmp_path):
    async def go():
        core = await make_core(tmp_path)
        try:
            liked = await core.handle(ALICE, Waifu(hair_index("pink"), eye_index("blue"), 1, 1))
            disliked = await core.handle(ALICE, Waifu(hair_index("blonde"), eye_index("red"), 1, 2))
            four = await core.handle(ALICE, Waifu(None, None, 4, 3))
            grid = await core.handle(ALICE, Grid("hair", seed=4))
            sketch = await core.handle(BOB, Sketch(hair_index("aqua"), eye_index("green"), 5),
                                       upload=Upload("d.png", None, lambda: asyncio.sleep(0, encoded(drawing()))))
            notices = [r.notice for r in await vote_all(core, liked.buttons.picture_id, VOTERS[:4])]
            await vote_all(core, disliked.buttons.picture_id, VOTERS[:4], up=False)
            for reply in (four, grid, sketch):
                await vote_all(core, reply.buttons.picture_id, VOTERS[:4])
            # later votes never undo a decision
            await vote_all(core, liked.buttons.picture_id, VOTERS[:4])  # withdrawn
            await vote_all(core, liked.buttons.picture_id, VOTERS, up=False)
            return notices, liked, disliked, sketch
        finally:
            await closed(core)
    notices, liked, disliked, sketch = asyncio.run(go())
    assert notices[:3] == ["You voted 👍"] * 3 and notices[3] == "You voted 👍 — the votes made it training data"
    db = sqlite3.connect(tmp_path / "moebot.db")
    rows = db.execute("SELECT picture_id, status, hair, eye, source, user_id, path FROM images ORDER BY id").fetchall()
    assert [r[:6] for r in rows] == [
        (liked.buttons.picture_id, "curated", 7, 9, "chat:face", None),
        (disliked.buttons.picture_id, "rejected", 11, 8, "chat:face", None),
        (sketch.buttons.picture_id, "curated", 2, 6, "chat:sketch", None)]  # grids of several faces never enter
    face = np.asarray(Image.open(tmp_path / rows[0][6]))
    assert face.shape == (64, 64, 3) and np.array_equal(face, np.asarray(Image.open(io.BytesIO(liked.files[0].data))))
    painted = np.asarray(Image.open(io.BytesIO(sketch.files[0].data)).convert("RGB"))[2:66, 68:132]
    assert np.array_equal(np.asarray(Image.open(tmp_path / rows[2][6])), painted)  # the face half, not the drawing
    log = db.execute("SELECT image_id, old_status, new_status, actor, reason FROM curation_log ORDER BY id").fetchall()
    assert [r[:4] for r in log] == [(1, None, "curated", "votes"), (2, None, "rejected", "votes"),
                                    (3, None, "curated", "votes")]
    assert log[0][4].startswith("4 👍 0 👎: 95% sure")


def test_admins_review_approve_reject_and_retag(tmp_path):
    async def go():
        core = await make_core(tmp_path, admins=(ADMIN.user_key,))
        try:
            first = await submit(core, ALICE, draw_face("pink", "blue", 1), "pink", "blue")
            second = await submit(core, BOB, draw_face("red", "aqua", 2), "red", "aqua")
            again = await submit(core, BOB, draw_face("pink", "blue", 1), "pink", "blue")  # the very same face
            refused = await core.handle(ALICE, Review())
            review = await core.handle(ADMIN, Review())
            out = {"refused": refused, "review": review, "again": again}
            out["not_admin"] = await core.press(ALICE, f"rev:{first}:ok")
            out["approve"] = await core.press(ADMIN, f"rev:{first}:ok")
            out["twice"] = await core.press(ADMIN, f"rev:{first}:no")
            out["unknown"] = await core.press(ADMIN, "rev:999:ok")
            out["card"] = await core.press(ADMIN, f"rev:{second}:tag")
            out["others"] = await core.press(ALICE, f"tag:{second}:h:0")  # not hers
            out["own"] = await core.press(BOB, f"tag:{second}:h:0")  # his own, still pending
            out["eye"] = await core.press(ADMIN, f"tag:{second}:e:3")
            out["reject"] = await core.press(ADMIN, f"rev:{second}:no")
            out["late"] = await core.press(BOB, f"tag:{second}:e:0")  # decided now: only admins
            out["bad"] = await core.press(ADMIN, "tag:1:h:99")
            out["empty"] = await core.handle(ADMIN, Review())
            return out
        finally:
            await closed(core)
    out = asyncio.run(go())
    assert out["again"] is None
    assert out["refused"].refusal and "only the bot's admins" in out["refused"].text
    review = out["review"]
    assert review.text == "The 2 oldest items waiting for review:" and len(review.more) == 2
    card = review.more[0]
    assert card.text.startswith("Item #1 · pink hair, blue eyes · pending · 👍 0 👎 0 · from submit:telegram")
    assert [b for b, _ in card.actions[0]] == ["✅ approve", "❌ reject", "🏷 re-tag"]
    assert Image.open(io.BytesIO(card.files[0].data)).size == (64, 64)
    assert "only the bot's admins" in out["not_admin"].notice and out["not_admin"].text is None
    assert out["approve"].rows == () and out["approve"].text.endswith("✅ approved by Ada")
    assert out["twice"].notice == "Item #1 is already curated."
    assert out["unknown"].notice == "Item #999 no longer exists."
    tags = out["card"].reply
    assert len(tags.actions) == 5 and sum(map(len, tags.actions)) == 22
    assert ("✓ red hair", "tag:2:h:5") in tags.actions[1] and ("✓ aqua eyes", "tag:2:e:4") in tags.actions[3]
    assert out["others"].notice.startswith("Only the person who sent it")
    assert out["own"].notice == "Hair: orange" and "orange hair, aqua eyes" in out["own"].text
    assert out["eye"].notice == "Eyes: yellow" and ("✓ yellow eyes", "tag:2:e:3") in out["eye"].rows[3]
    assert out["late"].notice.startswith("Item #2 is rejected already")
    assert out["bad"].notice == "That colour doesn't exist any more."
    assert out["empty"].text == "Nothing is waiting for review."
    db = sqlite3.connect(tmp_path / "moebot.db")
    assert db.execute("SELECT id, status, hair, eye FROM images ORDER BY id").fetchall() == \
        [(1, "curated", 7, 9), (2, "rejected", 0, 3)]
    assert db.execute("SELECT image_id, old_status, new_status, hair, eye, actor, reason FROM curation_log "
                      "ORDER BY id").fetchall() == [
        (1, None, "pending", 7, 9, "telegram:1", "submitted"), (2, None, "pending", 5, 4, "telegram:2", "submitted"),
        (1, "pending", "curated", 7, 9, "telegram:99", "approved in /review"),
        (2, "pending", "pending", 0, 4, "telegram:2", "re-tagged"),
        (2, "pending", "pending", 0, 3, "telegram:99", "re-tagged"),
        (2, "pending", "rejected", 0, 3, "telegram:99", "rejected in /review")]


def test_forget_removes_exactly_the_callers_rows(tmp_path):
    shared_drawing = encoded(drawing())

    async def go():
        core = await make_core(tmp_path)
        try:
            mine = await submit(core, ALICE, draw_face("pink", "blue", 1), "pink", "blue")
            theirs = await submit(core, BOB, draw_face("red", "aqua", 2), "red", "aqua")
            fetch = lambda: asyncio.sleep(0, shared_drawing)  # noqa: E731  both send the same drawing
            her_sketch = await core.handle(ALICE, Sketch(seed=1), upload=Upload("a.png", None, fetch))
            his_sketch = await core.handle(BOB, Sketch(seed=2), upload=Upload("b.png", None, fetch))
            her_face = await core.handle(ALICE, Waifu(seed=3))
            await vote_all(core, her_sketch.buttons.picture_id, VOTERS[:4])  # curated: a face from her drawing
            db = sqlite3.connect(tmp_path / "moebot.db")
            picture = dict(db.execute("SELECT id, picture_id FROM images").fetchall())
            for who in (ALICE, BOB):
                for p in (picture[mine], picture[theirs], his_sketch.buttons.picture_id, her_face.buttons.picture_id):
                    await core.vote(who, f"vote:{p}:up")
            before = snapshot(db, picture[mine])
            answer = await core.handle(ALICE, Forget())
            nothing = await core.handle(ALICE, Forget())
            return answer, nothing, before, picture, (her_sketch, his_sketch, her_face)
        finally:
            await closed(core)
    answer, nothing, before, picture, (her_sketch, his_sketch, her_face) = asyncio.run(go())
    assert answer.text.splitlines() == [
        "Done — I deleted:", "• 1 submission", "• 1 uploaded drawing", "• 2 pictures showing what you sent",
        "• 5 votes by others on those", "• 4 votes of yours",
        "2 training items left the training data for good (models already trained keep what they learnt). "
        "Pictures I drew for you stay: they hold nothing you sent."]
    assert nothing.text.startswith("I had nothing of yours to delete")
    db = sqlite3.connect(tmp_path / "moebot.db")
    assert snapshot(db, picture[1]) == before  # everything of Bob's is untouched (but his vote on her submission)
    assert db.execute("SELECT COUNT(*) FROM images WHERE picture_id IS NOT NULL").fetchone() == (1,)
    assert db.execute("SELECT COUNT(*) FROM uploads WHERE user_id = 1").fetchone() == (0,)
    assert db.execute("SELECT COUNT(*) FROM votes WHERE user_id = 1").fetchone() == (0,)
    kept = {r[0] for r in db.execute("SELECT id FROM pictures")}
    assert her_face.buttons.picture_id in kept and her_sketch.buttons.picture_id not in kept
    assert picture[1] not in kept and {picture[2], his_sketch.buttons.picture_id} <= kept
    files = {p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("*/*/*") if p.is_file()}
    assert {r[0] for r in db.execute("SELECT path FROM images UNION SELECT path FROM pictures UNION "
                                     "SELECT path FROM uploads")} <= files  # Bob's upload shares her file: kept
    assert len([f for f in files if f.startswith("faces/")]) == 1
    log = db.execute("SELECT image_id, new_status, actor FROM curation_log WHERE new_status = 'forgotten' "
                     "ORDER BY image_id").fetchall()
    assert log == [(1, "forgotten", "forget"), (3, "forgotten", "forget")]
    assert db.execute("SELECT COUNT(*) FROM curation_log WHERE actor = 'telegram:1'").fetchone() == (0,)
    assert db.execute("SELECT COUNT(*) FROM curation_log WHERE actor = 'a forgotten user'").fetchone() == (1,)


def snapshot(db: sqlite3.Connection, her_submission: int) -> dict:
    """Bob's rows in every table /forget touches, but his vote on Alice's submission (which goes with it)."""
    return {"images": db.execute("SELECT * FROM images WHERE user_id = 2").fetchall(),
            "uploads": db.execute("SELECT * FROM uploads WHERE user_id = 2").fetchall(),
            "pictures": db.execute("SELECT * FROM pictures WHERE user_id = 2").fetchall(),
            "votes": db.execute("SELECT * FROM votes WHERE user_id = 2 AND picture_id != ?",
                                (her_submission,)).fetchall()}
