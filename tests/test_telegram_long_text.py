"""Texts longer than Telegram allows (1,024 characters for a caption, 4,096 for a message) reach the chat whole."""

import asyncio
import shutil

from PIL import Image

from bot.commands import Models
from bot.core import Who
from bot.telegram_adapter import split_text
from fakes.bot_parts import database
from fakes.telegram_server import FakeTelegram
from test_retraining import make_retrainer
from test_telegram_bot import running_bot, stopped
from training import registry

REASON = "the candidate's Fréchet distance was more than the margin above the active model's, so the gate said no"


def record_versions(data_dir, parent: str, n: int) -> list[str]:
    """``n`` finished runs, each with figures, a long reason and a before/after grid, as the retrainer records them."""
    grid = data_dir / "grid.png"
    Image.new("RGB", (16, 8), "white").save(grid)
    versions = [f"ft-20261202-{i:04d}" for i in range(1, n + 1)]

    async def record():
        async with database(data_dir) as db:
            for version in versions:
                await registry.begin(db, version, parent, data_dir / version)
                await registry.record_result(
                    db, version, data_dir / f"{version}.safetensors",
                    {"hair_ratio": 0.912, "eye_ratio": 0.876, "diversity_ratio": 0.951, "fd": 12.3}, {"fd": 10.1}, grid,
                    0, [])
                await registry.set_state(db, version, "rejected", REASON)
    asyncio.run(record())
    return versions


def test_models_with_many_versions_sends_every_line(tmp_path, face_data_dir, tiny_generator_file):
    data_dir = tmp_path / "data"
    shutil.copytree(face_data_dir, data_dir)
    versions = record_versions(data_dir, "test-v1", 7)

    async def go():
        telegram = FakeTelegram()
        await telegram.start()
        async with make_retrainer(data_dir, tiny_generator_file) as retrainer:
            app, core = await running_bot(telegram, data_dir, retrainer=retrainer)
            try:
                expected = (await core.handle(Who("telegram", "1", "Alice", "1"), Models())).text
                await telegram.send_command("/models", user_id=1)
                grid = (await telegram.wait_for("sendPhoto"))[0]
                texts = [c.params["text"] for c in telegram.of("sendMessage")]
            finally:
                await stopped(app, core)
                await telegram.stop()
        return expected, grid, texts
    expected, grid, texts = asyncio.run(asyncio.wait_for(go(), 120))
    assert len(expected) > 1024  # too long for a caption
    assert "\n".join(texts) == expected and all(version in expected for version in versions)
    assert "caption" not in grid.params and grid.file("photo")[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_long_text_is_cut_between_lines():
    lines = [f"line {i} " + "x" * 40 for i in range(300)]  # 14,000 characters
    parts = split_text("\n".join(lines))
    assert all(len(p) <= 4096 for p in parts) and len(parts) == 4
    assert [line for p in parts for line in p.split("\n")] == lines


def test_a_line_longer_than_a_message_is_cut_where_the_limit_falls():
    assert split_text("ab\n" + "y" * 10 + "\n\ncd", limit=4) == ["ab", "yyyy", "yyyy", "yy\n", "cd"]
