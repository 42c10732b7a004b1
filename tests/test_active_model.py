"""`moebot models promote|list|rollback`: the pointer file, the registry, and a running service following it without a restart."""

import asyncio
import logging

import torch

from bot.cli import main
from bot.config import load_config
from bot.runner import make_service
from fakes.bot_parts import promote, promote_file
from generator.active_model import follow_promotions, read_active
from generator.models.acgan import ACGANConfig, Generator
from generator.service import GeneratorService, ServiceOptions
from generator.weights import save_module


def _weights(path, version):
    G = Generator(ACGANConfig(g_ch=4))
    save_module(G, path, G.cfg.to_dict(), step=1, version=version)
    return path


def test_cli_promote_and_list(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOEBOT_STORAGE_DATA_DIR", str(tmp_path / "data"))
    new = _weights(tmp_path / "candidate.safetensors", "v7")
    assert main(["models", "promote", str(new)]) == 0
    assert "active model is now v7" in capsys.readouterr().out
    active = read_active(tmp_path / "data")
    assert active.version == "v7" and active.weights.parent == tmp_path / "data" / "models"
    assert main(["models", "list"]) == 0
    assert [ln.split()[:2] for ln in capsys.readouterr().out.splitlines()] == [["v7", "active"]]
    junk = tmp_path / "junk.safetensors"
    junk.write_text("hello")
    assert main(["models", "promote", str(junk)]) == 1
    assert "refused" in capsys.readouterr().err
    assert read_active(tmp_path / "data").version == "v7"  # a refused file changes nothing
    assert main(["models", "promote", str(_weights(tmp_path / "next.safetensors", "v9"))]) == 0
    assert main(["models", "rollback"]) == 0
    assert "v7 draws again" in capsys.readouterr().out
    assert read_active(tmp_path / "data").version == "v7"
    assert main(["models", "list"]) == 0
    assert [ln.split()[:2] for ln in capsys.readouterr().out.splitlines()] == [["v9", "retired"], ["v7", "active"]]
    assert main(["models", "rollback", "v7"]) == 1
    assert "already the active model" in capsys.readouterr().err


def test_running_service_follows_the_pointer(tiny_generator_file, tmp_path):
    data = tmp_path / "data"

    async def go():
        async with GeneratorService(tiny_generator_file, ServiceOptions(threads=1)) as svc:
            follower = asyncio.create_task(follow_promotions(svc, data, every=0.05))
            before = (await svc.faces([0], [0], [0])).version
            await promote_file(data, _weights(tmp_path / "next.safetensors", "v8"))
            for _ in range(400):  # the swap needs a new worker process: allow it a few seconds
                if svc.version == "v8":
                    break
                await asyncio.sleep(0.05)
            after = (await svc.faces([0], [0], [0])).version
            follower.cancel()
            return before, after

    before, after = asyncio.run(go())
    assert before != "v8" and after == "v8"


def test_weights_that_do_not_draw_are_never_promoted(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOEBOT_STORAGE_DATA_DIR", str(tmp_path / "data"))
    assert main(["models", "promote", str(_weights(tmp_path / "good.safetensors", "v7"))]) == 0
    G = Generator(ACGANConfig(g_ch=4))
    with torch.no_grad():
        for p in G.parameters():
            p.fill_(float("nan"))
    save_module(G, tmp_path / "nan.safetensors", G.cfg.to_dict(), step=1, version="v-nan")
    torn = tmp_path / "torn.safetensors"
    good = (tmp_path / "good.safetensors").read_bytes()
    torn.write_bytes(good[:len(good) // 2])  # the header survives, the tensors are cut short
    capsys.readouterr()
    assert main(["models", "promote", str(tmp_path / "nan.safetensors")]) == 1
    assert "refused" in (err := capsys.readouterr().err) and "not finite" in err
    assert main(["models", "promote", str(torn)]) == 1
    assert "refused" in capsys.readouterr().err
    assert read_active(tmp_path / "data").version == "v7"
    assert len(list((tmp_path / "data" / "models").glob("*.safetensors"))) == 1  # no copy of either was kept


def test_a_damaged_pointer_reads_as_the_last_promotion_and_the_bot_still_starts(tmp_path, monkeypatch, caplog):
    data = tmp_path / "data"
    monkeypatch.chdir(tmp_path)  # no bot.toml here: settings from the environment
    monkeypatch.setenv("MOEBOT_STORAGE_DATA_DIR", str(data))
    monkeypatch.setenv("MOEBOT_GENERATOR_DEVICE", "cpu")
    monkeypatch.setenv("MOEBOT_GENERATOR_THREADS", "1")
    pointer = data / "models" / "active.json"
    promote(data, _weights(tmp_path / "a.safetensors", "v7"))
    promote(data, _weights(tmp_path / "b.safetensors", "v8"))
    pointer.write_text(pointer.read_text()[:20])  # cut short, as a full disk leaves it
    with (data / "models" / "history.jsonl").open("a") as f:
        f.write('{"weights": "')  # the history's last line too

    async def start() -> str:
        async with make_service(load_config(None)) as svc:  # what `moebot run` starts with
            return (await svc.faces([0], [0], [0])).version

    with caplog.at_level(logging.ERROR):
        assert asyncio.run(start()) == "v8"
    assert "active.json is damaged (JSONDecodeError" in caplog.text and "v8, serves" in caplog.text
    (data / "models" / "history.jsonl").unlink()
    assert read_active(data) is None  # nothing recorded: the configured weights serve


def test_following_goes_on_after_the_pointer_was_damaged(tiny_generator_file, tmp_path, caplog):
    data = tmp_path / "data"

    async def go():
        async with GeneratorService(tiny_generator_file, ServiceOptions(threads=1)) as svc:
            follower = asyncio.create_task(follow_promotions(svc, data, every=0.05))
            await asyncio.sleep(0.2)  # following, when the pointer gets damaged
            (data / "models").mkdir(parents=True)
            (data / "models" / "active.json").write_text('{"weights": "/x", "vers')
            while "is damaged" not in caplog.text:
                await asyncio.sleep(0.05)
            await promote_file(data, _weights(tmp_path / "next.safetensors", "v8"))
            while svc.version != "v8" and not follower.done():
                await asyncio.sleep(0.05)
            follower.cancel()
            return (await svc.faces([0], [0], [0])).version

    with caplog.at_level(logging.ERROR):
        assert asyncio.run(asyncio.wait_for(go(), 120)) == "v8"
    assert caplog.text.count("is damaged") == 1  # said once, not at every look
