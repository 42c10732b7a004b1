"""``moebot run``: without tokens it explains and serves the playground; bad settings stop it with a clear message."""

import io
import json
import os
import re
import signal
import socket
import sqlite3
import threading
import time
import urllib.request

import pytest
from PIL import Image

import migrations
from bot.cli import main
from generator.models.acgan import ACGANConfig, Generator
from generator.weights import save_module


@pytest.fixture
def env(tmp_path, monkeypatch):
    G = Generator(ACGANConfig(g_ch=4))
    save_module(G, tmp_path / "tiny.safetensors", G.cfg.to_dict(), step=0)
    monkeypatch.chdir(tmp_path)
    for name in ("DISCORD_TOKEN", "TELEGRAM_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MOEBOT_GENERATOR_WEIGHTS", str(tmp_path / "tiny.safetensors"))
    monkeypatch.setenv("MOEBOT_GENERATOR_DEVICE", "cpu")
    monkeypatch.setenv("MOEBOT_GENERATOR_COMPILE", "false")  # compiling would only cost these tests CPU time
    monkeypatch.setenv("MOEBOT_STORAGE_DATA_DIR", str(tmp_path / "data"))
    return monkeypatch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_without_tokens_it_says_how_to_add_one_and_serves_the_playground(tmp_path, env, capsys):
    """The README's first command ends here: the playground answers /waifu with a face within seconds."""
    port = free_port()
    env.setenv("MOEBOT_WEB_PORT", str(port))
    url = f"http://127.0.0.1:{port}/"
    got: dict = {}

    def user_then_ctrl_c():
        try:
            for _ in range(1200):  # until the generator service has started and the page is served
                try:
                    html = urllib.request.urlopen(url, timeout=5).read().decode()
                    break
                except OSError:
                    time.sleep(0.05)
            csrf = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
            asked = time.monotonic()
            req = urllib.request.Request(url + "api/command", json.dumps({"text": "/waifu pink blue"}).encode(),
                                         {"Content-Type": "application/json", "X-CSRF-Token": csrf})
            got["events"] = [json.loads(line) for line in urllib.request.urlopen(req, timeout=30).read().splitlines()]
            got["png"] = urllib.request.urlopen(url + got["events"][-1]["files"][0]["url"][1:], timeout=10).read()
            got["seconds"] = time.monotonic() - asked
            req = urllib.request.Request(url + "api/command", json.dumps({"text": "/review"}).encode(),
                                         {"Content-Type": "application/json", "X-CSRF-Token": csrf})
            got["review"] = json.loads(urllib.request.urlopen(req, timeout=30).read())
        finally:
            os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=user_then_ctrl_c, daemon=True).start()
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "TELEGRAM_TOKEN" in out and "DISCORD_TOKEN" in out and f"Playground: {url}" in out
    assert [e["type"] for e in got["events"]] == ["drawing", "reply"]
    assert got["events"][-1]["text"].startswith("pink hair, blue eyes")
    assert Image.open(io.BytesIO(got["png"])).size == (256, 256) and got["seconds"] < 5
    assert got["review"]["text"] == "Nothing is waiting for review."  # the operator at the playground is an admin
    assert sqlite3.connect(tmp_path / "data" / "moebot.db").execute(
        "SELECT u.platform, p.tags FROM pictures p JOIN users u ON u.id = p.user_id").fetchall() == \
        [("web", "pink hair, blue eyes")]


def test_the_playground_refuses_to_serve_beyond_loopback_without_a_token(tmp_path, env, capsys):
    env.setenv("MOEBOT_WEB_HOST", "0.0.0.0")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "refusing to serve the playground on 0.0.0.0" in err and "MOEBOT_WEB_TOKEN" in err
    assert not (tmp_path / "data" / "moebot.db").exists()  # nothing started
    env.setenv("TELEGRAM_TOKEN", "123:SECRET")  # chat platforms alone never open the web server
    env.setenv("MOEBOT_GENERATOR_WEIGHTS", str(tmp_path / "missing.safetensors"))
    assert main(["run"]) == 2 and "cannot load the generator" in capsys.readouterr().err
    assert main(["run", "--web"]) == 2 and "refusing to serve" in capsys.readouterr().err


def test_bad_settings_stop_it_with_a_message(tmp_path, env, capsys):
    env.setenv("MOEBOT_LIMITS_MAX_COUNT", "9")
    assert main(["run"]) == 2
    assert "[limits] max_count" in capsys.readouterr().err
    env.delenv("MOEBOT_LIMITS_MAX_COUNT")
    env.setenv("MOEBOT_GENERATOR_WEIGHTS", str(tmp_path / "missing.safetensors"))
    assert main(["run"]) == 2
    assert "cannot load the generator" in capsys.readouterr().err
    env.setenv("TELEGRAM_TOKEN", "123:SECRET")  # the same from the generator service's worker
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "cannot load the generator" in err and "missing.safetensors" in err and "SECRET" not in err


def test_a_newer_database_schema_stops_it(tmp_path, env, capsys):
    (tmp_path / "data").mkdir()
    conn = sqlite3.connect(tmp_path / "data" / "moebot.db")
    conn.execute(f"PRAGMA user_version = {migrations.latest_version() + 1}")
    conn.close()
    env.setenv("TELEGRAM_TOKEN", "123:SECRET")
    assert main(["run", "--config", str(tmp_path / "none.toml")]) == 2  # --config after run: a missing file
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bot.toml").write_text("[limits]\ntop_size = 2\n")
    assert main(["run", "--config", str(tmp_path / "bot.toml")]) == 2
    err = capsys.readouterr().err
    assert "upgrade moebot" in err and "SECRET" not in err


def test_run_serves_telegram_until_stopped_and_never_logs_the_token(tmp_path, env, caplog):
    """The whole `moebot run` path against the fake Bot API, stopped by SIGINT as Ctrl+C would;
    the promoted model serves rather than the configured weights, an admin sees the generator's
    metrics in /stats, Prometheus can scrape them, and --web serves the dashboard beside Telegram."""
    import asyncio
    import logging

    from bot.config import load_config
    from bot.runner import run
    from fakes.bot_parts import tiny_weights
    from fakes.telegram_server import FakeTelegram
    from generator.active_model import promote_file

    promote_file(tmp_path / "data", tiny_weights(tmp_path / "promoted.safetensors", seed=3, version="promoted-v3"))

    metrics_port, web_port = free_port(), free_port()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    server = FakeTelegram()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    scraped = []

    def user_then_ctrl_c():
        async def chat():
            await server.wait_for("setMyCommands", timeout=30)
            await server.send_command("/waifu pink blue", user_id=1)
            await server.wait_for("sendPhoto", timeout=30)
            await server.send_command("/stats", user_id=1)
            await server.wait_for("sendMessage", timeout=30)
        try:
            asyncio.run_coroutine_threadsafe(chat(), loop).result(60)
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as page:
                scraped.append(page.read().decode())
            with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/gallery", timeout=10) as page:
                scraped.append(json.loads(page.read()))  # --web: the dashboard beside Telegram
        finally:
            os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=user_then_ctrl_c, daemon=True).start()

    caplog.set_level(logging.INFO)
    env.setenv("MOEBOT_TELEGRAM_BASE_URL", server.base_url)
    env.setenv("MOEBOT_TELEGRAM_POLL_TIMEOUT_S", "1")
    env.setenv("MOEBOT_GENERATOR_METRICS_PORT", str(metrics_port))
    env.setenv("MOEBOT_LIMITS_ADMINS", "telegram:1")
    env.setenv("MOEBOT_WEB_PORT", str(web_port))
    secret = "123456:VERY-SECRET-TOKEN"
    try:
        assert run(load_config(None), {"TELEGRAM_TOKEN": secret}, web=True) == 0
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
    assert len(server.of("sendPhoto")) == 1
    assert "moebot is running" in caplog.text and secret not in caplog.text
    assert sqlite3.connect(tmp_path / "data" / "moebot.db").execute(
        "SELECT model_version FROM pictures").fetchall() == [("promoted-v3",)]
    assert "model promoted-v3" in server.of("sendPhoto")[0].params["caption"]
    stats = server.of("sendMessage")[0].params["text"]
    assert "Model: promoted-v3" in stats and "Generator: queue 0 requests" in stats
    assert "moebot_generator_requests_total 1.0" in scraped[0]
    assert [(p["platform"], p["tags"]) for p in scraped[1]["items"]] == [("telegram", "pink hair, blue eyes")]


@pytest.mark.parametrize("device", ["cuda:99", "cuda"])
def test_a_device_this_machine_lacks_is_named_as_the_setting(env, capsys, device):
    """[generator] device = "cuda" without CUDA: the message names the device setting, not the weights."""
    import torch
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    env.setenv("MOEBOT_GENERATOR_DEVICE", device)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert f'[generator] device in bot.toml (or MOEBOT_GENERATOR_DEVICE): device "{device}" is not available' in err
    assert 'Use "auto"' in err and "weights" not in err
