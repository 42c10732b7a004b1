"""Model kinds and the one model lifecycle: the face generator, the sketch model and the 2x upscaler are checked,
promoted, followed by running bots and rolled back the same way, from the CLI and the dashboard; the bot draws
128 px faces through the active upscaler exactly as `moebot sample --size 128 --upscaler` does. (Swaps on the
local service and on Ray Serve: test_generator_service.py.)"""

import asyncio
import io
import json
import sqlite3

import torch
from PIL import Image

from bot.cli import main
from bot.commands import Waifu
from bot.core import Who
from fakes.bot_parts import closed, lifecycle, make_core, tiny_sketch_weights, tiny_upscaler_weights, tiny_weights
from fakes.served_web import Served
from generator.active_model import follow_promotions, read_active
from generator.images import from_pil, to_pil
from generator.models.acgan import ACGANConfig, Generator
from generator.models.sketch_gan import SketchGANConfig, SketchToFace
from generator.service import GeneratorService, ServiceOptions
from generator.tags import eye_index, hair_index
from generator.weights import BUNDLED_TAGGER, save_module

ALICE = Who("telegram", "1", "alice", "100")


def _nan(module: torch.nn.Module, path):
    """``module`` saved with NaN weights: it loads, and draws NaN."""
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(float("nan"))
    save_module(module, path, module.cfg.to_dict(), step=1, version=path.stem)
    return path


def test_candidates_of_every_kind_are_checked_before_promotion_and_each_kind_has_one_active(tmp_path, monkeypatch,
                                                                                           capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("MOEBOT_STORAGE_DATA_DIR", str(data))
    refused = {"face": _nan(Generator(ACGANConfig(g_ch=4)), tmp_path / "face-nan.safetensors"),
               "sketch": _nan(SketchToFace(SketchGANConfig(g_ch=4, style_dim=8)), tmp_path / "sketch-nan.safetensors"),
               "upscaler": tiny_upscaler_weights(tmp_path / "up-nan.safetensors", version="up-nan", nan=True)}
    for kind, path in refused.items():
        assert main(["models", "promote", str(path)]) == 1
        assert f"refused {path}: the {kind} model's output is not finite" in capsys.readouterr().err
    assert main(["models", "promote", str(BUNDLED_TAGGER)]) == 1
    assert "no model kind serves a tagger network" in capsys.readouterr().err
    assert not list((data / "models").glob("*.safetensors"))  # nothing refused was kept

    good = {"face": ("face-v2", tiny_weights), "sketch": ("sketch-v2", tiny_sketch_weights),
            "upscaler": ("up-v1", tiny_upscaler_weights)}
    for kind, (version, make) in good.items():
        assert main(["models", "promote", str(make(tmp_path / f"{kind}.safetensors", version=version))]) == 0
        assert f"active model is now {version} ({kind}: " in capsys.readouterr().out
    assert {kind: read_active(data, kind).version for kind in good} == {k: v for k, (v, _) in good.items()}
    assert main(["models", "list"]) == 0
    assert [ln.split()[:3] for ln in capsys.readouterr().out.splitlines()] == [
        ["up-v1", "active", "upscaler"], ["sketch-v2", "active", "sketch"], ["face-v2", "active", "face"]]
    assert main(["models", "rollback", "--kind", "upscaler"]) == 0  # none was active before the first upscaler
    assert "Rolled back: no upscaler model serves now" in capsys.readouterr().out
    assert read_active(data, "upscaler") is None and read_active(data, "sketch").version == "sketch-v2"
    actors = sqlite3.connect(data / "moebot.db").execute("SELECT DISTINCT actor, reason FROM promotions").fetchall()
    assert set(actors) == {("moebot models promote", "promoted by hand (moebot models promote)"),
                           ("moebot models rollback", "rolled back by moebot models rollback")}


def test_a_running_bot_follows_promotions_and_rollbacks_of_the_upscaler_and_the_sketch_model(
        tiny_generator_file, tiny_sketch_file, tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("MOEBOT_STORAGE_DATA_DIR", str(data))
    monkeypatch.setenv("MOEBOT_GENERATOR_SKETCH_WEIGHTS", str(tiny_sketch_file))  # what a sketch rollback returns to
    up1 = tiny_upscaler_weights(tmp_path / "up1.safetensors", seed=1, version="up-v1")
    up2 = tiny_upscaler_weights(tmp_path / "up2.safetensors", seed=2, version="up-v2")
    sketch2 = tiny_sketch_weights(tmp_path / "sketch2.safetensors", seed=2, version="sketch-v2")
    steps = ((["promote", up1], "upscaler", "up-v1"), (["promote", up2], "upscaler", "up-v2"),
             (["rollback", "--kind", "upscaler"], "upscaler", "up-v1"), (["promote", sketch2], "sketch", "sketch-v2"),
             (["rollback", "--kind", "sketch"], "sketch", "sketch-v1"))

    async def go():
        async with GeneratorService({"face": tiny_generator_file, "sketch": tiny_sketch_file},
                                    ServiceOptions(threads=1)) as svc:
            follower = asyncio.create_task(follow_promotions(svc, data, every=0.05))
            served = []
            for argv, kind, version in steps:  # `moebot models ...` in another thread, as from another terminal
                assert await asyncio.to_thread(main, ["models", *map(str, argv)]) == 0
                while getattr(svc.models.get(kind), "version", None) != version:  # a new worker: a few seconds
                    await asyncio.sleep(0.05)
                served.append(svc.models[kind].version)
            follower.cancel()
            return svc.version, served, await svc.faces([0], [0], [0], size=256)

    face, served, drawn = asyncio.run(asyncio.wait_for(go(), 300))
    assert served == [version for _, _, version in steps]
    assert drawn.version == f"{face}+up-v1" and drawn.images.shape == (1, 3, 128, 128)


def test_the_bot_sends_the_faces_moebot_sample_writes_through_the_active_upscaler(tmp_path, tiny_generator_file):
    up = tiny_upscaler_weights(tmp_path / "up.safetensors", version="up-v1")
    pink_blue_7 = Waifu(hair_index("pink"), eye_index("blue"), 1, 7)

    async def go():
        core = await make_core(tmp_path, weights=tiny_generator_file)
        try:
            core.display_size = 128
            before = await core.handle(ALICE, pink_blue_7)
            await lifecycle(tmp_path, core.store.db, core.generator).promote_file(up, "test", "the 128 px stage")
            after = await core.handle(ALICE, pink_blue_7)  # at once: the promotion switched this process first
            core.display_size = 256
            return before, after, await core.handle(ALICE, pink_blue_7)
        finally:
            await closed(core)

    before, after, big = (from_pil(Image.open(io.BytesIO(r.files[0].data))) for r in asyncio.run(go()))
    out = tmp_path / "sampled"
    assert main(["sample", "--weights", str(tiny_generator_file), "--upscaler", str(up), "--size", "128", "-n", "1",
                 "--hair", "pink", "--eye", "blue", "--seed", "7", "--out", str(out)]) == 0
    sampled = from_pil(Image.open(out / "000.png"))
    assert torch.equal(after, sampled)  # exactly the face `moebot sample` writes
    assert before.shape == sampled.shape and not torch.equal(before, sampled)  # without it: Lanczos from 64 px
    assert torch.equal(big, from_pil(to_pil(sampled, 256)))  # 256 px from the 128 px face


def _run_folder(runs, name: str, weights) -> None:
    (runs / name).mkdir(parents=True)
    (runs / name / "options.json").write_text(json.dumps({"steps": 1}))
    weights(runs / name)


def test_a_dashboard_promotion_serves_before_it_answers_and_is_in_the_registry(tmp_path):
    runs = tmp_path / "runs"
    _run_folder(runs, "up-run", lambda d: tiny_upscaler_weights(d / "upscaler.safetensors", version="up-v1"))
    _run_folder(runs, "face-run", lambda d: tiny_weights(d / "generator.safetensors", seed=5, version="small-v1"))
    served = Served(tmp_path / "data", runs, tiny_weights(tmp_path / "tiny.safetensors"))
    try:
        listed = json.loads(served.request("/api/models")[1])
        assert {c["id"]: c["kind"] for c in listed["candidates"]} == {"run:up-run": "upscaler", "run:face-run": "face"}
        answers, serving = [], []
        for model in ("run:up-run", "run:face-run"):
            answers.append(served.request("/api/models/promote", {"model": model}, {"X-CSRF-Token": served.csrf}))
            serving.append({kind: m.version for kind, m in served.core.generator.models.items()})  # no waiting
        drawn = served.call(served.core.generator.faces([0], [0], [0], size=128))
        assert json.loads(served.request("/api/models")[1])["serving"]["upscaler"] == "up-v1"
    finally:
        served.close()
    assert [(status, json.loads(text)) for status, text in answers] == [
        (200, {"active": "up-v1", "kind": "upscaler"}), (200, {"active": "small-v1", "kind": "face"})]
    assert serving[0]["upscaler"] == "up-v1" and serving[0]["face"] == "test-v1"
    assert serving[1]["face"] == "small-v1"
    assert drawn.version == "small-v1+up-v1"
    rows = sqlite3.connect(tmp_path / "data" / "moebot.db").execute(
        "SELECT m.kind, m.version, m.state, p.actor FROM promotions p JOIN models m USING (version)").fetchall()
    assert rows == [("upscaler", "up-v1", "active", "web:dashboard"), ("face", "small-v1", "active", "web:dashboard")]
