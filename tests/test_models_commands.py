"""/retrain, /models, /rollback and the admins' message when a run ends, with the real Retrainer."""

import asyncio
import io
import shutil

from PIL import Image

from bot.commands import Rollback, Waifu
from bot.core import STORAGE_FULL, Who
from bot.retraining import RunOutcome
from fakes.bot_parts import closed, database, make_core, tiny_weights
from fakes.telegram_server import FakeTelegram
from test_bot_core import fill, small_disk  # noqa: F401  (the fixture)
from test_discord_bot import server  # noqa: F401  (the fixture)
from test_discord_bot import EPHEMERAL, callback_of
from test_discord_bot import running_bot as running_discord
from test_discord_bot import stopped as stopped_discord
from test_retraining import curate, make_retrainer
from test_telegram_bot import running_bot, stopped
from training import registry

ADMIN = 99


def test_admins_retrain_see_models_and_roll_back_on_telegram(tmp_path, face_data_dir, tiny_generator_file):
    data_dir = tmp_path / "data"
    shutil.copytree(face_data_dir, data_dir)
    curate(data_dir, hair=0, n=4)

    async def go():
        telegram = FakeTelegram()
        await telegram.start()
        async with make_retrainer(data_dir, tiny_generator_file) as retrainer:
            app, core = await running_bot(telegram, data_dir, admins=(f"telegram:{ADMIN}",), retrainer=retrainer)
            try:
                texts = []

                async def say(text: str, user_id: int) -> str:
                    await telegram.send_command(text, user_id=user_id)
                    texts.append((await telegram.wait_for("sendMessage", count=len(texts) + 1))[-1].params["text"])
                    return texts[-1]
                assert await say("/retrain", 1) == "Sorry, only the bot's admins can use /retrain."
                assert (await say("/retrain", ADMIN)).startswith("Started retraining run ft-")
                outcome = await retrainer.wait()
                told = (await telegram.wait_for("sendPhoto"))[0]  # the admin's private chat: their user id
                assert told.params["chat_id"] == ADMIN and told.params["caption"] == outcome.text[:1024]
                assert told.file("photo") == outcome.grid.read_bytes()

                await telegram.send_command("/models", user_id=1)  # everyone may look
                models = (await telegram.wait_for("sendPhoto", count=2))[-1]
                lines = models.params["caption"].splitlines()
                assert lines[0] == "Model versions, newest first:"
                assert lines[1].startswith(f"{outcome.version} · active (from ") and "hair " in lines[1]
                assert lines[-1] == f"Grids, left to right: {outcome.version} (each: its parent's faces | its own)"
                w, h = Image.open(outcome.grid).size
                assert Image.open(io.BytesIO(models.file("photo"))).size == (w + 4, h + 4)  # one grid, framed

                assert (await say("/rollback", ADMIN)).startswith("Rolled back: ")
                assert await say("/rollback nonsense-1", ADMIN) == "I can't roll back: there is no model 'nonsense-1'."
                assert await say("/rollback $$$", ADMIN) == "'$$$' is not a model version; /models lists them"
            finally:
                await stopped(app, core)
                await telegram.stop()
    asyncio.run(asyncio.wait_for(go(), 300))


def test_models_commands_on_discord_and_the_admins_dm(tmp_path, server, tiny_generator_file):  # noqa: F811
    grid = tmp_path / "grid.png"
    Image.new("RGB", (8, 4), "white").save(grid)

    async def go():
        await server.start()
        try:
            async with make_retrainer(tmp_path, tiny_generator_file) as retrainer:
                bot = await running_discord(server, tmp_path, admins=(f"discord:{ADMIN}", "telegram:5"),
                                            retrainer=retrainer)
                answers = []
                for name, options, user in (("models", {}, 1), ("retrain", {}, 1), ("rollback", {}, ADMIN)):
                    slash = server.slash(name, options, user_id=user)
                    bot._connection.parse_interaction_create(slash)
                    answers.append((await server.wait_for("POST", callback_of(server, slash)))[0].json["data"])
                await bot.tell_admins(RunOutcome("ft-1", True, "no worse", "Run ft-1: promoted", grid))
                dm = (await server.wait_for("POST", "channels/8099/messages"))[0]
                await stopped_discord(bot)
                return answers, dm
        finally:
            await server.stop()
    (models, retrain, rollback), dm = asyncio.run(go())
    assert models["content"].startswith("Model versions, newest first:\ntiny") and " · active" in models["content"]
    assert retrain["flags"] == EPHEMERAL and retrain["content"] == "Sorry, only the bot's admins can use /retrain."
    assert rollback["content"] == "I can't roll back: there is no earlier model."
    assert dm.json["content"] == "Run ft-1: promoted" and [n for n, _ in dm.files.values()] == ["ft-1.png"]
    assert server.of("POST", "users/@me/channels")[0].json == {"recipient_id": ADMIN}


def test_the_picture_right_after_a_rollback_is_drawn_by_the_model_rolled_back_to(tmp_path):
    first = tiny_weights(tmp_path / "first.safetensors", seed=1, version="first-v1")
    second = tiny_weights(tmp_path / "second.safetensors", seed=2, version="second-v1")

    async def served():
        async with database(tmp_path) as db:
            for version, weights in (("first-v1", first), ("second-v1", second)):  # first served, then second
                await registry.ensure_active(db, version, weights)
    asyncio.run(served())
    admin = Who("telegram", str(ADMIN), "Ada", str(ADMIN))

    async def go():
        async with make_retrainer(tmp_path, second) as retrainer:
            core = await make_core(tmp_path, weights=second, admins=(admin.user_key,), retrainer=retrainer)
            try:
                before = await core.handle(admin, Waifu(seed=1))
                told = await core.handle(admin, Rollback())
                return before.text, told.text, (await core.handle(admin, Waifu(seed=1))).text  # no pause between
            finally:
                await closed(core)

    before, told, after = asyncio.run(go())
    assert "model second-v1" in before and "model first-v1" in after
    assert told == "Rolled back: first-v1 draws again."


def test_a_full_disk_is_told_to_the_admins_in_chat_at_most_once_an_hour(small_disk, tiny_generator_file):
    """A write refused for want of space reaches the admins the way a retraining run's end does (a private chat),
    and more failures within the hour add no more messages."""
    async def go():
        telegram = FakeTelegram()
        await telegram.start()
        async with make_retrainer(small_disk, tiny_generator_file) as retrainer:
            app, core = await running_bot(telegram, small_disk, admins=(f"telegram:{ADMIN}",), retrainer=retrainer)
            try:
                filler = fill(small_disk)
                for n in (1, 2):  # two drawings the full disk cannot store
                    await telegram.send_command("/waifu", user_id=1)
                    while sum(c.params["chat_id"] != ADMIN for c in telegram.of("sendMessage")) < n:
                        await telegram.wait_for("sendMessage", count=len(telegram.of("sendMessage")) + 1)
                while not any(c.params["chat_id"] == ADMIN for c in telegram.of("sendMessage")):
                    await telegram.wait_for("sendMessage", count=len(telegram.of("sendMessage")) + 1)
                told_again = await retrainer.warn_admins("disk-full", "the disk is still full")
                filler.unlink()
                return telegram.of("sendMessage"), told_again
            finally:
                await stopped(app, core)
                await telegram.stop()
    sent, told_again = asyncio.run(asyncio.wait_for(go(), 120))
    to_admin = [c.params["text"] for c in sent if c.params["chat_id"] == ADMIN]
    assert len(to_admin) == 1 and to_admin[0].startswith("⚠ The bot's disk is full") and str(small_disk) in to_admin[0]
    assert [c.params["text"] for c in sent if c.params["chat_id"] != ADMIN] == [STORAGE_FULL] * 2
    assert not told_again  # within the hour: not again
