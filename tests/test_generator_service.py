"""The generator service: batching, backpressure, timeouts, hot swap under load, a worker killed mid-batch."""

import asyncio

import pytest
import torch

from generator.models.acgan import ACGANConfig, Generator
from generator.sampler import FaceSampler
from generator.service import GenerationFailed, GeneratorService, QueueFull, ServiceOptions
from generator.weights import save_module
from generator.worker_process import WorkerFailed


def _weights(path, g_ch=4, seed=0, version=None):
    torch.manual_seed(seed)
    G = Generator(ACGANConfig(g_ch=g_ch))
    save_module(G, path, G.cfg.to_dict(), step=seed, **({"version": version} if version else {}))
    return path


def _opts(**kw) -> ServiceOptions:
    return ServiceOptions(**{"threads": 1, **kw})


def test_concurrent_requests_share_batches_and_match_eager(tiny_generator_file):
    async def go():
        async with GeneratorService(tiny_generator_file, _opts(max_batch=64, max_wait_ms=100)) as svc:
            results = await asyncio.gather(*(svc.faces([i % 12], [i % 10], [i]) for i in range(20)))
            return results, dict(svc.metrics.batch_sizes), svc.metrics.summary()

    results, sizes, summary = asyncio.run(go())
    assert max(sizes) > 1 and sum(n * c for n, c in sizes.items()) == 20
    eager = FaceSampler.load(tiny_generator_file, "cpu")
    for i, drawn in enumerate(results):
        assert drawn.version == eager.version
        assert torch.equal(drawn.images[0], eager.faces([i % 12], [i % 10], [i])[0])
    assert summary["requests"] == 20 and summary["failed"] == 0 and summary["latency_p99_ms"] > 0


def test_full_queue_answers_at_once_with_a_retry_time(tiny_generator_file):
    async def go():
        async with GeneratorService(tiny_generator_file, _opts(queue_limit=4, max_wait_ms=50)) as svc:
            outcomes = await asyncio.gather(*(svc.faces([0], [0], [i]) for i in range(10)), return_exceptions=True)
            return outcomes, svc.metrics.rejected

    outcomes, rejected = asyncio.run(go())
    busy = [o for o in outcomes if isinstance(o, QueueFull)]
    assert len(busy) == 6 == rejected
    assert all(b.retry_after >= 1 and "try again in" in str(b) for b in busy)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 4


def test_a_request_that_times_out_is_dropped(tiny_generator_file):
    async def go():
        async with GeneratorService(tiny_generator_file, _opts(max_wait_ms=400)) as svc:
            with pytest.raises(asyncio.TimeoutError):
                await svc.faces([0], [0], [1], timeout=0.05)
            ok = await svc.faces([0], [0], [2])  # the service carries on
            return ok, svc.metrics.requests

    ok, answered = asyncio.run(go())
    assert ok.images.shape == (1, 3, 64, 64) and answered == 1


def test_hot_swap_under_load_fails_nothing(tiny_generator_file, tmp_path):
    new = _weights(tmp_path / "new.safetensors", seed=1, version="v2")

    async def go():
        async with GeneratorService(tiny_generator_file, _opts(max_wait_ms=2)) as svc:
            old_version = svc.version
            stop = asyncio.Event()
            seen: list[str] = []

            async def client(k: int):
                i = 0
                while not stop.is_set():
                    seen.append((await svc.faces([k], [k], [i])).version)
                    i += 1

            clients = [asyncio.create_task(client(k)) for k in range(8)]
            await asyncio.sleep(0.3)
            version = await svc.promote(new)
            await asyncio.sleep(0.3)
            stop.set()
            await asyncio.gather(*clients)
            after = (await svc.faces([1], [1], [1])).version
            return old_version, version, seen, after, svc.metrics.failed

    old_version, version, seen, after, failed = asyncio.run(go())
    assert version == "v2" and after == "v2" and old_version != "v2"
    assert failed == 0
    assert seen.count(old_version) > 0 and seen.count("v2") > 0
    assert seen.index("v2") > max(i for i, v in enumerate(seen) if v == old_version) - 8  # switched once


def test_bad_weights_are_refused_and_the_old_keep_serving(tiny_generator_file, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a weights file")

    async def go():
        async with GeneratorService(tiny_generator_file, _opts()) as svc:
            before = svc.version
            with pytest.raises(WorkerFailed, match="refused"):
                await svc.promote(bad)
            drawn = await svc.faces([2], [3], [4])
            return before, drawn.version

    before, after = asyncio.run(go())
    assert before == after


def test_worker_killed_mid_batch_fails_that_batch_and_serves_the_next(tmp_path):
    heavy = _weights(tmp_path / "heavy.safetensors", g_ch=96)  # ~1 s per 256 faces here: time to kill it

    async def go():
        async with GeneratorService(heavy, _opts(max_batch=256)) as svc:
            doomed = asyncio.create_task(svc.faces([0] * 256, [0] * 256, range(256)))
            while svc.metrics.in_flight == 0:
                await asyncio.sleep(0.005)
            svc._worker.process.kill()
            with pytest.raises(GenerationFailed, match="crashed"):
                await doomed
            nxt = await svc.faces([1], [1], [1])
            return nxt, svc.metrics.failed

    nxt, failed = asyncio.run(go())
    assert nxt.images.shape == (1, 3, 64, 64) and failed == 1
