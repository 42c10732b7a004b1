"""Two `moebot run` processes on one PostgreSQL database and one data directory, as on two machines: Telegram (the
fake Bot API) and a playground in one, a playground in the other. Votes from both count, the limits hold across
both, a reply's file drawn in one is served by the other's playground, and each firing of the scheduled
retraining check runs in one of them, never in both."""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psycopg

from bot.cli import main
from fakes.bot_parts import tiny_weights
from fakes.telegram_server import FakeTelegram
from test_bot_run import free_port, page

ROOT = Path(__file__).resolve().parents[1]
CHECK = "retraining: "  # each run of the scheduled check logs one line starting so
FIRED = 'Running job "moebot retraining check'  # APScheduler's line for each firing, in every process


class Playground:
    """The playground of one process, used as its web page does."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/"
        html = page(self.url)  # once the process serves it
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)

    def post(self, path: str, body: dict) -> bytes:
        request = urllib.request.Request(self.url + path, json.dumps(body).encode(),
                                         {"Content-Type": "application/json", "X-CSRF-Token": self.csrf})
        return urllib.request.urlopen(request, timeout=60).read()

    def command(self, text: str) -> dict:
        """The reply to a typed command (the last of the JSON lines the page reads)."""
        return json.loads(self.post("api/command", {"text": text}).splitlines()[-1])

    def vote(self, vote_id: str) -> dict:
        return json.loads(self.post("api/vote", {"id": vote_id}))

    def get(self, path: str) -> bytes:
        return urllib.request.urlopen(self.url + path.lstrip("/"), timeout=60).read()


def fired(log: Path, start: int) -> int:
    """How often the scheduler started the retraining check job, in the log after offset ``start``."""
    return log.read_text()[start:].count(FIRED)


def start(name: str, tmp_path: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen, Path]:
    """`moebot run` (this checkout's code) in a process of its own; its log file."""
    log = tmp_path / f"{name}.log"
    process = subprocess.Popen([sys.executable, "-m", "bot", *args], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    return process, log


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_two_processes_share_votes_limits_and_the_schedule(postgres_url, tmp_path):
    telegram = FakeTelegram()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def background(coroutine, timeout=60):
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)
    background(telegram.start())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "MOEBOT_STORAGE_URL": postgres_url, "MOEBOT_STORAGE_DATA_DIR": str(tmp_path / "data"),
           "MOEBOT_GENERATOR_WEIGHTS": str(tiny_weights(tmp_path / "tiny.safetensors")),
           "MOEBOT_GENERATOR_DEVICE": "cpu", "MOEBOT_GENERATOR_COMPILE": "false", "MOEBOT_GENERATOR_THREADS": "1",
           "MOEBOT_LIMITS_USER_COOLDOWN_S": "600", "MOEBOT_TRAINING_EVERY_S": "1",
           "MOEBOT_TELEGRAM_BASE_URL": telegram.base_url, "MOEBOT_TELEGRAM_POLL_TIMEOUT_S": "1"}
    for name in ("TELEGRAM_TOKEN", "DISCORD_TOKEN", "MOEBOT_WEB_TOKEN"):
        env.pop(name, None)
    ports = free_port(), free_port()
    processes = [start("one", tmp_path, {**env, "TELEGRAM_TOKEN": "1:TOKEN", "MOEBOT_WEB_PORT": str(ports[0])},
                       "--web"),
                 start("two", tmp_path, {**env, "MOEBOT_WEB_PORT": str(ports[1])})]
    try:
        one, two = Playground(ports[0]), Playground(ports[1])
        background(telegram.send_command("/waifu pink blue", user_id=1))
        photo = background(telegram.wait_for("sendPhoto", timeout=60))[0]
        up_id = photo.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        sent = {"message_id": 5000, "date": 0, "chat": {"id": 1, "type": "private"}, "text": ""}
        background(telegram.press(sent, up_id, user_id=1))
        background(telegram.wait_for("answerCallbackQuery", timeout=60))
        voted_in_two = two.vote(up_id)  # the playground's user votes on the Telegram picture in the other process

        drawn_in_two = two.command("/waifu")
        shelved = [two.get(f["url"]) for f in drawn_in_two["files"]], [one.get(f["url"]) for f in drawn_in_two["files"]]
        refused_in_one = one.command("/waifu")  # the same user, a second later, in the other process
        since = [len(log.read_text()) for _, log in processes]  # both are up: from here on, both schedules fire
        deadline = time.monotonic() + 60
        while min(fired(log, start) for (_, log), start in zip(processes, since)) < 3:
            assert time.monotonic() < deadline, "the scheduled check did not fire in both processes"
            time.sleep(0.2)
    finally:
        statuses = [stop(process) for process, _ in processes]
        background(telegram.stop())
        loop.call_soon_threadsafe(loop.stop)
    logs = [log.read_text() for _, log in processes]
    assert statuses == [0, 0], logs
    assert voted_in_two["buttons"]["up"] == 2 and voted_in_two["notice"] == "You voted 👍"
    assert not drawn_in_two["refusal"] and drawn_in_two["files"]
    assert shelved[0] == shelved[1] and shelved[0][0][:8] == b"\x89PNG\r\n\x1a\n"  # either process serves the file
    assert refused_in_one["refusal"] and refused_in_one["text"].startswith("Slow down a little")
    checks = sorted(log[start:].count(CHECK) for log, start in zip(logs, since))
    assert checks[0] == 0 and checks[1] >= 3, logs  # both fired it 3 times or more; one process ran it
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT u.platform, v.value FROM votes v JOIN users u ON u.id = v.user_id "
                            "ORDER BY u.platform").fetchall() == [("telegram", 1), ("web", 1)]
        assert conn.execute("SELECT platform FROM pictures ORDER BY id").fetchall() == [("telegram",), ("web",)]
        held = conn.execute("SELECT COUNT(*) FROM leases").fetchone()[0]
    assert held == 0  # both gave their leases up when they stopped


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("TELEGRAM_TOKEN", "DISCORD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MOEBOT_STORAGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MOEBOT_WEB_PORT", str(free_port()))
    monkeypatch.setenv("MOEBOT_STORAGE_URL", f"postgresql://moebot:SECRET-PW@127.0.0.1:{free_port()}/moebot")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("moebot run: cannot connect to the database at postgresql://moebot@127.0.0.1:")
    assert "MOEBOT_STORAGE_URL" in err and "SECRET-PW" not in err and "Traceback" not in err
