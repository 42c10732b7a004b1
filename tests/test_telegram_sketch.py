"""/sketch on Telegram end to end: pictures sent with the caption, or replied to, fetched over getFile."""

import asyncio
import io
import sqlite3

from PIL import Image

from fakes.telegram_server import FakeTelegram
from test_sketch_input import drawing, encoded
from test_telegram_bot import keyboard_of, running_bot, stopped


def test_sketch_by_caption_by_reply_and_refusals(tmp_path):
    png = encoded(drawing())

    async def go():
        server = FakeTelegram()
        await server.start()
        try:
            app, core = await running_bot(server, tmp_path)
            await server.send_picture(encoded(drawing().convert("RGB"), "JPEG"), caption="/sketch pink blue seed:7")
            photo = (await server.wait_for("sendPhoto"))[0]
            assert photo.params["caption"].startswith("your sketch → pink hair, blue eyes · seed 7")
            assert Image.open(io.BytesIO(photo.file("photo"))).size == (2 * 66 + 2, 66 + 2)
            assert [label for label, _ in keyboard_of(photo)[0]] == ["👍 0", "👎 0"]
            assert [c.params["file_id"] for c in server.of("getFile")] == ["f1"]  # the largest size, not the thumb

            sent = await server.send_picture(png, as_document="my drawing.png", user_id=2)  # no caption: ignored
            await server.send_command("/sketch blonde", user_id=2, reply_to=sent)
            second = (await server.wait_for("sendPhoto", count=2))[-1]
            assert "blonde hair" in second.params["caption"] and second.params["chat_id"] == 2

            await server.send_command("/sketch", user_id=3)
            howto = (await server.wait_for("sendMessage"))[-1]
            assert "caption /sketch" in howto.params["text"] and "reply /sketch" in howto.params["text"]
            await server.send_picture(b"%PDF-1.4 not a picture", caption="/sketch", as_document="cv.pdf", user_id=3)
            refused = (await server.wait_for("sendMessage", count=2))[-1]
            assert refused.params["text"].startswith("That file is not a picture I can read")
            await server.send_picture(png, caption="/sketch@other_bot", user_id=3)  # another bot's command
            await server.send_picture(encoded(Image.new("L", (1, 1))), caption="/sketch@moe_bot", user_id=3)
            tiny = (await server.wait_for("sendMessage", count=3))[-1]
            assert tiny.params["text"].startswith("That image is only 1x1 pixels")
            await server.send_picture(b"\0\0\0\x18ftypmp42", caption="/sketch", as_animation=True, user_id=4)
            gif = (await server.wait_for("sendMessage", count=4))[-1]
            assert gif.params["text"].startswith("Telegram sends GIFs as videos, which I can't read")
            await asyncio.sleep(0.3)
            assert len(server.of("sendMessage")) == 4 and len(server.of("sendPhoto")) == 2
            await stopped(app, core)
        finally:
            await server.stop()
    asyncio.run(asyncio.wait_for(go(), 60))
    db = sqlite3.connect(tmp_path / "moebot.db")
    assert db.execute("SELECT filename, path LIKE '%.jpg' FROM uploads ORDER BY id").fetchall() == \
        [("photo.jpg", 1), ("my drawing.png", 0)]
    assert db.execute("SELECT kind, upload_id FROM pictures ORDER BY id").fetchall() == [("sketch", 1), ("sketch", 2)]
