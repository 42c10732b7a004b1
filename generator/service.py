"""The generator service: drawing requests from many chats, gathered into batches, run off the event loop.

Each request (a face, a grid, a morph) is a list of rows (latent, condition);
a sketch request's rows also carry the drawing. The dispatcher waits up to
``max_wait_ms`` after the first waiting request for more, packs up to
``max_batch`` rows into one batch and runs it on a worker process. The queue
is bounded: a request that would overflow it is refused at once with an
estimate of when to retry. Promoting new weights starts a second worker beside
the first and switches between batches, so no request fails or waits for the
swap; each result names the version that drew it.

Sketch rows go through another network than face rows, so a batch holds one
kind: the oldest waiting request decides which, and requests of the other kind
keep their place for the next batch. Mixed batches would save nothing (each
network's time grows with its own rows) and would tie a face's latency to the
slower sketch network.

Turning drawn faces into files (PNG, and GIF: a morph's quantisation is the
costliest step of the whole request) runs on the service's own encoder
threads, and faces waiting for it count against ``queue_limit`` as faces
waiting to be drawn do: a backlog of either turns new requests away.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import math
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import numpy as np
import torch
from PIL import Image

from generator.images import grid, to_pil
from generator.metrics import ServiceMetrics
from generator.sampler import face_inputs, mode_rows, morph_inputs
from generator.worker_process import WorkerFailed, WorkerProcess

log = logging.getLogger(__name__)

ENCODERS = ThreadPoolExecutor(2, thread_name_prefix="moebot-encode")  # DrawingService.encode's threads
Drawing = TypeVar("Drawing")  # what a request drew, as ``encode`` takes it


class QueueFull(Exception):
    """Too much is waiting; ``retry_after`` is a fair guess of the seconds until there is room."""

    def __init__(self, retry_after: int):
        super().__init__(f"busy, try again in {retry_after} s")
        self.retry_after = retry_after


class GenerationFailed(Exception):
    """The worker failed on this request's batch (it has been restarted); the request may be retried."""


class SketchesUnavailable(Exception):
    """No sketch model is loaded (missing or refused weights); ``str(e)`` says why."""


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
    restart_backoff_s: float = 1.0       # first wait after no weights would load in a fresh worker; doubles
    restart_backoff_max_s: float = 60.0  # up to this


@dataclass(frozen=True)
class Drawn:
    images: torch.Tensor  # (B, 3, 64, 64) uint8
    version: str


@dataclass(eq=False)
class _Request:
    z: np.ndarray
    cond: np.ndarray
    sketch: np.ndarray | None  # (B, 1, 64, 64) for the sketch network, None for the face generator
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)

    @property
    def rows(self) -> int:
        return len(self.z)


class DrawingService(abc.ABC):
    """One generator backend (in-process worker or Ray Serve): ``draw`` and ``draw_sketches`` plus what is
    built on them, faces by seed, the ACGAN grids, morphs and sketches, so the bot works the same against
    either."""

    metrics: ServiceMetrics
    options: ServiceOptions

    @property
    @abc.abstractmethod
    def z_dim(self) -> int: ...

    @property
    @abc.abstractmethod
    def version(self) -> str: ...

    @property
    @abc.abstractmethod
    def sketch_version(self) -> str | None:
        """The sketch model's version; None when there is none (``draw_sketches`` says why)."""

    @property
    @abc.abstractmethod
    def sketch_z_dim(self) -> int: ...

    @abc.abstractmethod
    async def start(self) -> "DrawingService": ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def promote(self, weights: str | Path) -> str:
        """Serve ``weights`` from now on, without failing or stalling requests; WorkerFailed keeps the old.
        Promoting the weights that serve already changes nothing."""

    @abc.abstractmethod
    async def draw(self, z: torch.Tensor, cond: torch.Tensor, timeout: float | None = None) -> Drawn:
        """One face per (latent, condition) row; QueueFull at once when too much is waiting."""

    @abc.abstractmethod
    async def draw_sketches(self, sketch: torch.Tensor, z: torch.Tensor, cond: torch.Tensor,
                            timeout: float | None = None) -> Drawn:
        """One face per (sketch, latent, condition) row; QueueFull as ``draw``, SketchesUnavailable at once
        when no sketch model is loaded."""

    async def __aenter__(self) -> "DrawingService":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def encode(self, encode: Callable[[Drawing], bytes], drawn: Drawing, rows: int) -> bytes:
        """``encode(drawn)`` (drawn faces to a file) on the encoder threads, its ``rows`` faces counted as
        waiting until it is done, so that ``queue_limit`` bounds encoding too."""
        self.metrics.encoding_rows += rows
        try:
            return await asyncio.get_running_loop().run_in_executor(ENCODERS, encode, drawn)
        finally:
            self.metrics.encoding_rows -= rows

    async def faces(self, hair: Sequence[int], eye: Sequence[int], seeds: Sequence[int],
                    timeout: float | None = None) -> Drawn:
        return await self.draw(*face_inputs(hair, eye, seeds, self.z_dim), timeout)

    async def sketch(self, sketches: torch.Tensor, hair: Sequence[int], eye: Sequence[int], seeds: Sequence[int],
                     timeout: float | None = None) -> Drawn:
        """One face per (B, 1, 64, 64) sketch (ink -1 on paper +1), in its colours, from its seed's latent."""
        return await self.draw_sketches(sketches, *face_inputs(hair, eye, seeds, self.sketch_z_dim), timeout)

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
    def __init__(self, weights: str | Path | None = None, options: ServiceOptions = ServiceOptions(),
                 sketch_weights: str | Path | None = None):
        self.options = options
        self.metrics = ServiceMetrics()
        self._weights = weights
        self._sketch_weights = sketch_weights  # None: the bundled sketch model
        self._worker: WorkerProcess | None = None
        self._loaded: list[str | Path | None] = []  # distinct weights that loaded here, oldest first: fallbacks
        self._retired: list[WorkerProcess] = []
        self._waiting: deque[_Request] = deque()
        self._arrived = asyncio.Event()
        self._dispatcher: asyncio.Task | None = None
        self._swap_lock = asyncio.Lock()
        self._seconds_per_row = 0.01  # moving estimate, for retry-after hints

    # -- lifecycle ---------------------------------------------------------------------------------------
    async def start(self) -> "GeneratorService":
        self._worker = await self._start_worker(self._weights)
        self._remember(self._weights)
        if self._worker.sketch_version is None:
            log.warning("no sketch model, /sketch will be refused: %s", self._worker.sketch_error)
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

    @property
    def sketch_version(self) -> str | None:
        return self._worker.sketch_version if self._worker else None

    @property
    def sketch_z_dim(self) -> int:
        assert self._worker, "start() the service first"
        return self._worker.sketch_z_dim

    async def _start_worker(self, weights: str | Path | None) -> WorkerProcess:
        return await WorkerProcess.start(weights, self.options.device, self.options.threads, self.options.compile,
                                         sketch_weights=self._sketch_weights)

    # -- requests ----------------------------------------------------------------------------------------
    async def draw(self, z: torch.Tensor, cond: torch.Tensor, timeout: float | None = None) -> Drawn:
        """Draw one face per row. QueueFull at once if the queue is full; TimeoutError after ``timeout``."""
        return await self._enqueue(z, cond, None, timeout)

    async def draw_sketches(self, sketch: torch.Tensor, z: torch.Tensor, cond: torch.Tensor,
                            timeout: float | None = None) -> Drawn:
        if self.sketch_version is None:
            raise SketchesUnavailable(self._worker.sketch_error if self._worker else "the service is not started")
        return await self._enqueue(z, cond, sketch.float().numpy(), timeout)

    async def _enqueue(self, z: torch.Tensor, cond: torch.Tensor, sketch: np.ndarray | None,
                       timeout: float | None) -> Drawn:
        rows = len(z)
        waiting = self.metrics.queue_rows + self.metrics.encoding_rows
        if waiting + rows > self.options.queue_limit:
            self.metrics.rejected += 1
            raise QueueFull(max(1, math.ceil(waiting * self._seconds_per_row)))
        req = _Request(z.float().numpy(), cond.float().numpy(), sketch, asyncio.get_running_loop().create_future())
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
            if self._worker is not None and self._worker.alive() and _same(weights, self._weights):
                return self._worker.version  # e.g. the pointer's change after this process promoted it itself
            new = await self._start_worker(weights)
            self._remember(weights)
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
        batch, rows, other_kind = [], 0, deque()
        while self._waiting:
            req = self._waiting.popleft()
            if batch and (req.sketch is None) != (batch[0].sketch is None) and not req.future.done():
                other_kind.append(req)  # keeps its place for a later batch
                continue
            if batch and rows + req.rows > self.options.max_batch:
                self._waiting.appendleft(req)
                break
            self.metrics.queue_rows -= req.rows
            self.metrics.queue_requests -= 1
            if req.future.done():  # cancelled or timed out while waiting
                continue
            batch.append(req)
            rows += req.rows
        self._waiting.extendleft(reversed(other_kind))
        return batch

    async def _dispatch(self) -> None:
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            z = np.concatenate([r.z for r in batch])
            cond = np.concatenate([r.cond for r in batch])
            sketch = np.concatenate([r.sketch for r in batch]) if batch[0].sketch is not None else None
            worker = self._worker
            if not worker.alive():  # it died while idle: a fresh one draws this batch, rather than failing it
                log.warning("the generator worker died while idle (exit code %s); starting a fresh one",
                            worker.process.exitcode)
                await self._restart(worker)
                worker = self._worker
            t0 = time.monotonic()
            self.metrics.in_flight = len(z)
            try:
                images = []  # a single request larger than max_batch runs in several passes
                for i in range(0, len(z), step := self.options.max_batch):
                    images.append(await worker.draw(z[i:i + step], cond[i:i + step], self.options.batch_timeout_s,
                                                    None if sketch is None else sketch[i:i + step]))
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
                    req.future.set_result(Drawn(part, worker.version if sketch is None else worker.sketch_version))
                    self.metrics.requests += 1
                    self.metrics.latencies.append(done - req.enqueued)
            await self._retire_idle()

    def _fail(self, batch: list[_Request], why: str) -> None:
        for req in batch:
            if not req.future.done():
                req.future.set_exception(GenerationFailed(why))
                self.metrics.failed += 1

    async def _restart(self, failed: WorkerProcess) -> None:
        """Replace a dead worker: on the same weights, else (logged) on the newest other weights that loaded here
        before; when none loads, try again after a wait that doubles up to ``restart_backoff_max_s``. A promotion
        meanwhile ends it."""
        failed.kill()
        delay = self.options.restart_backoff_s
        while True:
            async with self._swap_lock:
                if self._worker is not failed:
                    return
                for weights in self._restart_candidates():
                    try:
                        self._worker = await self._start_worker(weights)
                    except WorkerFailed as e:
                        log.error("the generator worker did not restart on %s: %s", weights or "the bundled weights",
                                  e)
                        continue
                    if not _same(weights, self._weights):
                        log.error("the generator fell back to %s (%s): %s no longer loads", weights or
                                  "the bundled weights", self._worker.version, self._weights or "the bundled weights")
                        self._weights = weights
                    return
            log.error("no generator weights load; trying again in %g s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.options.restart_backoff_max_s)

    def _remember(self, weights: str | Path | None) -> None:
        """Note weights that loaded, as the newest fallback for restarts."""
        self._loaded = [w for w in self._loaded if not _same(w, weights)] + [weights]

    def _restart_candidates(self) -> list[str | Path | None]:
        """The weights serving now, then every other that loaded here, newest first."""
        return [self._weights, *(w for w in reversed(self._loaded) if not _same(w, self._weights))]

    async def _retire_idle(self) -> None:
        while self._retired:
            await self._retired.pop().stop()


def _same(a: str | Path | None, b: str | Path | None) -> bool:
    """Whether two weights arguments name the same file (None: the bundled weights)."""
    return (a is None) == (b is None) and (a is None or Path(a) == Path(b))
