"""The generator service: drawing requests from many chats, gathered into batches, run off the event loop.

Each request (a face, a grid, a morph) is a list of rows (latent, condition).
The dispatcher waits up to ``max_wait_ms`` after the first waiting request for
more, packs up to ``max_batch`` rows into one batch and runs it on a worker
process. The queue is bounded: a request that would overflow it is refused at
once with an estimate of when to retry. Promoting new weights starts a second
worker beside the first and switches between batches, so no request fails or
waits for the swap; each result names the version that drew it.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from generator.images import grid, to_pil
from generator.metrics import ServiceMetrics
from generator.sampler import face_inputs, mode_rows, morph_inputs
from generator.worker_process import WorkerFailed, WorkerProcess

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """Too much is waiting; ``retry_after`` is a fair guess of the seconds until there is room."""

    def __init__(self, retry_after: int):
        super().__init__(f"busy, try again in {retry_after} s")
        self.retry_after = retry_after


class GenerationFailed(Exception):
    """The worker failed on this request's batch (it has been restarted); the request may be retried."""


@dataclass(frozen=True)
class ServiceOptions:
    max_batch: int = 64
    max_wait_ms: float = 5.0
    queue_limit: int = 1024      # faces waiting, beyond which requests are refused
    request_timeout_s: float = 60.0
    batch_timeout_s: float = 30.0  # a batch taking longer means a hung worker: kill and restart it
    device: str = "cpu"
    threads: int = 0
    compile: bool = False          # torch.compile large batches in the worker (checked against eager)


@dataclass(frozen=True)
class Drawn:
    images: torch.Tensor  # (B, 3, 64, 64) uint8
    version: str


@dataclass(eq=False)
class _Request:
    z: np.ndarray
    cond: np.ndarray
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)

    @property
    def rows(self) -> int:
        return len(self.z)


class DrawingService(abc.ABC):
    """One generator backend (in-process worker or Ray Serve): ``draw`` plus what is built on it,
    faces by seed, the ACGAN grids and morphs, so the bot works the same against either."""

    metrics: ServiceMetrics
    options: ServiceOptions

    @property
    @abc.abstractmethod
    def z_dim(self) -> int: ...

    @property
    @abc.abstractmethod
    def version(self) -> str: ...

    @abc.abstractmethod
    async def start(self) -> "DrawingService": ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def promote(self, weights: str | Path) -> str:
        """Serve ``weights`` from now on, without failing or stalling requests; WorkerFailed keeps the old."""

    @abc.abstractmethod
    async def draw(self, z: torch.Tensor, cond: torch.Tensor, timeout: float | None = None) -> Drawn:
        """One face per (latent, condition) row; QueueFull at once when too much is waiting."""

    async def __aenter__(self) -> "DrawingService":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def faces(self, hair: Sequence[int], eye: Sequence[int], seeds: Sequence[int],
                    timeout: float | None = None) -> Drawn:
        return await self.draw(*face_inputs(hair, eye, seeds, self.z_dim), timeout)

    async def mode_grid(self, mode: str, hair: int, eye: int, seed: int, n: int = 8, size: int = 64
                        ) -> tuple[Image.Image, str]:
        hs, es, ss, ncol = mode_rows(mode, hair, eye, seed, n)
        drawn = await self.faces(hs, es, ss)
        return grid(drawn.images, ncol, cell=size), drawn.version

    async def morph_frames(self, start: tuple[int, int, int], end: tuple[int, int, int], frames: int = 16,
                           size: int | None = None) -> tuple[list[Image.Image], str]:
        drawn = await self.draw(*morph_inputs(start, end, frames, self.z_dim))
        return [to_pil(img, size) for img in drawn.images], drawn.version


class GeneratorService(DrawingService):
    def __init__(self, weights: str | Path | None = None, options: ServiceOptions = ServiceOptions()):
        self.options = options
        self.metrics = ServiceMetrics()
        self._weights = weights
        self._worker: WorkerProcess | None = None
        self._retired: list[WorkerProcess] = []
        self._waiting: deque[_Request] = deque()
        self._arrived = asyncio.Event()
        self._dispatcher: asyncio.Task | None = None
        self._swap_lock = asyncio.Lock()
        self._seconds_per_row = 0.01  # moving estimate, for retry-after hints

    # -- lifecycle ---------------------------------------------------------------------------------------
    async def start(self) -> "GeneratorService":
        self._worker = await WorkerProcess.start(self._weights, self.options.device, self.options.threads,
                                                  self.options.compile)
        self._dispatcher = asyncio.create_task(self._dispatch(), name="generator-dispatcher")
        return self

    async def close(self) -> None:
        if self._dispatcher:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
        for req in self._waiting:
            if not req.future.done():
                req.future.set_exception(GenerationFailed("the generator is shutting down"))
        self._waiting.clear()
        for w in [self._worker, *self._retired]:
            if w:
                await w.stop()

    @property
    def version(self) -> str:
        return self._worker.version if self._worker else "not started"

    @property
    def z_dim(self) -> int:
        assert self._worker, "start() the service first"
        return self._worker.z_dim

    # -- requests ----------------------------------------------------------------------------------------
    async def draw(self, z: torch.Tensor, cond: torch.Tensor, timeout: float | None = None) -> Drawn:
        """Draw one face per row. QueueFull at once if the queue is full; TimeoutError after ``timeout``."""
        rows = len(z)
        if self.metrics.queue_rows + rows > self.options.queue_limit:
            self.metrics.rejected += 1
            raise QueueFull(max(1, math.ceil(self.metrics.queue_rows * self._seconds_per_row)))
        req = _Request(z.float().numpy(), cond.float().numpy(), asyncio.get_running_loop().create_future())
        self._waiting.append(req)
        self.metrics.queue_rows += rows
        self.metrics.queue_requests += 1
        self._arrived.set()
        try:
            return await asyncio.wait_for(asyncio.shield(req.future), timeout or self.options.request_timeout_s)
        finally:
            if not req.future.done():  # the caller gave up: the dispatcher will skip this request
                req.future.cancel()

    # -- hot reload --------------------------------------------------------------------------------------
    async def promote(self, weights: str | Path) -> str:
        """Load ``weights`` in a new worker beside the serving one, then switch; WorkerFailed leaves the old."""
        async with self._swap_lock:
            new = await WorkerProcess.start(weights, self.options.device, self.options.threads, self.options.compile)
            old, self._worker, self._weights = self._worker, new, weights
            if old is not None:
                self._retired.append(old)  # stopped by the dispatcher once its batch (if any) is done
                self._arrived.set()
            log.info("generator switched to %s", new.version)
            return new.version

    # -- the dispatcher ----------------------------------------------------------------------------------
    async def _next_batch(self) -> list[_Request]:
        while not self._waiting:
            self._arrived.clear()
            await self._retire_idle()
            await self._arrived.wait()
        deadline = self._waiting[0].enqueued + self.options.max_wait_ms / 1000
        while self.metrics.queue_rows < self.options.max_batch and (left := deadline - time.monotonic()) > 0:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                break
        batch, rows = [], 0
        while self._waiting and (not batch or rows + self._waiting[0].rows <= self.options.max_batch):
            req = self._waiting.popleft()
            self.metrics.queue_rows -= req.rows
            self.metrics.queue_requests -= 1
            if req.future.done():  # cancelled or timed out while waiting
                continue
            batch.append(req)
            rows += req.rows
        return batch

    async def _dispatch(self) -> None:
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            z = np.concatenate([r.z for r in batch])
            cond = np.concatenate([r.cond for r in batch])
            worker = self._worker
            t0 = time.monotonic()
            self.metrics.in_flight = len(z)
            try:
                images = []  # a single request larger than max_batch runs in several passes
                for i in range(0, len(z), self.options.max_batch):
                    images.append(await worker.draw(z[i:i + self.options.max_batch],
                                                    cond[i:i + self.options.max_batch], self.options.batch_timeout_s))
                out = torch.from_numpy(np.concatenate(images))
            except WorkerFailed as e:
                self.metrics.in_flight = 0
                log.error("generator batch of %d failed: %s", len(z), e)
                self._fail(batch, str(e))
                await self._restart(worker)
                continue
            self.metrics.in_flight = 0
            self._seconds_per_row = 0.8 * self._seconds_per_row + 0.2 * (time.monotonic() - t0) / len(z)
            self.metrics.batch_done(len(z))
            done, start = time.monotonic(), 0
            for req in batch:
                part, start = out[start:start + req.rows], start + req.rows
                if not req.future.done():
                    req.future.set_result(Drawn(part, worker.version))
                    self.metrics.requests += 1
                    self.metrics.latencies.append(done - req.enqueued)
            await self._retire_idle()

    def _fail(self, batch: list[_Request], why: str) -> None:
        for req in batch:
            if not req.future.done():
                req.future.set_exception(GenerationFailed(why))
                self.metrics.failed += 1

    async def _restart(self, failed: WorkerProcess) -> None:
        """Replace a dead worker with a fresh one on the same weights (unless a promotion already did)."""
        failed.kill()
        async with self._swap_lock:
            if self._worker is not failed:
                return
            while True:
                try:
                    self._worker = await WorkerProcess.start(self._weights, self.options.device, self.options.threads,
                                                  self.options.compile)
                    return
                except WorkerFailed as e:
                    log.error("generator restart failed, retrying in 1 s: %s", e)
                    await asyncio.sleep(1)

    async def _retire_idle(self) -> None:
        while self._retired:
            await self._retired.pop().stop()
