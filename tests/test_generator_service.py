"""The generator service: batching, backpressure, timeouts, hot swap under load, a worker killed mid-batch.

Every API test runs against both backends: the in-process worker and Ray Serve on a local Ray instance
that the test starts (skipped, saying why, only when the ``ray`` extra is not installed).
"""

import asyncio
import contextlib
import importlib.util
import logging
import os
import re

import pytest
import torch

import migrations
from fakes.bot_parts import database, tiny_sketch_weights, tiny_upscaler_weights
from generator.models.acgan import ACGANConfig, Generator
from generator.sampler import FaceSampler, SketchSampler, UpscalerSampler
from generator.service import GenerationFailed, GeneratorService, ModelUnavailable, QueueFull, ServiceOptions
from generator.weights import save_module
from generator.worker_process import WorkerFailed
from training.lifecycle import Lifecycle


def _weights(path, g_ch=4, seed=0, version=None):
    torch.manual_seed(seed)
    G = Generator(ACGANConfig(g_ch=g_ch))
    save_module(G, path, G.cfg.to_dict(), step=seed, **({"version": version} if version else {}))
    return path


def _opts(**kw) -> ServiceOptions:
    return ServiceOptions(**{"threads": 1, **kw})


# one set of options for the API tests of both backends: small enough that 40 requests overflow the queue
API = _opts(max_batch=2, queue_limit=4, max_wait_ms=20)


@pytest.fixture(scope="module")
def ray_service(tiny_generator_file, tiny_sketch_file):
    """One Ray Serve deployment on a local Ray instance for the module: a replica takes long to start."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("the ray extra is not installed: pip install -e '.[ray]'")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray
    from ray import serve

    from generator.ray_service import RayGeneratorService

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    svc = asyncio.run(RayGeneratorService({"face": tiny_generator_file, "sketch": tiny_sketch_file}, API).start())
    yield svc
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(params=["local", "ray"])
def service(request, tiny_generator_file, tiny_sketch_file):
    """``async with service() as svc``: a fresh local service, or the module's Ray deployment."""
    if request.param == "local":
        return lambda: GeneratorService({"face": tiny_generator_file, "sketch": tiny_sketch_file}, API)
    svc = request.getfixturevalue("ray_service")

    @contextlib.asynccontextmanager
    async def shared():
        yield svc

    return shared


def test_concurrent_requests_share_batches_and_match_eager(tiny_generator_file):
    async def go():
        async with GeneratorService(tiny_generator_file, _opts(max_batch=64, max_wait_ms=100)) as svc:
            results = await asyncio.gather(*(svc.faces([i % 12], [i % 10], [i]) for i in range(20)))
            return results, dict(svc.metrics.batch_sizes), svc.metrics.summary()

    results, sizes, summary = asyncio.run(go())
    assert max(sizes) > 1 and sum(n * c for n, c in sizes.items()) == 20
    _assert_match_eager(results, tiny_generator_file)
    assert summary["requests"] == 20 and summary["failed"] == 0 and summary["latency_p99_ms"] > 0


def test_every_backend_draws_what_eager_draws(service, tiny_generator_file):
    async def go():
        async with service() as svc:
            out = []
            for start in range(0, 20, 4):  # four at a time: what the small test queue holds
                out += await asyncio.gather(*(svc.faces([i % 12], [i % 10], [i]) for i in range(start, start + 4)))
            return out

    _assert_match_eager(asyncio.run(go()), tiny_generator_file)


def _assert_match_eager(results, weights):
    eager = FaceSampler.load(weights, "cpu")
    for i, drawn in enumerate(results):
        assert drawn.version == eager.version
        assert torch.equal(drawn.images[0], eager.faces([i % 12], [i % 10], [i])[0])


def test_every_backend_draws_sketches_as_eager_does(service, tiny_sketch_file):
    rng = torch.Generator().manual_seed(0)
    sketches = torch.where(torch.rand(3, 1, 64, 64, generator=rng) < 0.1, -1.0, 1.0)  # ink specks on paper

    async def go():
        async with service() as svc:  # three sketches and a face: what the small test queue holds
            face = asyncio.ensure_future(svc.faces([1], [1], [1]))
            drawn = await asyncio.gather(*(svc.sketch(sketches[i:i + 1], [i], [2], [40 + i]) for i in range(3)))
            return drawn, await face, svc.models["sketch"].version

    drawn, face, version = asyncio.run(go())
    eager = SketchSampler.load(tiny_sketch_file, "cpu")
    assert version == eager.version == "sketch-v1" and face.version != version
    for i, d in enumerate(drawn):
        assert d.version == "sketch-v1" and d.images.shape == (1, 3, 64, 64) and d.images.dtype == torch.uint8
        expected = eager.faces(sketches[i:i + 1], [i], [2], [40 + i])
        assert (d.images.int() - expected.int()).abs().max() <= 1  # batched with others or not
    assert not torch.equal(drawn[0].images, drawn[1].images)


def test_without_a_sketch_model_faces_are_served_and_sketches_refused(tiny_generator_file, tmp_path):
    missing = tmp_path / "no-such-sketch.safetensors"

    async def go():
        async with GeneratorService({"face": tiny_generator_file, "sketch": missing}, API) as svc:
            with pytest.raises(ModelUnavailable, match="no-such-sketch"):
                await svc.sketch(torch.ones(1, 1, 64, 64), [0], [0], [0])
            return svc.serves("sketch"), await svc.faces([0], [0], [0])

    version, face = asyncio.run(go())
    assert not version and face.images.shape == (1, 3, 64, 64)


def test_full_queue_answers_at_once_with_a_retry_time(service):
    async def go():
        async with service() as svc:
            before = svc.metrics.rejected
            outcomes = await asyncio.gather(*(svc.faces([0], [0], [i]) for i in range(40)), return_exceptions=True)
            return outcomes, svc.metrics.rejected - before

    outcomes, rejected = asyncio.run(go())
    busy = [o for o in outcomes if isinstance(o, QueueFull)]
    answered = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(busy) == rejected and 0 < len(busy) < 40
    assert len(busy) + len(answered) == 40  # nothing else went wrong
    assert all(b.retry_after >= 1 and "try again in" in str(b) for b in busy)


def test_a_request_that_times_out_is_dropped(service):
    async def go():
        async with service() as svc:
            before = svc.metrics.requests
            with pytest.raises(asyncio.TimeoutError):
                await svc.faces([0], [0], [1], timeout=0.001)  # under the batching wait alone
            ok = await svc.faces([0], [0], [2])  # the service carries on
            return ok, svc.metrics.requests - before

    ok, answered = asyncio.run(go())
    assert ok.images.shape == (1, 3, 64, 64) and answered == 1


def test_hot_swap_under_load_fails_nothing(service, tmp_path):
    new = _weights(tmp_path / "new.safetensors", seed=1, version="v2")

    async def go():
        async with service() as svc:
            old_version = svc.version
            seen: dict[int, list[str]] = {k: [] for k in range(4)}  # four clients: what the test queue holds

            async def client(k: int):
                i = 0  # run until this client has had two faces from the new version
                while seen[k][-2:] != ["v2", "v2"]:
                    seen[k].append((await svc.faces([k], [k], [i])).version)
                    i += 1

            clients = [asyncio.create_task(client(k)) for k in range(4)]
            while min(len(v) for v in seen.values()) < 2:
                await asyncio.sleep(0.01)
            version = await svc.promote(new)
            await asyncio.wait_for(asyncio.gather(*clients), 120)
            return old_version, version, seen

    old_version, version, seen = asyncio.run(go())  # any failed request would raise out of gather
    assert version == "v2" and old_version != "v2"
    for versions in seen.values():
        assert versions[:2] == [old_version, old_version]
        first_new = versions.index("v2")
        assert set(versions[first_new:]) == {"v2"}  # switched once, never back


def test_bad_weights_are_refused_and_the_old_keep_serving(service, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a weights file")

    async def go():
        async with service() as svc:
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


def test_compiled_buckets_match_eager_and_small_batches_stay_eager(tiny_generator_file):
    from generator.fast_inference import FastDrawer

    sampler = FaceSampler.load(tiny_generator_file, "cpu")
    drawer = FastDrawer(sampler, buckets=(8,))
    assert drawer.bucket_for(6) is None  # nothing compiled yet: eager
    drawer.start_compiling().join(300)
    assert drawer.bucket_for(6) == 8 and drawer.bucket_for(3) is None  # 3 would pad more than 2x
    z, cond = torch.randn(6, sampler.z_dim), torch.zeros(6, 22)
    cond[:, 2] = cond[:, 15] = 1
    fast, eager = drawer.draw(z, cond).int(), sampler.draw(z, cond).int()
    assert fast.shape == eager.shape == (6, 3, 64, 64)
    assert (fast - eager).abs().max() <= 1  # within one step of 255 after rounding


def _kill_idle(svc: GeneratorService) -> None:
    """Kill the real worker process while nothing is asked of it, and wait until it is gone."""
    svc._worker.process.kill()
    svc._worker.process.join(30)


def test_a_worker_that_died_while_idle_is_restarted_before_the_next_request(tiny_generator_file):
    async def go():
        async with GeneratorService(tiny_generator_file, _opts()) as svc:
            first = await svc.faces([1], [2], [3])
            _kill_idle(svc)
            return first, await svc.faces([1], [2], [3]), svc.metrics.failed

    first, again, failed = asyncio.run(go())
    assert torch.equal(first.images, again.images) and failed == 0


def test_weights_damaged_under_the_service_fall_back_to_the_last_that_loaded(tmp_path, caplog):
    old = _weights(tmp_path / "old.safetensors", seed=0, version="v1")
    new = _weights(tmp_path / "new.safetensors", seed=1, version="v2")

    async def go():
        async with GeneratorService(old, _opts()) as svc:
            await svc.promote(new)
            new.write_bytes(new.read_bytes()[:1000])  # torn on disk while it serves
            _kill_idle(svc)
            return (await svc.faces([0], [0], [0], timeout=120)).version, svc.version

    with caplog.at_level(logging.ERROR):
        assert asyncio.run(go()) == ("v1", "v1")
    assert f"fell back to {old} (v1): {new} no longer loads" in caplog.text


def test_restarts_back_off_until_the_weights_load_again(tmp_path, caplog):
    weights = _weights(tmp_path / "w.safetensors", version="v1")
    good = weights.read_bytes()

    async def go():
        async with GeneratorService(weights, _opts(restart_backoff_s=0.05, restart_backoff_max_s=0.1)) as svc:
            weights.write_bytes(b"damaged")
            _kill_idle(svc)
            waiting = asyncio.create_task(svc.faces([0], [0], [0], timeout=300))
            while caplog.text.count("trying again in") < 3:
                await asyncio.sleep(0.05)
            (tmp_path / "w.new").write_bytes(good)
            os.replace(tmp_path / "w.new", weights)  # repaired: the next try loads it
            return (await waiting).version, svc.metrics.failed

    with caplog.at_level(logging.ERROR):
        assert asyncio.run(asyncio.wait_for(go(), 300)) == ("v1", 0)  # the request waited, it did not fail
    assert re.findall(r"trying again in ([\d.]+) s", caplog.text)[:3] == ["0.05", "0.1", "0.1"]
    assert "did not restart on" in caplog.text and "w.safetensors" in caplog.text


def test_every_kind_is_hot_swapped_and_rolled_back_through_the_lifecycle(service, tiny_sketch_file, tmp_path):
    """The upscaler and the sketch model go through the one model lifecycle, as faces do: promoted while a client
    draws 128 px faces (none fails), a NaN upscaler refused, rolled back; each serves before the call returns, and
    the registry holds one active version per kind."""
    up1 = tiny_upscaler_weights(tmp_path / "up1.safetensors", seed=1, version="up-v1")
    up2 = tiny_upscaler_weights(tmp_path / "up2.safetensors", seed=2, version="up-v2")
    nan = tiny_upscaler_weights(tmp_path / "nan.safetensors", version="up-nan", nan=True)
    sketch2 = tiny_sketch_weights(tmp_path / "sketch2.safetensors", seed=2, version="sketch-v2")
    paper = torch.ones(1, 1, 64, 64)

    async def go():
        async with service() as svc, database(tmp_path) as db:
            models = Lifecycle(tmp_path, db, {"sketch": tiny_sketch_file}, [svc])
            face, plain = svc.version, await svc.faces([3], [4], [5], size=128)  # no upscaler: 64 px
            stop, seen = asyncio.Event(), []

            async def client():
                while not stop.is_set():
                    seen.append((await svc.faces([1], [2], [3], size=128)).version)
            drawing = asyncio.create_task(client())
            upscaled = []
            for step in (models.promote_file(up1, "test", "first upscaler"),
                         models.promote_file(up2, "test", "second upscaler"),
                         models.rollback(None, "test", "upscaler")):
                await step
                upscaled.append(await svc.faces([3], [4], [5], size=128))  # at once: by the new one
            with pytest.raises(ValueError, match="not finite"):
                await models.promote_file(nan, "test", "a NaN upscaler")
            upscaled.append(await svc.faces([3], [4], [5], size=128))
            await models.promote_file(sketch2, "test", "second sketch model")
            sketches = [await svc.sketch(paper, [1], [2], [3])]
            await models.rollback(None, "test", "sketch")
            sketches.append(await svc.sketch(paper, [1], [2], [3]))
            stop.set()
            await drawing  # a failed request would raise here
            return face, plain, upscaled, sketches, seen

    face, plain, upscaled, sketches, seen = asyncio.run(asyncio.wait_for(go(), 300))
    assert plain.version == face and plain.images.shape == (1, 3, 64, 64)
    for drawn, weights in zip(upscaled, (up1, up2, up1, up1)):
        up = UpscalerSampler.load(weights, "cpu")
        assert drawn.version == f"{face}+{up.version}"
        assert torch.equal(drawn.images, up.draw(plain.images))  # exactly what FaceSampler.enlarge draws
    assert [s.version for s in sketches] == ["sketch-v2", "sketch-v1"]
    assert seen and all(v.startswith(face) for v in seen)
    conn = migrations.connect(tmp_path / "moebot.db")
    assert dict(conn.execute("SELECT kind, version FROM models WHERE state = 'active'")) == \
        {"upscaler": "up-v1", "sketch": "sketch-v1"}
    assert conn.execute("SELECT kind, version, reason FROM promotions ORDER BY id").fetchall() == [
        ("upscaler", "up-v1", "first upscaler"), ("upscaler", "up-v2", "second upscaler"),
        ("upscaler", "up-v1", "rolled back by test"), ("sketch", "sketch-v2", "second sketch model"),
        ("sketch", "sketch-v1", "rolled back by test")]


def test_an_upscaler_rolled_back_to_none_is_dropped_before_the_answer(service, tmp_path):
    """Rolled back past the first upscaler, the kind serves none (the registry's no-upscaler): the service drops
    it before the rollback answers, and 128 px faces are the 64 px ones again, for Lanczos to enlarge."""
    up = tiny_upscaler_weights(tmp_path / "up.safetensors", seed=3, version="up-v3")

    async def go():
        async with service() as svc, database(tmp_path) as db:
            models = Lifecycle(tmp_path, db, {}, [svc])
            await models.promote_file(up, "test", "an upscaler")
            on = await svc.faces([3], [4], [5], size=128)
            said = await models.rollback(None, "test", "upscaler")
            return on, said, await svc.faces([3], [4], [5], size=128), svc.version, svc.serves("upscaler")
    on, said, off, face, serves = asyncio.run(asyncio.wait_for(go(), 300))
    assert on.version == f"{face}+up-v3" and on.images.shape == (1, 3, 128, 128)
    assert said == "Rolled back: no upscaler model serves now." and not serves
    assert off.version == face and off.images.shape == (1, 3, 64, 64)
