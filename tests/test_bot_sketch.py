"""/sketch in the platform-free core: reading the upload, keeping it, painting it, and every refusal."""

import asyncio
import io
import sqlite3

from PIL import Image

from bot.commands import CommandError, Sketch, Waifu, parse
from bot.core import Upload, Who
from fakes.bot_parts import closed, make_core
from generator.sampler import sketch_tags
from generator.tags import EYE_COLORS, HAIR_COLORS, eye_index, hair_index
from test_sketch_input import drawing, encoded

ALICE = Who("telegram", "1", "alice", "100")


def upload(data: bytes, name: str = "drawing.png", size: int | None = None) -> Upload:
    async def fetch() -> bytes:
        return data
    return Upload(name, size, fetch)


def test_parse_sketch_takes_colours_and_a_seed():
    assert parse("/sketch pink blue seed:7") == Sketch(hair_index("pink"), eye_index("blue"), 7)
    assert parse("/sketch@moe_bot") == Sketch()
    try:
        parse("/sketch pnk")
    except CommandError as e:
        assert str(e) == "unknown hair colour 'pnk' — did you mean pink?"
    else:
        raise AssertionError("a typo must be refused")


def test_sketch_shows_the_drawing_beside_the_face_and_keeps_the_upload(tmp_path):
    png = encoded(drawing())

    async def go():
        core = await make_core(tmp_path)
        try:
            first = await core.handle(ALICE, Sketch(hair_index("pink"), eye_index("blue"), 42), upload=upload(png))
            again = await core.handle(ALICE, Sketch(hair_index("pink"), eye_index("blue"), 42), upload=upload(png))
            from_seed = await core.handle(ALICE, Sketch(seed=5), upload=upload(png, "other.png"))
            return first, again, from_seed
        finally:
            await closed(core)

    first, again, from_seed = asyncio.run(go())
    assert not first.refusal and first.buttons is not None
    assert first.text.splitlines()[0] == "your sketch → pink hair, blue eyes · seed 42 · model sketch-v1"
    assert first.text.splitlines()[1] == "Again: /sketch pink blue seed:42 with the same drawing"
    img = Image.open(io.BytesIO(first.files[0].data))
    assert img.size == (2 * 66 + 2, 66 + 2)  # the sketch and the face, 64 px each at the test's display size
    left = img.crop((2, 2, 66, 66)).convert("L")
    assert left.getpixel((0, 0)) == 255 and min(left.getdata()) == 0  # the drawing as read: black on white
    assert first.files[0].data == again.files[0].data  # same drawing, colours and seed: the same picture
    hair, eye = sketch_tags(5)
    assert from_seed.text.splitlines()[1] == f"Again: /sketch {HAIR_COLORS[hair]} {EYE_COLORS[eye]} seed:5 with the " \
        "same drawing"

    db = sqlite3.connect(tmp_path / "moebot.db")
    uploads = db.execute("SELECT id, path, filename, platform, chat_id FROM uploads ORDER BY id").fetchall()
    assert [u[2] for u in uploads] == ["drawing.png", "drawing.png", "other.png"]
    assert (tmp_path / uploads[0][1]).read_bytes() == png and uploads[0][1].endswith(".png")
    pictures = db.execute("SELECT kind, hair, eye, seed, upload_id, model_version FROM pictures ORDER BY id").fetchall()
    assert pictures[0] == ("sketch", hair_index("pink"), eye_index("blue"), 42, uploads[0][0], "sketch-v1")
    assert pictures[2][1:4] == (hair, eye, 5)


def test_refusals_cost_no_cooldown_and_keep_nothing(tmp_path):
    big = encoded(drawing())

    async def go():
        core = await make_core(tmp_path, cooldown_s=60)
        fetched = []

        async def fetch() -> bytes:
            fetched.append(1)
            return big
        try:
            bare = await core.handle(ALICE, Sketch())
            text = await core.handle(ALICE, Sketch(), upload=upload(b"just some text", "notes.png"))
            blank = await core.handle(ALICE, Sketch(), upload=upload(encoded(Image.new("L", (300, 300), 255))))
            huge = await core.handle(ALICE, Sketch(), upload=Upload("huge.png", 50 * 2**20, fetch))
            ok = await core.handle(ALICE, Sketch(seed=1), upload=upload(big))  # none of the above cost a cooldown
            slow = await core.handle(ALICE, Waifu())
            return bare, text, blank, huge, ok, slow, fetched
        finally:
            await closed(core)

    bare, text, blank, huge, ok, slow, fetched = asyncio.run(go())
    assert bare.refusal and "caption /sketch" in bare.text and not bare.files
    assert text.refusal and text.text.startswith("That file is not a picture I can read")
    assert blank.refusal and "looks blank" in blank.text
    assert huge.refusal and huge.text.startswith("That file is 50.0 MB") and not fetched  # never downloaded
    assert not ok.refusal and slow.refusal and slow.text.startswith("Slow down")
    db = sqlite3.connect(tmp_path / "moebot.db")
    assert db.execute("SELECT COUNT(*) FROM uploads").fetchone()[0] == 1


def test_animated_upload_is_painted_from_its_first_frame_and_says_so(tmp_path):
    buf = io.BytesIO()
    drawing().convert("P").save(buf, format="GIF", save_all=True, append_images=[Image.new("P", (600, 400), 255)])

    async def go():
        core = await make_core(tmp_path)
        try:
            return await core.handle(ALICE, Sketch(seed=3), upload=upload(buf.getvalue(), "moving.gif"))
        finally:
            await closed(core)

    reply = asyncio.run(go())
    assert not reply.refusal and "Your image is animated; I used its first frame." in reply.text
    db = sqlite3.connect(tmp_path / "moebot.db")
    assert db.execute("SELECT path FROM uploads").fetchone()[0].endswith(".gif")


def test_without_a_sketch_model_sketch_is_refused_and_faces_still_work(tmp_path):
    async def go():
        core = await make_core(tmp_path, sketch_weights=tmp_path / "missing.safetensors")
        try:
            return (await core.handle(ALICE, Sketch(), upload=upload(encoded(drawing())))), \
                (await core.handle(ALICE, Waifu()))
        finally:
            await closed(core)

    sketch, face = asyncio.run(go())
    assert sketch.refusal and "no sketch model is loaded" in sketch.text
    assert not face.refusal and face.files
