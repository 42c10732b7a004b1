"""Curation on Telegram end to end: votes through the fake Bot API curate a face; /review's buttons; /forget."""

import asyncio
import sqlite3

from bot.core import Who
from conftest import draw_face
from fakes.telegram_server import FakeTelegram
from test_curation import submit
from test_telegram_bot import keyboard_of, running_bot, stopped

ADMIN = 99
PHOTO = [{"file_id": "p1", "file_unique_id": "u1", "width": 64, "height": 64}]


def message_of(call, chat_id: int) -> dict:
    """The message the bot sent, as a later button press carries it."""
    return {"message_id": 5000 + len(call.params.get("caption", "")), "date": 0,
            "chat": {"id": chat_id, "type": "private"}, "photo": PHOTO, "caption": call.params.get("caption", ""),
            "reply_markup": call.params.get("reply_markup")}


def test_votes_curate_and_admins_review_through_telegram(tmp_path):
    async def go():
        server = FakeTelegram()
        await server.start()
        try:
            app, core = await running_bot(server, tmp_path, admins=(f"telegram:{ADMIN}",))
            await server.send_command("/waifu pink blue seed:3", user_id=1)
            photo = (await server.wait_for("sendPhoto"))[0]
            up = keyboard_of(photo)[0][0][1]
            shown = message_of(photo, 1)
            for voter in (2, 3, 4, 5):  # four 👍 and no 👎: curated
                await server.press(shown, up, user_id=voter, name=f"voter{voter}")
            edits = await server.wait_for("editMessageReplyMarkup", count=4)
            assert keyboard_of(edits[-1])[0][0][0] == "👍 4"
            db = sqlite3.connect(tmp_path / "moebot.db")
            assert db.execute("SELECT status, hair, eye, source FROM images").fetchall() == \
                [("curated", 7, 9, "chat:face")]

            item = await submit(core, Who("telegram", "1", "Alice", "1"), draw_face("red", "aqua", 2), "red", "aqua")
            await server.send_command("/review", user_id=1)
            refused = (await server.wait_for("sendMessage"))[-1]
            assert refused.params["text"] == "Sorry, only the bot's admins can use /review."
            await server.send_command("/review", user_id=ADMIN, name="Ada")
            header = (await server.wait_for("sendMessage", count=2))[-1]
            assert header.params["text"] == "The 1 oldest items waiting for review:"
            card = (await server.wait_for("sendPhoto", count=2))[-1]
            assert card.params["caption"].startswith(f"Item #{item} · red hair, aqua eyes · pending")
            assert keyboard_of(card) == [[("✅ approve", f"rev:{item}:ok"), ("❌ reject", f"rev:{item}:no"),
                                          ("🏷 re-tag", f"rev:{item}:tag")]]
            review = message_of(card, ADMIN)

            await server.press(review, f"rev:{item}:ok", user_id=1)  # not an admin: told so, nothing changes
            answer = (await server.wait_for("answerCallbackQuery", count=5))[-1]
            assert answer.params["text"] == "Sorry, only the bot's admins can approve, reject or re-tag items."
            await server.press(review, f"rev:{item}:tag", user_id=ADMIN, name="Ada")
            tags = (await server.wait_for("sendMessage", count=3))[-1]
            assert tags.params["text"].startswith(f"Tags of item #{item}: red hair, aqua eyes")
            assert len(keyboard_of(tags)) == 5 and ("✓ red hair", f"tag:{item}:h:5") in keyboard_of(tags)[1]
            tag_message = {**message_of(tags, ADMIN), "text": tags.params["text"]}
            del tag_message["photo"], tag_message["caption"]
            await server.press(tag_message, f"tag:{item}:h:7", user_id=ADMIN, name="Ada")  # pink hair
            retagged = (await server.wait_for("editMessageText"))[0]
            assert retagged.params["text"].startswith(f"Tags of item #{item}: pink hair, aqua eyes")
            assert ("✓ pink hair", f"tag:{item}:h:7") in keyboard_of(retagged)[1]
            await server.press(review, f"rev:{item}:ok", user_id=ADMIN, name="Ada")
            approved = (await server.wait_for("editMessageCaption"))[0]
            assert approved.params["caption"].endswith("✅ approved by Ada") and "reply_markup" not in approved.params
            assert (await server.wait_for("answerCallbackQuery", count=8))[-1].params["text"] == \
                f"Item #{item} approved."
            assert db.execute("SELECT status, hair, eye FROM images WHERE id = ?", (item,)).fetchone() == \
                ("curated", 7, 4)

            await server.send_command("/forget", user_id=1)
            forgot = (await server.wait_for("sendMessage", count=4))[-1]
            assert forgot.params["text"].splitlines()[:2] == ["Done — I deleted:", "• 1 submission"]
            assert db.execute("SELECT status FROM images ORDER BY id").fetchall() == [("curated",)]
            await stopped(app, core)
        finally:
            await server.stop()
    asyncio.run(asyncio.wait_for(go(), 60))
