"""The generator service: drawing requests from many chats, gathered into batches, run off the event loop.

Each request carries its model kind (generator/model_kinds.py: the face
generator, the sketch model, the 2x upscaler) and rows of that kind's inputs
(a face's latent and condition; a sketch's drawing besides; a face to enlarge).
The worker holds one model per kind. The dispatcher waits up to
``max_wait_ms`` after the first waiting request for more, packs up to
``max_batch`` rows into one batch and runs it on a worker process. The queue
is bounded: a request that would overflow it is refused at once with an
estimate of when to retry. Promoting new weights starts a second worker beside
the first and switches between batches, so no request fails or waits for the
swap, whichever kind is promoted; each result names the version that drew it.

Each kind runs through its own network, so a batch holds one kind: the oldest
waiting request decides which, and requests of other kinds keep their place for
the next batch. Mixed batches would save nothing (each network's time grows with
its own rows) and would tie a face's latency to a slower network.

Faces shown at 128 px or more go through the active upscaler when there is one
(a second request, of the upscaler kind), exactly as ``moebot sample --size 128
--upscaler`` draws them; without one they are enlarged with Lanczos as before.

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
from typing import Callable, Mapping, Sequence, TypeVar

import numpy as np
import torch

from generator.images import to_pil
from generator.metrics import ServiceMetrics
from generator.model_kinds import KINDS, Loaded, Weights, weights_map
from generator.requests import (FaceRequest, GenerationFailed, GridRequest, ModelUnavailable, MorphRequest, Pictures,
                                QueueFull, Request)
from generator.sampler import face_inputs, mode_rows, morph_inputs, upscales
from generator.worker_process import WorkerFailed, WorkerProcess, describe

log = logging.getLogger(__name__)

ENCODERS = ThreadPoolExecutor(2, thread_name_prefix="moebot-encode")  # DrawingService.encode's threads
Drawing = TypeVar("Drawing")  # what a request drew, as ``encode`` takes it


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
    upscale: bool = True  # faces shown at 128 px or more go through the active upscaler; False: never


@dataclass(frozen=True)
class Drawn:
    images: torch.Tensor  # (B, 3, 64, 64) uint8; (B, 3, 128, 128) from the upscaler
    version: str


@dataclass(eq=False)
class _Request:
    kind: str
    arrays: tuple[np.ndarray, ...]  # the kind's inputs, one row per output
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)

    @property
    def rows(self) -> int:
        return len(self.arrays[0])


class DrawingService(abc.ABC):
    """One generator backend (in-process worker or Ray Serve): ``run`` draws rows of any model kind; faces by
    seed, the ACGAN grids, morphs and sketches are built on it, so the bot works the same against either."""

    metrics: ServiceMetrics
    options: ServiceOptions

    @property
    @abc.abstractmethod
    def models(self) -> Mapping[str, Loaded]:
        """What each kind serves now; a kind that is not loaded is absent (``missing`` says why)."""

    @abc.abstractmethod
    def missing(self, kind: str) -> str:
        """Why ``kind`` is not served."""

    @abc.abstractmethod
    async def start(self) -> "DrawingService": ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def promote(self, weights: str | Path | None, kind: str = "face") -> str:
        """Serve ``weights`` for ``kind`` from now on, without failing or stalling requests; WorkerFailed keeps the
        old. Promoting the weights that serve already changes nothing. None: the kind's bundled weights, or no
        model of the kind (a kind that bundles none, such as the upscaler); the version then is "none"."""

    @abc.abstractmethod
    async def _submit(self, kind: str, arrays: tuple[np.ndarray, ...], timeout: float | None) -> Drawn:
        """Draw checked rows of ``kind`` (see ``run``)."""

    @property
    def version(self) -> str:
        """The face generator's version."""
        face = self.models.get("face")
        return face.version if face else "not started"

    @property
    def z_dim(self) -> int:
        return self.models["face"].z_dim

    def serves(self, kind: str) -> bool:
        return kind in self.models

    async def run(self, kind: str, *inputs: torch.Tensor, timeout: float | None = None) -> Drawn:
        """One output per row of ``inputs`` (the kind's inputs, in order) by the kind's model; QueueFull at once
        when too much is waiting, ModelUnavailable at once when no model of the kind is loaded."""
        loaded = self.models.get(kind)
        if loaded is None:
            raise ModelUnavailable(self.missing(kind))
        arrays = tuple(spec.rows(x, loaded.z_dim) for spec, x in zip(KINDS[kind].inputs, inputs, strict=True))
        return await self._submit(kind, arrays, timeout)

    async def draw(self, z: torch.Tensor, cond: torch.Tensor, timeout: float | None = None) -> Drawn:
        """One face per (latent, condition) row."""
        return await self.run("face", z, cond, timeout=timeout)

    async def draw_sketches(self, sketch: torch.Tensor, z: torch.Tensor, cond: torch.Tensor,
                            timeout: float | None = None) -> Drawn:
        """One face per (sketch, latent, condition) row."""
        return await self.run("sketch", sketch, z, cond, timeout=timeout)

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
                    timeout: float | None = None, size: int = 64) -> Drawn:
        """One face per (hair, eye, seed), for showing at ``size`` px (see ``sharpen``)."""
        return await self.sharpen(await self.draw(*face_inputs(hair, eye, seeds, self.z_dim), timeout), size, timeout)

    async def sharpen(self, drawn: Drawn, size: int, timeout: float | None = None) -> Drawn:
        """Faces as ``FaceSampler.enlarge`` shows them at ``size`` px: the active upscaler's 128 px faces when
        ``size`` >= 128, the faces are 64 px and an upscaler is active, else the faces as they are (a 128 px face
        model's own); the caller resizes the rest of the way with Lanczos (``to_pil(face, size)``), as ``enlarge``
        does."""
        if not upscales(drawn.images.shape[-1], size) or not self.options.upscale or not self.serves("upscaler"):
            return drawn
        up = await self.run("upscaler", drawn.images, timeout=timeout)
        return Drawn(up.images, f"{drawn.version}+{up.version}")

    async def sketch(self, sketches: torch.Tensor, hair: Sequence[int], eye: Sequence[int], seeds: Sequence[int],
                     timeout: float | None = None) -> Drawn:
        """One face per (B, 1, 64, 64) sketch (ink -1 on paper +1), in its colours, from its seed's latent."""
        loaded = self.models.get("sketch")
        if loaded is None:
            raise ModelUnavailable(self.missing("sketch"))
        return await self.draw_sketches(sketches, *face_inputs(hair, eye, seeds, loaded.z_dim), timeout)

    async def pictures(self, request: Request, timeout: float | None = None) -> Pictures:
        """A typed request drawn: its pictures at the request's size (made on the encoder threads, counted as
        waiting like encoding) and the version that drew them; QueueFull / ModelUnavailable as ``run``."""
        columns = 1
        if isinstance(request, FaceRequest):
            drawn = await self.faces(request.hair, request.eye, request.seeds, timeout, request.size)
        elif isinstance(request, GridRequest):
            hs, es, ss, columns = mode_rows(request.mode, request.hair, request.eye, request.seed, request.n)
            drawn = await self.faces(hs, es, ss, timeout, request.size)
        elif isinstance(request, MorphRequest):
            drawn = await self.draw(*morph_inputs(request.start, request.end, request.frames, self.z_dim), timeout)
        else:  # a face like any other (the encoder path's is the face generator's): sharpened the same way
            drawn = await self.sharpen(await self.sketch(torch.from_numpy(request.sketch)[None, None], [request.hair],
                                                         [request.eye], [request.seed], timeout), request.size, timeout)
        images = await self.encode(lambda d: tuple(to_pil(img, request.size) for img in d.images), drawn,
                                   len(drawn.images))
        return Pictures(images, drawn.version, columns)


class GeneratorService(DrawingService):
    def __init__(self, weights: Weights = None, options: ServiceOptions = ServiceOptions()):
        self.options = options
        self.metrics = ServiceMetrics()
        self._weights = weights_map(weights)  # by kind; None: the kind's bundled weights
        self._worker: WorkerProcess | None = None
        self._loaded: list[dict[str, str | None]] = []  # distinct weights that loaded here, oldest first: fallbacks
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
        for kind, why in self._worker.missing.items():
            if self._weights[kind] or KINDS[kind].bundled:  # there were weights to load
                log.warning("no %s model, its requests will be refused: %s", kind, why)
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
    def models(self) -> Mapping[str, Loaded]:
        return self._worker.models if self._worker else {}

    def missing(self, kind: str) -> str:
        return self._worker.missing.get(kind, f"no {kind} model") if self._worker else "the service is not started"

    async def _start_worker(self, weights: dict[str, str | None], strict: tuple[str, ...] = ()) -> WorkerProcess:
        return await WorkerProcess.start(weights, self.options.device, self.options.threads, self.options.compile,
                                         strict=strict)

    # -- requests ----------------------------------------------------------------------------------------
    async def _submit(self, kind: str, arrays: tuple[np.ndarray, ...], timeout: float | None) -> Drawn:
        """Queue the rows. QueueFull at once if the queue is full; TimeoutError after ``timeout``."""
        rows = len(arrays[0])
        waiting = self.metrics.queue_rows + self.metrics.encoding_rows
        if waiting + rows > self.options.queue_limit:
            self.metrics.rejected += 1
            raise QueueFull(max(1, math.ceil(waiting * self._seconds_per_row)))
        req = _Request(kind, arrays, asyncio.get_running_loop().create_future())
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
    async def promote(self, weights: str | Path, kind: str = "face") -> str:
        """Load ``weights`` for ``kind`` in a new worker beside the serving one (the other kinds as they are),
        then switch; WorkerFailed leaves the old."""
        async with self._swap_lock:
            wanted = {**self._weights, kind: str(weights) if weights else None}
            worker = self._worker
            if worker is not None and worker.alive() and (kind in worker.models or not weights) and \
                    _same(wanted, self._weights):
                return served_version(worker.models, kind)  # e.g. the pointer's change after this process made it
            new = await self._start_worker(wanted, strict=(kind,) if weights or KINDS[kind].bundled else ())
            self._remember(wanted)
            old, self._worker, self._weights = self._worker, new, wanted
            if old is not None:
                self._retired.append(old)  # stopped by the dispatcher once its batch (if any) is done
                self._arrived.set()
            log.info("the %s model switched to %s", kind, served_version(new.models, kind))
            return served_version(new.models, kind)

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
            if batch and req.kind != batch[0].kind and not req.future.done():
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
            kind = batch[0].kind
            arrays = [np.concatenate(parts) for parts in zip(*(r.arrays for r in batch))]
            rows = len(arrays[0])
            worker = self._worker
            if not worker.alive():  # it died while idle: a fresh one draws this batch, rather than failing it
                log.warning("the generator worker died while idle (exit code %s); starting a fresh one",
                            worker.process.exitcode)
                await self._restart(worker)
                worker = self._worker
            if kind not in worker.models:  # a restart left it out: its weights no longer load
                self._fail(batch, self.missing(kind), ModelUnavailable)
                continue
            t0 = time.monotonic()
            self.metrics.in_flight = rows
            try:
                images = []  # a single request larger than max_batch runs in several passes
                for i in range(0, rows, step := self.options.max_batch):
                    images.append(await worker.draw(kind, tuple(a[i:i + step] for a in arrays),
                                                    self.options.batch_timeout_s))
                out = torch.from_numpy(np.concatenate(images))
            except WorkerFailed as e:
                self.metrics.in_flight = 0
                log.error("generator batch of %d failed: %s", rows, e)
                self._fail(batch, str(e))
                await self._restart(worker)
                continue
            self.metrics.in_flight = 0
            self._seconds_per_row = 0.8 * self._seconds_per_row + 0.2 * (time.monotonic() - t0) / rows
            self.metrics.batch_done(rows)
            done, start = time.monotonic(), 0
            for req in batch:
                part, start = out[start:start + req.rows], start + req.rows
                if not req.future.done():
                    req.future.set_result(Drawn(part, worker.models[kind].version))
                    self.metrics.requests += 1
                    self.metrics.latencies.append(done - req.enqueued)
            await self._retire_idle()

    def _fail(self, batch: list[_Request], why: str, error: type[Exception] = GenerationFailed) -> None:
        for req in batch:
            if not req.future.done():
                req.future.set_exception(error(why))
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
                        log.error("the generator worker did not restart on %s: %s", describe(weights), e)
                        continue
                    if not _same(weights, self._weights):
                        log.error("the generator fell back to %s (%s): %s no longer loads", describe(weights),
                                  self._worker.version, describe(self._weights))
                        self._weights = weights
                    return
            log.error("no generator weights load; trying again in %g s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.options.restart_backoff_max_s)

    def _remember(self, weights: dict[str, str | None]) -> None:
        """Note weights that loaded, as the newest fallback for restarts."""
        self._loaded = [w for w in self._loaded if not _same(w, weights)] + [weights]

    def _restart_candidates(self) -> list[dict[str, str | None]]:
        """The weights serving now, then every other that loaded here, newest first."""
        return [self._weights, *(w for w in reversed(self._loaded) if not _same(w, self._weights))]

    async def _retire_idle(self) -> None:
        while self._retired:
            await self._retired.pop().stop()


def served_version(models: Mapping[str, Loaded], kind: str) -> str:
    """The version serving ``kind``, or "none"."""
    return models[kind].version if kind in models else "none"


def _same(a: Mapping[str, str | None], b: Mapping[str, str | None]) -> bool:
    """Whether two sets of weights by kind name the same files (None: the bundled weights)."""
    return all((a[k] is None) == (b[k] is None) and (a[k] is None or Path(a[k]) == Path(b[k])) for k in KINDS)
