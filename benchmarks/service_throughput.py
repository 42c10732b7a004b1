"""Faces/s and latency through the generator service, against naive eager PyTorch and the FLOP limit.

For 1, 16, 64 and 256 concurrent clients (each asking for one face at a time,
in a closed loop) it prints faces/s and p50/p99 latency through the batching
service, next to (a) the same requests answered one at a time by eager
PyTorch at batch 1 and (b) the model's FLOP limit on this CPU: the rate a
large fp32 matmul reaches here divided by the model's FLOP per face.

    python benchmarks/service_throughput.py [--weights FILE] [--seconds S] [--threads N] [--no-compile]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from generator.metrics import percentile  # noqa: E402
from generator.sampler import FaceSampler, face_inputs  # noqa: E402
from generator.service import GeneratorService, ServiceOptions  # noqa: E402


def matmul_gflops(seconds: float = 3.0, n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    k, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        k += 1
    return 2 * n ** 3 * k / (time.perf_counter() - t0) / 1e9


def gflop_per_face(sampler: FaceSampler) -> float:
    z, cond = face_inputs([0] * 8, [0] * 8, range(8), sampler.z_dim)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        sampler.G(z, cond)
    return counter.get_total_flops() / 8 / 1e9


def eager_one_at_a_time(sampler: FaceSampler, seconds: float) -> float:
    """Seconds per face answering requests one by one at batch 1 (the model time of a lone request)."""
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sampler.faces([n % 12], [n % 10], [n])
        n += 1
    return (time.perf_counter() - t0) / n


async def through_service(svc: GeneratorService, clients: int, seconds: float) -> tuple[float, list[float]]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def client(k: int) -> None:
        i = 0
        while time.perf_counter() < stop:
            t = time.perf_counter()
            await svc.faces([k % 12], [i % 10], [k * 100_000 + i])
            latencies.append(time.perf_counter() - t)
            i += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    return len(latencies) / (time.perf_counter() - t0), latencies


async def main_async(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    sampler = FaceSampler.load(args.weights, "cpu")
    gflops = matmul_gflops()
    per_face = gflop_per_face(sampler)
    limit = gflops / per_face
    t1 = eager_one_at_a_time(sampler, args.seconds)
    print(f"model {sampler.version}: {per_face:.3f} GFLOP/face; fp32 matmul {gflops:.1f} GFLOP/s with "
          f"{args.threads} threads -> FLOP limit {limit:.0f} faces/s")
    print(f"naive eager, one request at a time at batch 1: {1 / t1:.0f} faces/s, {1000 * t1:.1f} ms per face")
    print(f"{'clients':>8}{'service faces/s':>17}{'% of limit':>12}{'x naive':>9}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'naive p50 ms':>14}{'naive p99 ms':>14}")
    opts = ServiceOptions(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, threads=args.threads,
                          queue_limit=4096, compile=args.compile)
    print(f"service: max_batch {args.max_batch}, max_wait {args.max_wait_ms} ms, compile {args.compile}")
    async with GeneratorService(args.weights, opts) as svc:
        await through_service(svc, 64, args.warmup)  # warm-up (and time for the worker to compile)
        for clients in (1, 16, 64, 256):
            rate, lat = await through_service(svc, clients, args.seconds)
            # answering the same burst one at a time, the k-th of c waits for k faces
            naive = [t1 * (k + 1) for k in range(clients)]
            print(f"{clients:>8}{rate:>17.0f}{100 * rate / limit:>11.0f}%{rate * t1:>9.1f}"
                  f"{1000 * percentile(lat, 50):>9.1f}{1000 * percentile(lat, 99):>9.1f}"
                  f"{1000 * percentile(naive, 50):>14.1f}{1000 * percentile(naive, 99):>14.1f}", flush=True)
        print(f"service: {svc.metrics.text()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", help="generator weights (default: the bundled ones)")
    ap.add_argument("--seconds", type=float, default=8.0, help="time per measurement")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--max-batch", dest="max_batch", type=int, default=64)
    ap.add_argument("--max-wait-ms", dest="max_wait_ms", type=float, default=5.0)
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                    help="torch.compile large batches in the worker, as the bot does by default")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds of load before measuring")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
