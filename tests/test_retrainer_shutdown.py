"""A closed retrainer starts no run: at shutdown it is closed while the chat platforms still work (so a run it
cuts short is reported), and a /retrain or a scheduled check arriving then must not leave a child behind."""

import asyncio

from test_retraining import make_retrainer


def test_no_run_starts_once_the_retrainer_is_closed(tmp_path, tiny_generator_file):
    async def go():
        async with make_retrainer(tmp_path, tiny_generator_file) as retrainer:
            await retrainer.close()
            answer = await retrainer.start("telegram:1")
            running = retrainer.running
            await retrainer.close()
            return answer, running
    answer, running = asyncio.run(go())
    assert answer == "The bot is shutting down; no retraining run starts now." and running is None
    assert not (tmp_path / "retrain").exists()
