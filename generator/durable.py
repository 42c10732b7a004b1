"""Files written whole or not at all, and the temporary files a crash leaves behind.

A file is written to a unique temporary name, fsynced and renamed over its target, so a crash leaves
either no file or the whole file. A write that fails (a full disk) removes its temporary file at
once: a left-over one would keep the disk full. Only a crash in the middle leaves one, and
``remove_stale`` clears those at the next start.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path

log = logging.getLogger(__name__)
SUFFIX = ".tmp"


def write_durably(path: Path, data: bytes) -> None:
    """Atomic and fsynced; on any failure the temporary file is removed and the error raised."""
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(6)}{SUFFIX}")  # unique: two writers may race
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale(folder: Path, older_than_s: float = 60.0) -> int:
    """Delete temporary files under ``folder`` older than ``older_than_s`` (a write takes milliseconds, so an
    older one was left by a crash, not a writer still at work); returns how many went."""
    cutoff, removed = time.time() - older_than_s, 0
    for tmp in folder.rglob(f"*{SUFFIX}"):
        try:
            if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed += 1
        except OSError as e:  # gone meanwhile, or not ours to delete: leave it
            log.warning("could not remove the left-over temporary file %s: %s", tmp, e)
    if removed:
        log.warning("removed %d temporary file(s) left under %s by an interrupted write", removed, folder)
    return removed
