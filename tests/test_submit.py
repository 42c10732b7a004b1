"""/submit: a picture's faces cut out, checked against the training set, tagged, queued, voted on and corrected."""

import asyncio
import io
import shutil
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.commands import Submit, Waifu
from bot.core import Upload, Who
from bot.handlers import sketches
from bot.handlers.sketches import SLOW_UPLOAD, SUBMIT_TIPS
from conftest import draw_face
from fakes.bot_parts import closed, make_core
from fakes.telegram_server import FakeTelegram
from generator import face_crop
from generator.face_crop import NOTHING_DRAWN, crop_faces
from generator.tags import HAIR_COLORS, eye_index, hair_index
from test_sketch_input import encoded
from test_telegram_bot import keyboard_of, running_bot, stopped
from training.tag_predictor import complete_tags, load_tagger

ALICE = Who("telegram", "1", "alice", "1")


@pytest.fixture(scope="module")
def illustration() -> Image.Image:
    """A face the bundled generator drew, pasted at 128 px on a sky-like backdrop: a picture the detector reads."""
    from generator.images import to_pil
    from generator.sampler import FaceSampler

    face = to_pil(FaceSampler.load(device="cpu").faces([7], [9], [0])[0])  # pink hair, blue eyes
    g = np.linspace(180, 240, 320 * 200).reshape(200, 320)
    picture = Image.fromarray(np.stack([g, g, np.full_like(g, 230)], -1).astype(np.uint8))
    picture.paste(face.resize((128, 128), Image.Resampling.LANCZOS), (150, 40))
    return picture


def sent(data: bytes, name: str = "picture.png") -> Upload:
    return Upload(name, len(data), lambda: asyncio.sleep(0, data))


@pytest.fixture
def data_dir(face_data_dir, tmp_path) -> Path:
    """A copy of the imported test faces, so submissions meet a training set."""
    return Path(shutil.copytree(face_data_dir, tmp_path / "data", ignore=shutil.ignore_patterns("cache")))


def test_submit_crops_tags_and_refuses_what_the_dataset_has(data_dir, illustration):
    png = encoded(illustration)
    db = sqlite3.connect(data_dir / "moebot.db")
    imported_path, imported_id = db.execute("SELECT path, id FROM images ORDER BY id LIMIT 1").fetchone()
    imported = Image.open(data_dir / imported_path).resize((128, 128), Image.Resampling.LANCZOS)

    async def go():
        core = await make_core(data_dir)
        try:
            out = {"found": await core.handle(ALICE, Submit(hair_index("pink")), upload=sent(png))}
            out["again"] = await core.handle(ALICE, Submit(), upload=sent(png))
            out["jpeg"] = await core.handle(ALICE, Submit(), upload=sent(encoded(illustration, "JPEG"), "a.jpg"))
            out["imported"] = await core.handle(ALICE, Submit(), upload=sent(encoded(imported)))
            out["cartoon"] = await core.handle(ALICE, Submit(None, eye_index("red")),
                                               upload=sent(encoded(draw_face("blue", "red", 77, size=128))))
            frames = [draw_face("green", "purple", 91, size=128), draw_face("green", "purple", 92, size=128)]
            gif = io.BytesIO()
            frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
            out["animated"] = await core.handle(ALICE, Submit(), upload=sent(gif.getvalue(), "a.gif"))
            out["not_a_picture"] = await core.handle(ALICE, Submit(), upload=sent(b"%PDF-1.4", "cv.pdf"))
            out["bare"] = await core.handle(ALICE, Submit())
            return out
        finally:
            await closed(core)
    out = asyncio.run(go())
    found = out["found"]
    crop = crop_faces(illustration).crops[0].image
    guess = complete_tags(load_tagger(), crop, hair_index("pink"))
    item = db.execute("SELECT id, status, hair, eye, source, user_id, path, picture_id FROM images "
                      "WHERE source LIKE 'submit:%' ORDER BY id").fetchall()
    cartoon_hair = item[1][2]  # read by the classifier
    assert [r[1:6] for r in item] == [("pending", 7, guess.eye.index, "submit:telegram", 1),
                                      ("pending", cartoon_hair, 8, "submit:telegram", 1)]
    first_id = item[0][0]
    assert found.text.startswith(f"Submission #{first_id}: pink hair, ") and "I think: " in found.text
    assert "my readings: eyes: " in found.text and "No face found" not in found.text
    assert np.array_equal(np.asarray(Image.open(data_dir / item[0][6])), np.asarray(crop))  # the face, not the sky
    assert Image.open(io.BytesIO(found.files[0].data)).size == (64, 64) and found.buttons.picture_id == item[0][7]
    card, = found.more
    assert card.text.startswith(f"Tags of item #{first_id}: pink hair") and len(card.actions) == 5
    for refused in ("again", "jpeg"):
        assert out[refused].refusal
        assert out[refused].text.startswith(f"That face is already in the training set (item #{first_id}")
    assert out["imported"].text.startswith(f"(No face found — used the whole picture.)\nThat face is already in "
                                           f"the training set (item #{imported_id}")
    cartoon = out["cartoon"]
    assert cartoon.text.endswith("(No face found — used the whole picture.)") and not cartoon.refusal
    assert f"I think: {HAIR_COLORS[cartoon_hair]} hair" in cartoon.text
    assert "\n(Your image is animated; I used its first frame.)\n" in out["animated"].text  # a cartoon like others
    assert out["not_a_picture"].text.startswith("That file is not a picture I can read")
    assert out["bare"].refusal and out["bare"].text.startswith("Send me a picture as a photo")
    assert db.execute("SELECT COUNT(*), COUNT(DISTINCT sha256) FROM uploads").fetchone() == (2, 2)
    assert db.execute("SELECT kind, upload_id IS NOT NULL FROM pictures").fetchall() == [("submission", 1)] * 2


def test_submit_on_telegram_then_correct_and_vote(data_dir, illustration):
    async def go():
        server = FakeTelegram()
        await server.start()
        try:
            app, core = await running_bot(server, data_dir)
            await server.send_picture(encoded(illustration, "JPEG"), caption="/submit pink blue", user_id=1)
            photo = (await server.wait_for("sendPhoto"))[0]
            card = (await server.wait_for("sendMessage"))[0]
            assert photo.params["caption"].startswith("Submission #") and "pink hair, blue eyes" in photo.params["caption"]
            assert "I think" not in photo.params["caption"]  # both colours were given
            item = int(photo.params["caption"].split("#")[1].split(":")[0])
            assert card.params["text"].startswith(f"Tags of item #{item}: pink hair, blue eyes")
            tag_message = {"message_id": 7001, "date": 0, "chat": {"id": 1, "type": "private"},
                           "text": card.params["text"], "reply_markup": card.params["reply_markup"]}
            await server.press(tag_message, f"tag:{item}:e:8", user_id=2, name="Bob")  # not his
            refused = (await server.wait_for("answerCallbackQuery"))[0]
            assert refused.params["text"] == "Only the person who sent it, or an admin, can change its tags."
            await server.press(tag_message, f"tag:{item}:e:8", user_id=1)  # the sender: red eyes
            edit = (await server.wait_for("editMessageText"))[0]
            assert edit.params["text"].startswith(f"Tags of item #{item}: pink hair, red eyes")
            assert ("✓ red eyes", f"tag:{item}:e:8") in keyboard_of(edit)[4]

            shown = {"message_id": 7002, "date": 0, "chat": {"id": 1, "type": "private"},
                     "photo": [{"file_id": "p", "file_unique_id": "p", "width": 64, "height": 64}]}
            up = keyboard_of(photo)[0][0][1]
            for voter in (3, 4, 5, 6):
                await server.press(shown, up, user_id=voter)
            await server.wait_for("editMessageReplyMarkup", count=4)
            await stopped(app, core)
        finally:
            await server.stop()
        return item
    item = asyncio.run(asyncio.wait_for(go(), 60))
    db = sqlite3.connect(data_dir / "moebot.db")
    assert db.execute("SELECT status, hair, eye FROM images WHERE id = ?", (item,)).fetchone() == ("curated", 7, 8)
    assert [r[0] for r in db.execute("SELECT actor FROM curation_log WHERE image_id = ? ORDER BY id", (item,))] == \
        ["telegram:1", "telegram:1", "votes"]


def test_pictures_with_nothing_drawn_are_refused_and_cost_no_turn(data_dir):
    rng = np.random.default_rng(1)
    blank = encoded(Image.new("RGB", (640, 480), "white"))
    noise = encoded(Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)))

    async def go():
        core = await make_core(data_dir, cooldown_s=3600)  # a turn taken would refuse the next one
        try:
            return [await core.handle(ALICE, Submit(), upload=sent(data)) for data in (blank, noise)]
        finally:
            await closed(core)
    for reply in asyncio.run(go()):
        assert reply.refusal and reply.text == f"{NOTHING_DRAWN}\n{SUBMIT_TIPS}" and not reply.files
    db = sqlite3.connect(data_dir / "moebot.db")
    assert db.execute("SELECT COUNT(*) FROM images WHERE source LIKE 'submit:%'").fetchone() == (0,)
    assert db.execute("SELECT COUNT(*) FROM uploads").fetchone() == (0,)


def test_uploads_that_never_finish_decoding_are_answered_and_block_nobody(data_dir, monkeypatch):
    """Six hostile uploads whose decoding never ends (as EPS through Ghostscript once did) used up the shared
    thread pool, and /waifu failed for everyone. Uploads decode on threads of their own, under a time limit."""
    release = threading.Event()

    def stuck(*args, **kwargs):
        release.wait(60)
        raise AssertionError("released")
    monkeypatch.setattr(face_crop, "decode_upload", stuck)
    monkeypatch.setattr(sketches, "DECODE_TIMEOUT_S", 0.5)
    users = [Who("telegram", str(10 + i), f"u{i}", str(10 + i)) for i in range(6)]

    async def go():
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(4))  # fewer threads than stuck files
        core = await make_core(data_dir)
        try:
            answers = await asyncio.gather(*(core.handle(u, Submit(), upload=sent(b"hostile")) for u in users))
            return answers, await core.handle(ALICE, Waifu(seed=1))
        finally:
            await closed(core)
    try:
        answers, face = asyncio.run(asyncio.wait_for(go(), 30))
    finally:
        release.set()
    assert all(a.refusal and a.text == f"{SLOW_UPLOAD}\n{SUBMIT_TIPS}" for a in answers)
    assert not face.refusal and face.files[0].filename.endswith(".png")
