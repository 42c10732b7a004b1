"""The 2x upscaler can be switched off: `[generator] upscaler = false`, or a rollback of the upscaler kind past its
first promotion (to "none"). Either way faces shown at 128 px or more are Lanczos enlargements of the 64 px faces
again, in this process at once and in other processes once they follow the pointer."""

import asyncio

from bot.cli import main
from bot.config import load_config
from bot.runner import make_service
from fakes.bot_parts import database, lifecycle, promote, tiny_upscaler_weights
from generator.active_model import follow_promotions, read_active
from generator.service import GeneratorService, ServiceOptions
from test_retraining import make_retrainer
from training import registry


async def shown_at_128(svc: GeneratorService) -> tuple[tuple[int, int], str]:
    """(the size of the faces the service hands over for 128 px, the version that drew them)."""
    drawn = await svc.faces([3], [4], [5], size=128)
    return tuple(drawn.images.shape[-2:]), drawn.version


def test_the_upscaler_switch_off_leaves_faces_to_lanczos(tmp_path, tiny_generator_file):
    data = tmp_path / "data"
    promote(data, tiny_upscaler_weights(tmp_path / "up.safetensors", version="up-v1"))
    env = {"MOEBOT_STORAGE_DATA_DIR": str(data), "MOEBOT_GENERATOR_WEIGHTS": str(tiny_generator_file),
           "MOEBOT_GENERATOR_DEVICE": "cpu", "MOEBOT_GENERATOR_COMPILE": "false", "MOEBOT_GENERATOR_THREADS": "1"}

    async def drawn(switch: dict[str, str]):
        async with make_service(load_config(None, environ={**env, **switch})) as svc:
            return await shown_at_128(svc), svc.version
    (on, face), (off, _) = asyncio.run(drawn({})), asyncio.run(drawn({"MOEBOT_GENERATOR_UPSCALER": "false"}))
    assert on == ((128, 128), f"{face}+up-v1")
    assert off == ((64, 64), face)  # the picture code enlarges these with Lanczos, as with no upscaler


def test_rolling_the_upscaler_back_to_none_falls_back_to_lanczos(tmp_path, tiny_generator_file, capsys,
                                                                  monkeypatch):
    """`moebot models rollback upscaler` past the first upscaler: a bot following the pointer drops it; rolling
    back again serves it again; `/rollback upscaler` in a bot switches its own service at once."""
    up = tiny_upscaler_weights(tmp_path / "up.safetensors", version="up-v1")
    monkeypatch.setenv("MOEBOT_STORAGE_DATA_DIR", str(tmp_path))

    async def until(svc: GeneratorService, upscaled: bool) -> tuple[tuple[int, int], str]:
        for _ in range(600):  # a swap starts a worker process: allow it some seconds
            if svc.serves("upscaler") == upscaled:
                break
            await asyncio.sleep(0.05)
        return await shown_at_128(svc)

    async def go():
        async with GeneratorService(tiny_generator_file, ServiceOptions(threads=1)) as svc, \
                GeneratorService(tiny_generator_file, ServiceOptions(threads=1)) as other:
            follower = asyncio.create_task(follow_promotions(other, tmp_path, every=0.05))
            async with database(tmp_path) as db:
                await lifecycle(tmp_path, db, svc).promote_file(up, "test", "the first upscaler")
            seen = [await until(other, True)]
            said = [await asyncio.to_thread(main, ["models", "rollback", "upscaler"])]  # another process
            seen.append(await until(other, False))
            said.append(await asyncio.to_thread(main, ["models", "rollback", "upscaler"]))
            seen.append(await until(other, True))
            async with make_retrainer(tmp_path, tiny_generator_file) as retrainer:
                retrainer.attach(svc)
                told = await retrainer.rollback("upscaler", "telegram:1")  # what /rollback upscaler asks
                here = await shown_at_128(svc)  # at once: this process's service switched before the answer
                states = {m.version: m.state for m in await registry.listing(retrainer.db) if m.kind == "upscaler"}
            follower.cancel()
            return seen, said, told, here, states, svc.version
    seen, said, told, here, states, face = asyncio.run(asyncio.wait_for(go(), 300))
    out = capsys.readouterr().out.splitlines()
    assert said == [0, 0] and out == ["Rolled back: no upscaler model serves now (running bots switch within seconds).",
                                      "Rolled back: up-v1 draws again (running bots switch within seconds)."]
    assert seen == [((128, 128), f"{face}+up-v1"), ((64, 64), face), ((128, 128), f"{face}+up-v1")]
    assert told == "Rolled back: no upscaler model serves now." and here == ((64, 64), face)
    assert states == {"up-v1": "retired", "no-upscaler": "active"} and read_active(tmp_path, "upscaler") is None
