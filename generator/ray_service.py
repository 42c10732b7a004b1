"""The generator service on Ray Serve, for when one machine is not enough.

Same API as ``GeneratorService``; the model runs in Serve replicas (one per GPU
when the cluster has GPUs), which batch requests with ``@serve.batch``, so
several bot processes (Discord shards, Telegram) share one pool. Each replica
holds one model per kind (generator/model_kinds.py), and each kind is batched by
a ``@serve.batch`` method of its own, named after the kind, since each runs
through its own network. Promotion writes the new weights' path for its kind
into a small named actor, the registry; every replica watches it, loads new
weights beside the ones it serves and switches between batches (redeploying
would restart replicas and stall requests). A replica that cannot load them
keeps serving the old ones and reports why.
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
from generator.model_kinds import KINDS, Loaded, Weights, weights_map
from generator.service import DrawingService, Drawn, QueueFull, ServiceOptions, served_version
from generator.worker_process import WorkerFailed

APP_NAME = "moebot-generator"


REGISTRY_NAME = "moebot-weights"
NAMESPACE = "moebot"
WATCH_SECONDS = 0.5


def _registry_class():
    import ray

    @ray.remote(num_cpus=0)
    class WeightsRegistry:
        """Which weights (by kind) every replica should serve, and what each replica says it serves."""

        def __init__(self, weights: dict[str, str | None]):
            self.weights, self.generation = weights, 0
            self.reports: dict[str, tuple[int, dict, str | None]] = {}  # replica -> (gen, models, refused)

        def current(self) -> tuple[int, dict[str, str | None]]:
            return self.generation, self.weights

        def set(self, kind: str, weights: str | None) -> int:
            self.weights, self.generation = {**self.weights, kind: weights}, self.generation + 1
            return self.generation

        def report(self, replica: str, generation: int, models: dict, refused: str | None) -> None:
            self.reports[replica] = (generation, models, refused)

        def answers(self, generation: int) -> tuple[int, list[tuple[dict, str | None]]]:
            """(replicas known, [(models, refused)] of those that have answered ``generation``)."""
            return len(self.reports), [(m, r) for g, m, r in self.reports.values() if g == generation]

    return WeightsRegistry


def _deployment(options: ServiceOptions, gpus: float):
    """The Serve deployment class, built lazily so importing this module does not import Ray."""
    import ray
    from ray import serve

    class FaceGenerator:
        def __init__(self, threads: int, device: str):
            from generator.model_check import load_all

            if threads:
                torch.set_num_threads(threads)
            self.device = device
            self.registry = ray.get_actor(REGISTRY_NAME, namespace=NAMESPACE)
            self.generation, self.weights = ray.get(self.registry.current.remote())
            self.samplers, self.missing = load_all(self.weights, (), device)  # faces must load; others may not
            self.replica = serve.get_replica_context().replica_id.unique_id
            self.registry.report.remote(self.replica, self.generation, self._models(), None)
            self.watcher: asyncio.Task | None = None  # started on the replica's event loop by the first call

        def _models(self) -> dict[str, tuple[str, int]]:
            return {kind: (s.version, s.z_dim) for kind, s in self.samplers.items()}

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
                changed = {kind: w for kind, w in weights.items() if w != self.weights.get(kind)}
                try:
                    loaded = await asyncio.to_thread(self._load, changed)
                    self.samplers = {k: s for k, s in {**self.samplers, **loaded}.items() if s is not None}
                    self.missing = {k: why for k, why in self.missing.items() if k not in changed}
                    self.weights = weights
                except Exception as e:  # a bad file is an answer, not a dead replica
                    refused = f"{type(e).__name__}: {e}"
                self.generation = generation
                await self.registry.report.remote(self.replica, generation, self._models(), refused)

        def _load(self, weights: dict[str, str | None]) -> dict:
            """Load each kind's new weights beside the serving model and check them (None for a kind left with
            nothing to serve); the swap is the caller's assignment."""
            from generator.model_check import load_kind

            return {kind: load_kind(kind, w, self.device) for kind, w in weights.items()}

        async def info(self) -> dict:
            self._ensure_watching()
            return {"models": self._models(), "missing": self.missing}

    for kind in KINDS:  # one batched method per kind, named after it: a new kind needs nothing here
        setattr(FaceGenerator, kind, serve.batch(
            max_batch_size=options.max_batch, batch_wait_timeout_s=options.max_wait_ms / 1000,
            batch_size_fn=lambda items: sum(len(item[0]) for item in items))(_batched(kind)))
    return serve.deployment(name="FaceGenerator", ray_actor_options={"num_gpus": gpus, "num_cpus": 1},
                            max_ongoing_requests=options.max_batch, max_queued_requests=options.queue_limit
                            )(FaceGenerator)


def _batched(kind: str):
    """The replica method that draws one ``@serve.batch`` call of ``kind``."""
    async def method(self, items: list[tuple[np.ndarray, ...]]) -> list[tuple[np.ndarray, str]]:
        self._ensure_watching()
        return await _run_batch(self.samplers[kind], items)  # a swap during this batch does not mix versions
    method.__name__ = method.__qualname__ = kind  # Serve finds a batched method by its name
    return method


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
    def __init__(self, weights: Weights = None, options: ServiceOptions = ServiceOptions(),
                 address: str | None = None, replicas: int = 1):
        self.options = options
        self.metrics = ServiceMetrics()
        self._weights = weights_map(weights)  # by kind; None: the kind's bundled weights
        self._address = address
        self._replicas = replicas
        self._handle = None
        self._registry = None
        self._models: dict[str, Loaded] = {}
        self._missing: dict[str, str] = {}

    @property
    def models(self) -> dict[str, Loaded]:
        return self._models

    def missing(self, kind: str) -> str:
        return self._missing.get(kind, f"no {kind} model") if self._handle else "the service is not started"

    def _learn(self, models: dict[str, tuple[str, int]]) -> None:
        """What the replicas say they serve, by kind."""
        self._models = {kind: Loaded(*m) for kind, m in models.items()}

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
            self.options.threads, "cuda" if gpus else "cpu")
        self._handle = serve.run(app, name=APP_NAME, route_prefix=None)

    async def start(self) -> "RayGeneratorService":
        await asyncio.to_thread(self._deploy)
        info = await self._handle.info.remote()
        self._learn(info["models"])
        self._missing = info["missing"]
        return self

    async def close(self) -> None:
        from ray import serve

        await asyncio.to_thread(serve.delete, APP_NAME)

    async def promote(self, weights: str | Path | None, kind: str = "face", timeout: float = 300.0) -> str:
        """Point every replica at ``weights`` for ``kind`` (None: as ``DrawingService.promote``) and wait until all
        have answered; WorkerFailed if any refused."""
        before, old_weights = self.models.get(kind), self._weights[kind]
        wanted = str(weights) if weights else None
        generation = await self._registry.set.remote(kind, wanted)
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
            await self._registry.set.remote(kind, old_weights)  # what replicas that refused serve still
            raise WorkerFailed(f"refused {weights}: {refused[0]}; still serving "
                               f"{before.version if before else f'no {kind} model'}")
        self._weights = {**self._weights, kind: wanted}
        self._missing.pop(kind, None)
        self._learn(answers[0][0])
        return served_version(self._models, kind)

    async def _submit(self, kind: str, arrays: tuple[np.ndarray, ...], timeout: float | None) -> Drawn:
        """One request to the kind's batched replica method, with the queue's refusal and the metrics."""
        from ray.serve.exceptions import BackPressureError

        rows = len(arrays[0])
        if self.metrics.encoding_rows + rows > self.options.queue_limit:  # Serve's queue counts only drawing
            raise self._busy(rows)
        t0 = time.monotonic()
        response = getattr(self._handle, kind).remote(arrays)
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
