"""``moebot run``: without tokens it explains and serves the playground; bad settings stop it with a clear message."""

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from PIL import Image

import migrations
from bot.cli import main
from bot.config import load_config
from bot.runner import run
from fakes.bot_parts import promote, tiny_weights
from fakes.discord_server import FakeDiscord
from fakes.telegram_server import FakeTelegram
from generator.active_model import read_active
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
    """A loopback port nothing listens on (until a test starts a server there)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def background():
    """Run coroutines (fake servers, their users) on an event loop of their own, beside `moebot run`'s."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    yield lambda coroutine, timeout=60: asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)
    loop.call_soon_threadsafe(loop.stop)


@contextlib.contextmanager
def then_ctrl_c(user):
    """``user()`` in a thread while the block runs `moebot run`, then Ctrl+C however it went, but never once the
    block has ended (a run that failed early must not interrupt the next test); what the user failed is raised."""
    ended, failed = threading.Event(), []

    def go():
        try:
            user()
        except BaseException as e:
            failed.append(e)
        finally:
            if not ended.is_set():
                os.kill(os.getpid(), signal.SIGINT)
    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    try:
        yield
    finally:
        ended.set()
    thread.join(60)
    if failed:
        raise failed[0]


def logged(caplog, text: str, timeout: float = 60) -> None:
    """Wait (in a user thread) until a log line says ``text``."""
    deadline = time.monotonic() + timeout
    while not any(text in r.getMessage() for r in list(caplog.records)):
        assert time.monotonic() < deadline, f"nothing logged {text!r}"
        time.sleep(0.05)


def page(url: str, timeout: float = 60) -> str:
    """The page at ``url``, once something serves it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError:
            assert time.monotonic() < deadline, f"nothing served {url}"
            time.sleep(0.05)


def test_without_tokens_it_says_how_to_add_one_and_serves_the_playground(tmp_path, env, capsys):
    """The README's first command ends here: the playground answers /waifu with a face within seconds."""
    port = free_port()
    env.setenv("MOEBOT_WEB_PORT", str(port))
    url = f"http://127.0.0.1:{port}/"
    got: dict = {}

    def user():
        html = page(url)  # once the generator service has started
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
    with then_ctrl_c(user):
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


def test_run_serves_telegram_until_stopped_and_never_logs_the_token(tmp_path, env, caplog, background):
    """The whole `moebot run` path against the fake Bot API, stopped by SIGINT as Ctrl+C would;
    the promoted model serves rather than the configured weights, an admin sees the generator's
    metrics in /stats, Prometheus can scrape them, and --web serves the dashboard beside Telegram."""
    promote(tmp_path / "data", tiny_weights(tmp_path / "promoted.safetensors", seed=3, version="promoted-v3"))

    metrics_port, web_port = free_port(), free_port()
    server = FakeTelegram()
    background(server.start())
    scraped = []

    def user():
        async def chat():
            await server.wait_for("setMyCommands", timeout=30)
            logging.getLogger("httpx").setLevel(logging.INFO)  # an operator's choice: request lines, URLs (tokens)
            await server.send_command("/waifu pink blue", user_id=1)
            await server.wait_for("sendPhoto", timeout=30)
            await server.send_command("/stats", user_id=1)
            await server.wait_for("sendMessage", timeout=30)
        background(chat())
        scraped.append(page(f"http://127.0.0.1:{metrics_port}/metrics"))
        scraped.append(json.loads(page(f"http://127.0.0.1:{web_port}/api/gallery")))  # the dashboard beside Telegram

    caplog.set_level(logging.INFO)
    env.setenv("MOEBOT_TELEGRAM_BASE_URL", server.base_url)
    env.setenv("MOEBOT_TELEGRAM_POLL_TIMEOUT_S", "1")
    env.setenv("MOEBOT_GENERATOR_METRICS_PORT", str(metrics_port))
    env.setenv("MOEBOT_LIMITS_ADMINS", "telegram:1")
    env.setenv("MOEBOT_WEB_PORT", str(web_port))
    secret = "123456:VERY-SECRET-TOKEN"
    try:
        with then_ctrl_c(user):
            assert run(load_config(None), {"TELEGRAM_TOKEN": secret}, web=True) == 0
    finally:
        background(server.stop())
    assert len(server.of("sendPhoto")) == 1
    assert "moebot is running" in caplog.text and secret not in caplog.text
    assert "/bot<redacted>/sendPhoto" in caplog.text  # httpx wrote the URL, the token scrubbed
    assert sqlite3.connect(tmp_path / "data" / "moebot.db").execute(
        "SELECT model_version FROM pictures").fetchall() == [("promoted-v3",)]
    assert "model promoted-v3" in server.of("sendPhoto")[0].params["caption"]
    stats = server.of("sendMessage")[0].params["text"]
    assert "Model: promoted-v3" in stats and "Generator: queue 0 requests" in stats
    assert "moebot_generator_requests_total 1.0" in scraped[0]
    assert [(p["platform"], p["tags"]) for p in scraped[1]["items"]] == [("telegram", "pink hair, blue eyes")]


TELEGRAM_SHAPED = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # the shape of a real token, so the log scrubs it


def test_a_rejected_telegram_token_is_one_line_naming_the_setting(tmp_path, env, caplog, background):
    """Telegram answers 401: one line that names TELEGRAM_TOKEN, no traceback, never the token; status 2, unless
    the playground is on, which keeps serving."""
    server = FakeTelegram(token="1:THE-RIGHT-ONE")
    background(server.start())
    env.setenv("MOEBOT_TELEGRAM_BASE_URL", server.base_url)
    try:
        assert run(load_config(None), {"TELEGRAM_TOKEN": TELEGRAM_SHAPED}) == 2
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.getMessage() for r in errors] == [
            "Telegram rejected the token in TELEGRAM_TOKEN: copy it again from @BotFather (/mybots > your bot > "
            "API Token)"]
        assert "Traceback" not in caplog.text and TELEGRAM_SHAPED not in caplog.text
        assert "7012345678" not in caplog.text  # not even the bot id part

        caplog.clear()
        port = free_port()
        env.setenv("MOEBOT_WEB_PORT", str(port))
        served = []

        def user():
            logged(caplog, "rejected the token")
            served.append(page(f"http://127.0.0.1:{port}/"))
        with then_ctrl_c(user):
            assert run(load_config(None), {"TELEGRAM_TOKEN": TELEGRAM_SHAPED}, web=True) == 0  # stopped by Ctrl+C
    finally:
        background(server.stop())
    assert "csrf-token" in served[0]
    assert "the playground keeps running" in caplog.text and "Traceback" not in caplog.text
    assert len(server.of("getMe")) == 0  # every call was refused before the fake's records


def test_an_unreachable_telegram_is_tried_again_until_it_answers(tmp_path, env, caplog, background):
    """Nothing listens where the Bot API should be: a line a try, no traceback, no exit; once the server is up the
    bot polls and answers."""
    port = free_port()
    server = FakeTelegram()
    env.setenv("MOEBOT_TELEGRAM_BASE_URL", f"http://127.0.0.1:{port}/bot")
    env.setenv("MOEBOT_TELEGRAM_POLL_TIMEOUT_S", "1")

    def user():
        logged(caplog, "telegram: cannot reach the server")
        background(server.start(port))

        async def chat():
            await server.wait_for("setMyCommands", timeout=30)
            await server.send_command("/help", user_id=1)
            await server.wait_for("sendMessage", timeout=30)
        background(chat())
    caplog.set_level(logging.INFO)
    try:
        with then_ctrl_c(user):
            assert run(load_config(None), {"TELEGRAM_TOKEN": "123:SECRET"}) == 0
    finally:
        background(server.stop())
    retries = [r for r in caplog.records if "cannot reach the server" in r.getMessage()]
    assert retries and all(r.exc_info is None and "trying again in" in r.getMessage() for r in retries)
    assert "telegram: polling as @moe_bot" in caplog.text and "Traceback" not in caplog.text
    assert "/waifu" in server.of("sendMessage")[0].params["text"]


def test_discord_a_rejected_token_exits_2_and_an_unreachable_host_is_tried_again(tmp_path, env, caplog, background):
    """Discord answers 401: one line naming DISCORD_TOKEN and status 2 (not 0, so Restart=on-failure restarts
    it); nothing listening: a line a try until Ctrl+C."""
    import discord

    server = FakeDiscord(token="THE.RIGHT.ONE")
    background(server.start())
    env.setattr(discord.http.Route, "BASE", server.base)
    try:
        assert run(load_config(None), {"DISCORD_TOKEN": "A.WRONG.ONE"}) == 2
    finally:
        background(server.stop())
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["Discord rejected the token in DISCORD_TOKEN: reset it in the Discord developer portal (your "
                      "application > Bot > Reset Token)"]
    assert "Traceback" not in caplog.text

    caplog.clear()
    env.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{free_port()}/api/v10")
    with then_ctrl_c(lambda: logged(caplog, "trying again in 2 s")):  # the second try failed too: back-off
        assert run(load_config(None), {"DISCORD_TOKEN": "A.WRONG.ONE"}) == 0
    retries = [r for r in caplog.records if "discord: cannot reach the server" in r.getMessage()]
    assert len(retries) >= 2 and all(r.exc_info is None for r in retries) and "Traceback" not in caplog.text


def test_a_run_cut_short_by_shutdown_is_still_reported_to_admins(tmp_path, env, caplog, background, face_data_dir):
    """Ctrl+C during a retraining run: the run is stopped while Telegram still works, so the admin is told."""
    import shutil
    shutil.copytree(face_data_dir, tmp_path / "data")
    server = FakeTelegram()
    background(server.start())
    env.setenv("MOEBOT_TELEGRAM_BASE_URL", server.base_url)
    env.setenv("MOEBOT_TELEGRAM_POLL_TIMEOUT_S", "1")
    env.setenv("MOEBOT_LIMITS_ADMINS", "telegram:1")
    env.setenv("MOEBOT_TRAINING_STEPS", "1000000")  # the run cannot end on its own before Ctrl+C

    def user():
        async def chat():
            await server.wait_for("setMyCommands", timeout=30)
            await server.send_command("/retrain", user_id=1)
            return (await server.wait_for("sendMessage", timeout=30))[0].params["text"]
        assert background(chat()).startswith("Started retraining run ft-")
    try:
        with then_ctrl_c(user):
            assert run(load_config(None), {"TELEGRAM_TOKEN": "123:SECRET"}) == 0
    finally:
        background(server.stop())
    told = [c.params["text"] for c in server.of("sendMessage")][1:]
    assert len(told) == 1 and told[0].startswith("Retraining run ft-") and "failed" in told[0]
    assert "status -9" in told[0]  # killed by the shutdown, not ended by itself
    assert "not initialized" not in caplog.text and "could not report" not in caplog.text


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


def test_weights_that_do_not_load_at_start_end_the_process_promptly(tmp_path):
    """The generator starts before the core exists; when it cannot, the store (whose thread would keep the process
    alive) is closed on the way out, so `moebot run` ends with status 2 rather than hanging."""
    torn = tmp_path / "torn.safetensors"
    good = tiny_weights(tmp_path / "good.safetensors").read_bytes()
    torn.write_bytes(good[:len(good) // 2])  # the header survives, the tensors are cut short
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "TELEGRAM_TOKEN")}
    env.update(MOEBOT_GENERATOR_WEIGHTS=str(torn), MOEBOT_GENERATOR_DEVICE="cpu", MOEBOT_GENERATOR_THREADS="1",
               MOEBOT_STORAGE_DATA_DIR=str(tmp_path / "data"), MOEBOT_WEB_PORT=str(free_port()))
    done = subprocess.run([sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)  # a hang fails here
    assert done.returncode == 2 and "cannot load the generator" in done.stderr and "torn.safetensors" in done.stderr


def test_damaged_active_weights_at_start_give_way_to_the_previous_good_version(tmp_path, env, caplog):
    data = tmp_path / "data"
    promote(data, tiny_weights(tmp_path / "v7.safetensors", seed=7, version="v7"))
    damaged = promote(data, tiny_weights(tmp_path / "v8.safetensors", seed=8, version="v8")).weights
    damaged.write_bytes(damaged.read_bytes()[:1000])  # torn on disk while the bot was down
    env.setenv("MOEBOT_WEB_PORT", str(free_port()))
    caplog.set_level(logging.INFO)
    with then_ctrl_c(lambda: logged(caplog, "moebot is running with model")):
        assert main(["run"]) == 0  # not 2: there was a good version to go back to
    assert "moebot is running with model v7" in caplog.text
    assert "the active face model v8 does not load" in caplog.text and "v7 serves instead" in caplog.text
    conn = sqlite3.connect(data / "moebot.db")
    assert dict(conn.execute("SELECT version, state FROM models")) == {"v7": "active", "v8": "failed"}
    assert conn.execute("SELECT version, actor FROM promotions ORDER BY id DESC").fetchone() == ("v7", "moebot run")
    assert read_active(data).version == "v7"  # other processes follow it too
