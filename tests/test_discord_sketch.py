"""/sketch on Discord end to end: an image option resolved by discord.py, read from the (fake) CDN on loopback."""

import asyncio
import io
import sqlite3

from PIL import Image

from fakes.discord_server import APP_ID, buttons_of
from test_discord_bot import DEFERRED, callback_of, running_bot, server, stopped  # noqa: F401 (server: fixture)
from test_sketch_input import drawing, encoded


def test_sketch_with_an_attachment_and_refusals(tmp_path, server):
    async def go():
        await server.start()
        try:
            bot = await running_bot(server, tmp_path)
            sync = (await server.wait_for("PUT", f"applications/{APP_ID}/commands"))[0]
            sketch = next(c for c in sync.json if c["name"] == "sketch")
            assert [(o["name"], o["type"], o.get("required", False)) for o in sketch["options"]] == \
                [("image", 11, True), ("hair", 4, False), ("eye", 4, False), ("seed", 4, False)]
            assert "fr" in sketch["description_localizations"]

            slash = server.slash("sketch", {"hair": 7, "seed": 9}, files={"image": ("doodle.png", encoded(drawing()))})
            bot._connection.parse_interaction_create(slash)
            deferred = (await server.wait_for("POST", callback_of(server, slash)))[0]
            assert deferred.json["type"] == DEFERRED
            followup = (await server.wait_for("POST", f"webhooks/{APP_ID}/{slash['token']}"))[0]
            (filename, png), = followup.files.values()
            assert Image.open(io.BytesIO(png)).size == (2 * 66 + 2, 66 + 2)
            assert followup.json["content"].startswith("your sketch → pink hair, ")
            assert "seed 9" in followup.json["content"] and len(buttons_of(followup)) == 2

            bad = server.slash("sketch", {}, user_id=2, files={"image": ("notes.png", b"shopping list: eggs")})
            bot._connection.parse_interaction_create(bad)
            refused = (await server.wait_for("POST", f"webhooks/{APP_ID}/{bad['token']}"))[0]
            assert refused.json["content"].startswith("That file is not a picture I can read")
            assert not refused.files and not buttons_of(refused)

            gone = server.slash("sketch", {}, user_id=3, files={"image": ("lost.png", encoded(drawing()))})
            server.attachments.clear()  # the CDN lost it: a polite refusal, not an error
            bot._connection.parse_interaction_create(gone)
            lost = (await server.wait_for("POST", f"webhooks/{APP_ID}/{gone['token']}"))[0]
            assert lost.json["content"].startswith("I couldn't download your picture from Discord (404)")
            await stopped(bot)
        finally:
            await server.stop()
    asyncio.run(asyncio.wait_for(go(), 60))
    db = sqlite3.connect(tmp_path / "moebot.db")
    assert db.execute("SELECT filename FROM uploads").fetchall() == [("doodle.png",)]
    assert db.execute("SELECT kind, hair, seed, platform FROM pictures").fetchall() == [("sketch", 7, 9, "discord")]
