"""The playground's reply files, in a folder every bot process shares.

A reply's files are put on the shelf under a random key, and the page asks for them by key, never by a path. The
shelf is a folder under the data directory, so with several processes or machines (one shared data directory,
README: "Several processes, one database") a page may fetch a file from any process, not only the one that drew
it. Files are written whole or not at all; beyond ``max_bytes`` the oldest go.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from bot.core import Attachment
from generator.durable import remove_stale, write_durably

SHELF_FOLDER = "shelf"  # under data_dir
KEY = re.compile(r"[A-Za-z0-9_-]{16}\.(png|gif)")  # what ``put`` hands out: a random name and the file's suffix


class FileShelf:
    """Recent reply files by random key, the oldest dropped beyond ``max_bytes`` (of all processes together)."""

    def __init__(self, folder: Path, max_bytes: int = 64 * 2**20):
        self.folder = folder
        self.max_bytes = max_bytes
        if folder.is_dir():
            remove_stale(folder)  # what a crash left half-written

    def put(self, attachment: Attachment) -> str:
        key = f"{secrets.token_urlsafe(12)}{Path(attachment.filename).suffix}"
        self.folder.mkdir(parents=True, exist_ok=True)
        write_durably(self.folder / key, attachment.data)
        self._prune()
        return key

    def get(self, key: str) -> Attachment | None:
        if not KEY.fullmatch(key):
            return None
        try:
            return Attachment(key, (self.folder / key).read_bytes())
        except FileNotFoundError:
            return None

    def _prune(self) -> None:
        """Drop the oldest files until the rest fit in ``max_bytes`` (the newest always stays)."""
        files = []
        for path in self.folder.iterdir():
            if not KEY.fullmatch(path.name):  # a file being written (by any process)
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:  # pruned by another process meanwhile
                continue
            files.append((stat.st_mtime_ns, stat.st_size, path))
        files.sort(reverse=True)
        total = 0
        for i, (_, size, path) in enumerate(files):
            total += size
            if total > self.max_bytes and i > 0:
                path.unlink(missing_ok=True)
