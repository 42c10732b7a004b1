"""Retraining end to end through the Telegram fake server: votes curate faces, a scheduled run trains in a
child process and is promoted, the next /waifu is drawn by it; a forced-worse run is rejected while the
new model keeps serving; a killed run leaves the bot answering and the next run completes; /rollback."""

import asyncio
import dataclasses
import os
import shutil
import signal
import sqlite3

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.config import TelegramConfig
from bot.curation import CurationRules
from bot.telegram_adapter import build_application, start, stop
from fakes.bot_parts import closed, make_core
from fakes.telegram_server import FakeTelegram
from generator.active_model import follow_promotions
from generator.weights import BUNDLED_GENERATOR, read_metadata, weights_version
from test_retraining import RUIN, add_128_px_faces, make_retrainer
from test_telegram_bot import keyboard_of
from test_telegram_curation import message_of

ADMIN = 99
BUNDLED = weights_version(BUNDLED_GENERATOR, read_metadata(BUNDLED_GENERATOR))


def test_votes_schedule_gate_promotion_rejection_kill_and_rollback(tmp_path, face_data_dir):
    data_dir = tmp_path / "data"
    shutil.copytree(face_data_dir, data_dir)
    add_128_px_faces(data_dir)  # the bundled model draws 128 px faces and fine-tunes on them
    serving = BUNDLED_GENERATOR  # a good model, which a ruinous run is sure to make worse

    async def go():
        server = FakeTelegram()
        await server.start()
        async with make_retrainer(data_dir, serving, every_s=0.5, min_new=3, steps=4, d_warmup=1) as retrainer:
            core = await make_core(data_dir, weights=serving, admins=(f"telegram:{ADMIN}",), retrainer=retrainer,
                                   curation=CurationRules(min_voters=2, curate_above=0.3, reject_below=0.1))
            cfg = TelegramConfig(base_url=server.base_url, base_file_url=server.base_file_url, poll_timeout_s=1)
            app = build_application(core, cfg, "1:RETRAIN")
            await start(app, cfg)
            follower = asyncio.create_task(follow_promotions(core.generator, data_dir, every=0.1))
            scheduler = AsyncIOScheduler()
            scheduler.start()
            db = sqlite3.connect(data_dir / "moebot.db")

            async def waifu(text: str) -> str:
                before = len(server.of("sendPhoto"))
                await server.send_command(text, user_id=1)
                return (await server.wait_for("sendPhoto", count=before + 1, timeout=30))[-1].params["caption"]

            async def said(text: str, user_id: int = ADMIN) -> str:
                before = len(server.of("sendMessage"))
                await server.send_command(text, user_id=user_id, name="Ada")
                return (await server.wait_for("sendMessage", count=before + 1, timeout=30))[-1].params["text"]

            async def admin_told(photos_before: int) -> str:
                """The caption of the before | after grid sent to the admin after ``photos_before`` pictures."""
                calls = await server.wait_for("sendPhoto", count=photos_before + 1, timeout=120)
                assert calls[photos_before].params["chat_id"] == ADMIN
                return calls[photos_before].params["caption"]

            try:
                # users vote faces up until enough are curated; the scheduled check then starts a run
                for seed in range(8):
                    photo_caption = await waifu(f"/waifu pink blue seed:{seed}")
                    assert f"model {BUNDLED}" in photo_caption
                    photo = server.of("sendPhoto")[-1]
                    for voter in (2, 3):
                        await server.press(message_of(photo, 1), keyboard_of(photo)[0][0][1], user_id=voter)
                await server.wait_for("editMessageReplyMarkup", count=16)
                assert db.execute("SELECT COUNT(*) FROM images WHERE status = 'curated'").fetchone()[0] == 8
                retrainer.schedule(scheduler)  # from here: a run reads its faces as it starts, so all 8 count
                first = await admin_told(8)
                assert first.startswith("Retraining run ft-") and " promoted: " in first
                promoted = first.split()[2]
                for _ in range(100):  # the service swaps to the promoted weights within moments
                    if core.generator.version == promoted:
                        break
                    await asyncio.sleep(0.1)
                assert f"model {promoted}" in await waifu("/waifu blonde red seed:1")
                latest = db.execute("SELECT model_version FROM pictures ORDER BY id DESC LIMIT 1").fetchone()
                assert latest == (promoted,)
                scheduler.shutdown(wait=False)  # nothing new is curated: the rest is asked for by hand

                # a run forced to ruin the model is rejected by the gate; the promoted model keeps serving
                retrainer.cfg = dataclasses.replace(retrainer.cfg, **RUIN)
                assert (await said("/retrain", user_id=1)).startswith("Sorry, only the bot's admins")
                photos = len(server.of("sendPhoto"))
                assert (await said("/retrain")).startswith("Started retraining run ft-")
                rejected = await admin_told(photos)
                assert " rejected: worse than the active model" in rejected
                assert f"model {promoted}" in await waifu("/waifu blonde red seed:2")

                # a run killed mid-training: the bot answers meanwhile; the run is failed; the next one completes
                retrainer.cfg = dataclasses.replace(retrainer.cfg, lr=1e-4, steps=100_000, margin_hair_ratio=1.0,
                                                    margin_eye_ratio=1.0, margin_diversity_ratio=1.0, margin_fd=100.0)
                await said("/retrain")
                while not (data_dir / "retrain" / retrainer.running[0] / "stats.jsonl").exists():
                    await asyncio.sleep(0.2)
                assert f"model {promoted}" in await waifu("/waifu aqua green seed:3")
                messages = len(server.of("sendMessage"))
                os.kill(retrainer.running[1], signal.SIGKILL)
                failed = (await server.wait_for("sendMessage", count=messages + 1))[-1]
                assert "failed: the training process ended with status -9" in failed.params["text"]
                retrainer.cfg = dataclasses.replace(retrainer.cfg, steps=4)
                photos = len(server.of("sendPhoto"))
                await said("/retrain")
                again = await admin_told(photos)
                assert " promoted: " in again

                # /rollback serves the version before again
                back = await said("/rollback")
                assert back.startswith(f"Rolled back: {promoted} draws again")
                for _ in range(100):
                    if core.generator.version == promoted:
                        break
                    await asyncio.sleep(0.1)
                assert f"model {promoted}" in await waifu("/waifu pink blue seed:4")
                states = dict(db.execute("SELECT version, state FROM models"))
                assert sorted(states.values()) == ["active", "failed", "rejected", "retired", "retired"]
            finally:
                follower.cancel()
                db.close()
                await stop(app)
                await retrainer.close()
                await closed(core)
                await server.stop()
    asyncio.run(go())
