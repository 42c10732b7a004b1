"""Curation on Discord end to end: /submit, /review's persistent buttons, the private tag card, /forget."""

import asyncio
import sqlite3

from bot.core import Who
from conftest import draw_face
from fakes.discord_server import APP_ID, buttons_of
from test_curation import submit
from test_discord_bot import server  # noqa: F401  (the fixture)
from test_discord_bot import DEFERRED, EPHEMERAL, MESSAGE, UPDATE, callback_of, running_bot, stopped
from test_sketch_input import encoded
from test_submit import illustration  # noqa: F401

ADMIN = 99


def test_review_buttons_tag_card_and_forget(tmp_path, server):  # noqa: F811
    async def go():
        await server.start()
        try:
            bot = await running_bot(server, tmp_path, admins=(f"discord:{ADMIN}",))
            sync = (await server.wait_for("PUT", f"applications/{APP_ID}/commands"))[0]
            assert {"review", "forget", "retrain", "models", "rollback"} <= {c["name"] for c in sync.json}
            item = await submit(bot.core, Who("discord", "1", "User 1", "50"), draw_face("red", "aqua", 2), "red",
                                "aqua")

            slash = server.slash("review", {}, user_id=ADMIN)
            bot._connection.parse_interaction_create(slash)
            header = (await server.wait_for("POST", callback_of(server, slash)))[0]
            assert header.json["type"] == MESSAGE
            assert header.json["data"]["content"] == "The 1 oldest items waiting for review:"
            card = (await server.wait_for("POST", f"webhooks/{APP_ID}/{slash['token']}"))[0]
            assert card.json["content"].startswith(f"Item #{item} · red hair, aqua eyes · pending")
            assert [name for name, _ in card.files.values()] == [f"item-{item}.png"]
            assert buttons_of(card) == [("✅ approve", f"rev:{item}:ok"), ("❌ reject", f"rev:{item}:no"),
                                        ("🏷 re-tag", f"rev:{item}:tag")]
            await stopped(bot)

            bot = await running_bot(server, tmp_path, admins=(f"discord:{ADMIN}",))  # buttons outlive a restart
            message = server.message(card.json, card.files)
            press = server.button(f"rev:{item}:ok", message, user_id=1)  # not an admin
            bot._connection.parse_interaction_create(press)
            refused = (await server.wait_for("POST", callback_of(server, press)))[0]
            assert refused.json["data"]["flags"] == EPHEMERAL
            assert refused.json["data"]["content"] == "Sorry, only the bot's admins can approve, reject or re-tag items."

            press = server.button(f"rev:{item}:tag", message, user_id=ADMIN)
            bot._connection.parse_interaction_create(press)
            tags = (await server.wait_for("POST", callback_of(server, press)))[0]
            assert tags.json["type"] == MESSAGE and tags.json["data"]["flags"] == EPHEMERAL
            rows = tags.json["data"]["components"]
            assert len(rows) == 5 and sum(len(r["components"]) for r in rows) == 22
            tag_message = server.message(tags.json["data"], {})
            press = server.button(f"tag:{item}:e:9", tag_message, user_id=ADMIN)  # blue eyes
            bot._connection.parse_interaction_create(press)
            retagged = (await server.wait_for("POST", callback_of(server, press)))[0]
            assert retagged.json["type"] == UPDATE
            assert retagged.json["data"]["content"].startswith(f"Tags of item #{item}: red hair, blue eyes")
            assert ("✓ blue eyes", f"tag:{item}:e:9") in buttons_of(retagged)

            press = server.button(f"rev:{item}:no", message, user_id=ADMIN)
            bot._connection.parse_interaction_create(press)
            rejected = (await server.wait_for("POST", callback_of(server, press)))[0]
            assert rejected.json["type"] == UPDATE and rejected.json["data"]["components"] == []
            assert rejected.json["data"]["content"].endswith("❌ rejected by User 99")
            db = sqlite3.connect(tmp_path / "moebot.db")
            assert db.execute("SELECT status, hair, eye FROM images").fetchall() == [("rejected", 5, 9)]

            forget = server.slash("forget", {}, user_id=1)
            bot._connection.parse_interaction_create(forget)
            answer = (await server.wait_for("POST", callback_of(server, forget)))[0]
            assert answer.json["data"]["content"].splitlines()[:2] == ["Done — I deleted:", "• 1 submission"]
            assert db.execute("SELECT COUNT(*) FROM images").fetchone() == (0,)
            await stopped(bot)
        finally:
            await server.stop()
    asyncio.run(asyncio.wait_for(go(), 60))


def test_submit_answers_with_the_face_and_its_tag_card(tmp_path, server, illustration):  # noqa: F811
    async def go():
        await server.start()
        try:
            bot = await running_bot(server, tmp_path)
            slash = server.slash("submit", {"hair": 7}, user_id=1, files={"image": ("art.png", encoded(illustration))})
            bot._connection.parse_interaction_create(slash)
            deferred = (await server.wait_for("POST", callback_of(server, slash)))[0]
            assert deferred.json["type"] == DEFERRED
            face, card = await server.wait_for("POST", f"webhooks/{APP_ID}/{slash['token']}", count=2)
            assert face.json["content"].startswith("Submission #1: pink hair, ")
            assert [label for label, _ in buttons_of(face)] == ["👍 0", "👎 0"]
            assert card.json["content"].startswith("Tags of item #1: pink hair") and len(buttons_of(card)) == 22
            await stopped(bot)
        finally:
            await server.stop()
    asyncio.run(asyncio.wait_for(go(), 60))
