"""`moebot models promote|list|rollback`: the pointer file, the registry, and a running service following it without a restart."""

import asyncio

from bot.cli import main
from generator.active_model import follow_promotions, promote_file, read_active
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
            promote_file(data, _weights(tmp_path / "next.safetensors", "v8"))
            for _ in range(400):  # the swap needs a new worker process: allow it a few seconds
                if svc.version == "v8":
                    break
                await asyncio.sleep(0.05)
            after = (await svc.faces([0], [0], [0])).version
            follower.cancel()
            return before, after

    before, after = asyncio.run(go())
    assert before != "v8" and after == "v8"
