"""A real PostgreSQL server (Debian's package) in a temporary folder on a loopback port, for tests and benchmarks.

initdb and the server refuse to run as root, so as root they run as the package's ``postgres`` user (through
runuser), in a folder made for it outside pytest's root-only temporary folders. Nothing is installed here:
``.ci/run`` installs the package, and ``binaries()`` is None where it is missing (the tests then skip).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

USER = "moebot"  # the server's superuser: trusted on loopback, no password


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    if found := shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """``start()``, then ``new_database()`` for each test's own empty database; ``stop()`` removes everything.
    ``durable=False`` turns fsync off (the tests' default: faster, and a crash of a test server loses nothing)."""

    def __init__(self, bin_dir: Path, durable: bool = False):
        self.bin = bin_dir
        self.durable = durable
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="moebot-postgres-"))
        self._names = itertools.count(1)
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}"

    def start(self) -> "PostgresServer":
        if self._as:
            shutil.chown(self.root, "postgres")
        data = self.root / "data"
        self._run("initdb", "-D", str(data), "-U", USER, "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} " \
                  f"-c max_connections=200" + ("" if self.durable else " -c fsync=off")
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        return self

    def new_database(self) -> str:
        """A fresh empty database; its URL."""
        name = f"moebot_{next(self._names)}"
        with psycopg.connect(f"{self.url}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"{self.url}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        subprocess.run([*self._as, str(self.bin / program), *args], check=True, capture_output=True, timeout=60)
