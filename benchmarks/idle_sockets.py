"""Idle sockets against a running playground: how many the server keeps, whether a normal request is still
answered, and how much it logs meanwhile (issue #15's field test: 1,100 idle sockets, 122.5 MB of log in 70 s).

    python benchmarks/idle_sockets.py [--sockets 1100] [--nofile 1024] [--hold 30] [--src DIR]

Starts ``moebot run`` with no chat token (the playground alone) under a file limit of ``--nofile``, opens
``--sockets`` connections that send nothing, asks for ``/api/history`` while they are open, holds them
``--hold`` seconds and prints the figures. ``--src`` runs another checkout's code, e.g. the commit before a
change, unpacked with ``git archive <commit> | tar -x -C DIR``.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START = "import sys; from bot.cli import main; sys.exit(main(['run']))"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_bot(src: Path, port: int, data: Path, nofile: int, log: Path) -> tuple[subprocess.Popen, str]:
    """``moebot run`` under the file limit; returns the process and its playground URL once it prints it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOEBOT_") and not k.endswith("_TOKEN")}
    env.update(PYTHONPATH=str(src), MOEBOT_WEB_PORT=str(port), MOEBOT_STORAGE_DATA_DIR=str(data),
               MOEBOT_GENERATOR_COMPILE="false", OMP_WAIT_POLICY="PASSIVE")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    proc = subprocess.Popen([sys.executable, "-c", START], cwd=data, env=env, stdout=subprocess.PIPE,
                            stderr=log.open("wb"), text=True, preexec_fn=limit)
    for line in proc.stdout:
        if line.startswith("Playground: "):
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining
            return proc, line.split()[1]
    raise SystemExit(f"moebot run did not start; its log: {log}")


def open_idle(port: int, count: int) -> tuple[list[socket.socket], int]:
    """``count`` connections that send nothing; those the kernel would not even queue are counted as refused."""
    opened, refused = [], 0
    for _ in range(count):
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", port))
            opened.append(s)
        except OSError:
            s.close()
            refused += 1
    return opened, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1100)
    parser.add_argument("--nofile", type=int, default=1024, help="the server's file limit (ulimit -n)")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds the idle sockets stay open")
    parser.add_argument("--src", type=Path, default=REPO, help="the checkout whose code runs")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.sockets + 256)), hard))
    with tempfile.TemporaryDirectory(prefix="moebot-idle-") as tmp:
        log = Path(tmp) / "moebot.log"
        proc, url = start_bot(args.src.resolve(), free_port(), Path(tmp), args.nofile, log)
        try:
            port = int(url.rstrip("/").rsplit(":", 1)[1])
            began = time.monotonic()
            idle, refused = open_idle(port, args.sockets)
            asked = time.monotonic()
            try:
                with urllib.request.urlopen(url + "api/history", timeout=10) as r:
                    answer = f"{r.status} in {time.monotonic() - asked:.2f} s"
            except OSError as e:
                answer = f"no answer ({e})"
            time.sleep(max(0.0, args.hold - (time.monotonic() - began)))
            server_fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
            still_open = sum(1 for s in idle if not _closed(s))
            held = time.monotonic() - began
            text = log.read_bytes()
            floods = text.count(b"out of system resource")
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
        for s in idle:
            s.close()
    print(f"code: {args.src}; server file limit {args.nofile}; {args.sockets} idle sockets "
          f"({refused} not even queued by the kernel)")
    print(f"/api/history during them: {answer}")
    print(f"after {held:.0f} s: {still_open} idle sockets still open, the server holds {server_fds} files")
    print(f"log by then: {len(text):,} bytes, {len(text.splitlines()):,} lines, "
          f"{floods:,} of them 'socket.accept() out of system resource'")


def _closed(s: socket.socket) -> bool:
    s.settimeout(0.01)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


if __name__ == "__main__":
    main()
