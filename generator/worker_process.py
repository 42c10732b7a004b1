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

import numpy as np


class WorkerFailed(RuntimeError):
    """The worker process died, hung or refused its weights."""


def _serve(conn: Connection, weights: str | None, device: str, threads: int, compile_: bool,
           sketch_weights: str | None) -> None:
    """Child main: load and check the weights, say ready, then draw batches until told to stop.

    The sketch model loads beside the face generator; when it cannot, faces are still served and the
    parent is told why sketches are not.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from generator.fast_inference import FastDrawer
    from generator.model_check import check_draws
    from generator.sampler import FaceSampler, SketchSampler

    if threads:
        torch.set_num_threads(threads)
    try:
        sampler = FaceSampler.load(weights, device)
        check_draws(sampler)
    except Exception as e:  # any failure to load is an answer for the parent, not a crash
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    sketcher, sketch_error = None, None
    try:
        sketcher = SketchSampler.load(sketch_weights, device)
        probe = sketcher.G(torch.ones(1, 1, 64, 64, device=sketcher.device),
                           torch.zeros(1, sketcher.z_dim, device=sketcher.device),
                           torch.ones(1, 22, device=sketcher.device) / 11)
        if not torch.isfinite(probe).all():
            raise ValueError("the sketch model's output is not finite")
    except Exception as e:
        sketcher, sketch_error = None, f"cannot load {sketch_weights or 'the bundled sketch weights'}: " \
                                       f"{type(e).__name__}: {e}"
    drawer = FastDrawer(sampler)
    if compile_:
        drawer.start_compiling()  # eager serves meanwhile
    conn.send(("ready", {"version": sampler.version, "z_dim": sampler.z_dim, "sketch_error": sketch_error,
                         "sketch_version": sketcher.version if sketcher else None,
                         "sketch_z_dim": sketcher.z_dim if sketcher else 0}))
    while True:
        try:
            msg = conn.recv()
        except EOFError:  # the parent went away (it died, or dropped a worker it was starting): nothing to serve
            return
        if msg[0] == "stop":
            return
        arrays = [torch.from_numpy(a) for a in msg[1:]]
        images = drawer.draw(*arrays) if msg[0] == "draw" else sketcher.draw(*arrays)
        conn.send(("done", images.numpy()))


@dataclass
class WorkerProcess:
    """The parent's handle on one worker process; used by one dispatcher at a time."""

    process: mp.process.BaseProcess
    conn: Connection
    version: str
    z_dim: int
    weights: str | None
    sketch_version: str | None  # None: no sketch model, see sketch_error
    sketch_z_dim: int
    sketch_error: str | None

    @classmethod
    async def start(cls, weights: str | Path | None, device: str = "cpu", threads: int = 0,
                    compile_: bool = False, timeout: float = 120.0,
                    sketch_weights: str | Path | None = None) -> "WorkerProcess":
        """Spawn a worker and wait until it has loaded and checked ``weights``; WorkerFailed otherwise.

        Sketch weights (None: the bundled ones) that do not load leave it without sketches, not failed."""
        ctx = mp.get_context("spawn")  # fork would copy a parent's torch threads and locks
        parent, child = ctx.Pipe()
        weights = str(weights) if weights else None
        sketch_weights = str(sketch_weights) if sketch_weights else None
        proc = ctx.Process(target=_serve, args=(child, weights, device, threads, compile_, sketch_weights),
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
            raise WorkerFailed(f"refused {weights or 'the bundled weights'}: {msg[1]}")
        info = msg[1]
        return cls(proc, parent, info["version"], info["z_dim"], weights, info["sketch_version"], info["sketch_z_dim"],
                   info["sketch_error"])

    async def draw(self, z: np.ndarray, cond: np.ndarray, timeout: float, sketch: np.ndarray | None = None
                   ) -> np.ndarray:
        """Run one batch (of sketches when ``sketch`` is given); WorkerFailed (and the process killed) if it
        dies or takes over ``timeout`` s."""
        msg = ("draw", z, cond) if sketch is None else ("sketch", sketch, z, cond)
        try:  # send in the thread too: a large batch can fill the pipe's buffer
            reply = await asyncio.wait_for(asyncio.to_thread(_exchange, self.conn, msg), timeout)
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
