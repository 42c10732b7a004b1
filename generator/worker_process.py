"""The process that owns a generator's weights and runs its batches.

Running inference in a child process means bad weights, an out-of-memory kill
or a hung kernel cost the affected batch, never the bot: the parent sees the
pipe close (or time out), fails those requests and starts a fresh child.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Mapping

import numpy as np

from generator.model_kinds import Loaded


class WorkerFailed(RuntimeError):
    """The worker process died, hung or refused its weights."""


def _serve(conn: Connection, weights: dict[str, str | None], strict: tuple[str, ...], device: str, threads: int,
           compile_: bool) -> None:
    """Child main: load and check one model per kind, say ready, then draw batches until told to stop.

    The face generator must load, and so must a kind in ``strict`` (the one being promoted); any other kind
    that cannot is left out, and the parent is told why, so faces are still served.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from generator.fast_inference import FastDrawer
    from generator.model_check import load_all

    if threads:
        torch.set_num_threads(threads)
    try:
        samplers, missing = load_all(weights, strict, device)
    except Exception as e:  # any failure to load is an answer for the parent, not a crash
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    drawers = {**samplers, "face": FastDrawer(samplers["face"])}
    if compile_:
        drawers["face"].start_compiling()  # eager serves meanwhile
    conn.send(("ready", {"models": {kind: (s.version, s.z_dim) for kind, s in samplers.items()},
                         "missing": missing}))
    while True:
        try:
            msg = conn.recv()
        except EOFError:  # the parent went away (it died, or dropped a worker it was starting): nothing to serve
            return
        if msg[0] == "stop":
            return
        _, kind, *arrays = msg
        images = drawers[kind].draw(*(torch.from_numpy(a) for a in arrays))
        conn.send(("done", images.numpy()))


@dataclass
class WorkerProcess:
    """The parent's handle on one worker process; used by one dispatcher at a time."""

    process: mp.process.BaseProcess
    conn: Connection
    weights: dict[str, str | None]  # by kind, as asked for (None: the kind's bundled weights)
    models: dict[str, Loaded]  # what it serves, by kind
    missing: dict[str, str]  # why each kind it does not serve is missing

    @property
    def version(self) -> str:
        return self.models["face"].version

    @classmethod
    async def start(cls, weights: Mapping[str, str | Path | None], device: str = "cpu", threads: int = 0,
                    compile_: bool = False, timeout: float = 120.0, strict: tuple[str, ...] = ()) -> "WorkerProcess":
        """Spawn a worker and wait until it has loaded and checked ``weights`` (by kind); WorkerFailed when the
        face generator, or a kind in ``strict``, does not load. Other kinds that do not load are left out."""
        ctx = mp.get_context("spawn")  # fork would copy a parent's torch threads and locks
        parent, child = ctx.Pipe()
        weights = {kind: str(w) if w else None for kind, w in weights.items()}
        proc = ctx.Process(target=_serve, args=(child, weights, strict, device, threads, compile_),
                           daemon=True, name="moebot-generator")
        proc.start()
        child.close()
        try:
            msg = await asyncio.wait_for(asyncio.to_thread(_recv, parent), timeout)
        except (asyncio.TimeoutError, WorkerFailed) as e:
            proc.kill()
            raise WorkerFailed(f"the generator worker did not start: {e or 'timed out'}") from None
        if msg[0] != "ready":
            proc.join(5)
            raise WorkerFailed(f"refused {describe(weights, (*strict, 'face')[0])}: {msg[1]}")
        info = msg[1]
        return cls(proc, parent, weights, {kind: Loaded(*m) for kind, m in info["models"].items()}, info["missing"])

    async def draw(self, kind: str, arrays: tuple[np.ndarray, ...], timeout: float) -> np.ndarray:
        """Run one batch of ``kind``; WorkerFailed (and the process killed) if it dies or takes over ``timeout`` s."""
        try:  # send in the thread too: a large batch can fill the pipe's buffer
            reply = await asyncio.wait_for(asyncio.to_thread(_exchange, self.conn, ("draw", kind, *arrays)), timeout)
        except asyncio.TimeoutError:
            self.kill()
            raise WorkerFailed(f"the generator took over {timeout:g} s and was restarted") from None
        except (OSError, WorkerFailed):
            self.kill()
            raise WorkerFailed("the generator process crashed and was restarted") from None
        return reply[1]

    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()

    async def stop(self) -> None:
        """Ask politely, then make sure."""
        try:
            self.conn.send(("stop",))
        except OSError:
            pass
        deadline = time.monotonic() + 5
        while self.process.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        self.kill()


def describe(weights: Mapping[str, str | None], kind: str = "face") -> str:
    """A kind's weights in a log line: the file, or "the bundled weights"."""
    return weights.get(kind) or "the bundled weights"


def _exchange(conn: Connection, msg: tuple) -> tuple:
    try:
        conn.send(msg)
    except OSError:
        raise WorkerFailed("the worker closed its pipe") from None
    return _recv(conn)


def _recv(conn: Connection) -> tuple:
    try:
        return conn.recv()
    except (EOFError, OSError):
        raise WorkerFailed("the worker closed its pipe") from None
