"""The generator service on Ray Serve, for when one machine is not enough.

Same API as ``GeneratorService``; the model runs in Serve replicas (one per GPU
when the cluster has GPUs), which batch requests with ``@serve.batch``, so
several bot processes (Discord shards, Telegram) share one pool. Promotion
writes the new weights' path into a small named actor, the registry; every
replica watches it, loads new weights beside the ones it serves and switches
between batches (redeploying would restart replicas and stall requests). A
replica that cannot load them keeps serving the old ones and reports why.
Each replica also holds the sketch model (fixed for the deployment's life);
sketches are batched by their own ``@serve.batch`` method, since they run
through another network.
Needs the ``ray`` extra: ``pip install -e '.[ray]'``.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import numpy as np
import torch

from generator.metrics import ServiceMetrics
from generator.service import DrawingService, Drawn, QueueFull, ServiceOptions, SketchesUnavailable
from generator.worker_process import WorkerFailed

APP_NAME = "moebot-generator"


REGISTRY_NAME = "moebot-weights"
NAMESPACE = "moebot"
WATCH_SECONDS = 0.5


def _registry_class():
    import ray

    @ray.remote(num_cpus=0)
    class WeightsRegistry:
        """Which weights every replica should serve, and what each replica says it serves."""

        def __init__(self, weights: str | None):
            self.weights, self.generation = weights, 0
            self.reports: dict[str, tuple[int, str | None, str | None]] = {}  # replica -> (gen, version, refused)

        def current(self) -> tuple[int, str | None]:
            return self.generation, self.weights

        def set(self, weights: str | None) -> int:
            self.weights, self.generation = weights, self.generation + 1
            return self.generation

        def report(self, replica: str, generation: int, version: str | None, refused: str | None) -> None:
            self.reports[replica] = (generation, version, refused)

        def answers(self, generation: int) -> tuple[int, list[tuple[str | None, str | None]]]:
            """(replicas known, [(version, refused)] of those that have answered ``generation``)."""
            return len(self.reports), [(v, r) for g, v, r in self.reports.values() if g == generation]

    return WeightsRegistry


def _deployment(options: ServiceOptions, gpus: float):
    """The Serve deployment class, built lazily so importing this module does not import Ray."""
    import ray
    from ray import serve

    @serve.deployment(name="FaceGenerator", ray_actor_options={"num_gpus": gpus, "num_cpus": 1},
                      max_ongoing_requests=options.max_batch, max_queued_requests=options.queue_limit)
    class FaceGenerator:
        def __init__(self, threads: int, device: str, sketch_weights: str | None):
            from generator.sampler import FaceSampler, SketchSampler

            if threads:
                torch.set_num_threads(threads)
            self.device = device
            self.registry = ray.get_actor(REGISTRY_NAME, namespace=NAMESPACE)
            self.generation, self.weights = ray.get(self.registry.current.remote())
            self.sampler = FaceSampler.load(self.weights, device)
            try:
                self.sketcher, self.sketch_error = SketchSampler.load(sketch_weights, device), None
            except Exception as e:  # faces are still served; sketch requests are refused with the reason
                self.sketcher = None
                self.sketch_error = f"cannot load {sketch_weights or 'the bundled sketch weights'}: " \
                                    f"{type(e).__name__}: {e}"
            self.replica = serve.get_replica_context().replica_id.unique_id
            self.registry.report.remote(self.replica, self.generation, self.sampler.version, None)
            self.watcher: asyncio.Task | None = None  # started on the replica's event loop by the first call

        def _ensure_watching(self) -> None:
            if self.watcher is None:
                self.watcher = asyncio.create_task(self._watch())

        async def _watch(self) -> None:
            while True:
                await asyncio.sleep(WATCH_SECONDS)
                generation, weights = await self.registry.current.remote()
                if generation == self.generation:
                    continue
                refused = None
                if weights != self.weights:
                    try:
                        self.sampler = await asyncio.to_thread(self._load, weights)
                        self.weights = weights
                    except Exception as e:  # a bad file is an answer, not a dead replica
                        refused = f"{type(e).__name__}: {e}"
                self.generation = generation
                await self.registry.report.remote(self.replica, generation, self.sampler.version, refused)

        def _load(self, weights: str | None):
            """Load beside the serving model and check it draws; the swap is the caller's assignment."""
            from generator.sampler import FaceSampler

            new = FaceSampler.load(weights, self.device)
            probe = new.draw(torch.zeros(1, new.z_dim), torch.ones(1, 22) / 11)
            if probe.shape != (1, 3, 64, 64):
                raise ValueError(f"unexpected output shape {tuple(probe.shape)}")
            return new

        async def info(self) -> dict:
            self._ensure_watching()
            sketcher = self.sketcher
            return {"version": self.sampler.version, "z_dim": self.sampler.z_dim,
                    "sketch_version": sketcher.version if sketcher else None,
                    "sketch_z_dim": sketcher.z_dim if sketcher else 0, "sketch_error": self.sketch_error}

        @serve.batch(max_batch_size=options.max_batch, batch_wait_timeout_s=options.max_wait_ms / 1000,
                     batch_size_fn=lambda items: sum(len(item[0]) for item in items))
        async def draw(self, items: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, str]]:
            self._ensure_watching()
            return await _run_batch(self.sampler, items)  # a swap during this batch does not mix versions

        @serve.batch(max_batch_size=options.max_batch, batch_wait_timeout_s=options.max_wait_ms / 1000,
                     batch_size_fn=lambda items: sum(len(item[0]) for item in items))
        async def sketch(self, items: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
                         ) -> list[tuple[np.ndarray, str]]:
            return await _run_batch(self.sketcher, items)

    return FaceGenerator


async def _run_batch(sampler, items: list[tuple[np.ndarray, ...]]) -> list[tuple[np.ndarray, str]]:
    """Draw the requests of one ``@serve.batch`` call in one pass; each gets its rows back, with the version."""
    arrays = [torch.from_numpy(np.concatenate(parts)) for parts in zip(*items)]
    images = await asyncio.to_thread(lambda: sampler.draw(*arrays).numpy())
    out, start = [], 0
    for item in items:
        out.append((images[start:start + len(item[0])], sampler.version))
        start += len(item[0])
    return out


class RayGeneratorService(DrawingService):
    def __init__(self, weights: str | Path | None = None, options: ServiceOptions = ServiceOptions(),
                 address: str | None = None, replicas: int = 1, sketch_weights: str | Path | None = None):
        self.options = options
        self.metrics = ServiceMetrics()
        self._weights = str(weights) if weights else None
        self._sketch_weights = str(sketch_weights) if sketch_weights else None  # None: the bundled ones
        self._address = address
        self._replicas = replicas
        self._handle = None
        self._registry = None
        self._info: dict = {}

    @property
    def z_dim(self) -> int:
        return self._info["z_dim"]

    @property
    def version(self) -> str:
        return self._info.get("version", "not started")

    @property
    def sketch_version(self) -> str | None:
        return self._info.get("sketch_version")

    @property
    def sketch_z_dim(self) -> int:
        return self._info["sketch_z_dim"]

    def _deploy(self) -> None:
        import ray
        from ray import serve

        if not ray.is_initialized():
            ray.init(address=self._address, include_dashboard=False, log_to_driver=False)
        serve.start(proxy_location="Disabled")  # the bot calls through handles; no HTTP ingress needed
        self._registry = _registry_class().options(
            name=REGISTRY_NAME, namespace=NAMESPACE, get_if_exists=True).remote(self._weights)
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
        app = _deployment(self.options, gpus).options(num_replicas=self._replicas).bind(
            self.options.threads, "cuda" if gpus else "cpu", self._sketch_weights)
        self._handle = serve.run(app, name=APP_NAME, route_prefix=None)

    async def start(self) -> "RayGeneratorService":
        await asyncio.to_thread(self._deploy)
        self._info = await self._handle.info.remote()
        return self

    async def close(self) -> None:
        from ray import serve

        await asyncio.to_thread(serve.delete, APP_NAME)

    async def promote(self, weights: str | Path, timeout: float = 300.0) -> str:
        """Point every replica at ``weights`` and wait until all have answered; WorkerFailed if any refused."""
        before, old_weights = self.version, self._weights
        generation = await self._registry.set.remote(str(weights))
        deadline = time.monotonic() + timeout
        while True:
            known, answers = await self._registry.answers.remote(generation)
            if len(answers) >= known:
                break
            if time.monotonic() > deadline:
                raise WorkerFailed(f"replicas did not load {weights} within {timeout:g} s")
            await asyncio.sleep(0.1)
        refused = [r for _, r in answers if r]
        if refused:
            await self._registry.set.remote(old_weights)  # replicas already serve these: a no-op for them
            raise WorkerFailed(f"refused {weights}: {refused[0]}; still serving {before}")
        self._weights = str(weights)
        self._info = {**self._info, "version": answers[0][0]}
        return answers[0][0]

    async def draw(self, z: torch.Tensor, cond: torch.Tensor, timeout: float | None = None) -> Drawn:
        return await self._call(self._handle.draw, (z.float().numpy(), cond.float().numpy()), timeout)

    async def draw_sketches(self, sketch: torch.Tensor, z: torch.Tensor, cond: torch.Tensor,
                            timeout: float | None = None) -> Drawn:
        if self.sketch_version is None:
            raise SketchesUnavailable(self._info.get("sketch_error") or "the service is not started")
        return await self._call(self._handle.sketch,
                                (sketch.float().numpy(), z.float().numpy(), cond.float().numpy()), timeout)

    async def _call(self, method, item: tuple[np.ndarray, ...], timeout: float | None) -> Drawn:
        """One request to a batched replica method, with the queue's refusal and the metrics."""
        from ray.serve.exceptions import BackPressureError

        rows = len(item[0])
        if self.metrics.encoding_rows + rows > self.options.queue_limit:  # Serve's queue counts only drawing
            raise self._busy(rows)
        t0 = time.monotonic()
        response = method.remote(item)
        try:
            images, version = await asyncio.wait_for(response, timeout or self.options.request_timeout_s)
        except BackPressureError:
            raise self._busy(rows) from None
        except (asyncio.TimeoutError, asyncio.CancelledError):
            response.cancel()
            raise
        self.metrics.requests += 1
        self.metrics.latencies.append(time.monotonic() - t0)
        self.metrics.faces_done(rows)  # batch sizes are the replicas' business (Serve's own metrics)
        return Drawn(torch.from_numpy(images), version)

    def _busy(self, rows: int) -> QueueFull:
        """The refusal of a request of ``rows`` faces, counted, with a guess of when there is room."""
        self.metrics.rejected += 1
        per_row = (self.metrics.latencies[-1] if self.metrics.latencies else 0.05) / max(1, rows)
        return QueueFull(max(1, math.ceil(self.options.queue_limit * per_row)))
