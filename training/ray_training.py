"""Retraining runs on a Ray cluster (``[training] backend = "ray"``), for when the bot's machine is small.

The run is the same ``retrain`` as the local child process, as a Ray task that asks for a GPU when the
cluster has one (the training loop then uses CUDA). It works in a scratch folder on whichever node runs
it and sends back the candidate's weights, the before | after grid and the verdict as bytes, which are
written into the run folder here; only the data directory (the faces, and the rows file in the run folder)
must be readable at the same path on every node (a shared volume), as for the generator's Ray backend. The
bot keeps holding the run's lease while the task runs, so runs never overlap. Needs the ``ray`` extra.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
from pathlib import Path

from training.retrain import RetrainOptions

OUTPUTS = ("candidate.safetensors", "before-after.png", "stats.jsonl", "loss.png")


@functools.cache
def _task():
    import ray

    @ray.remote(max_retries=0)
    def retrain_remote(options: dict) -> tuple[dict, dict[str, bytes]]:
        import os
        import tempfile
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        from training.retrain import RetrainOptions, retrain

        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "run"
            verdict = retrain(RetrainOptions(**{**options, "run": str(run)}))
            return verdict, {name: (run / name).read_bytes() for name in OUTPUTS}
    return retrain_remote


async def retrain_on_ray(opts: RetrainOptions, address: str | None) -> None:
    """Run ``opts`` on the cluster at ``address`` (None: start or attach a local Ray) and write the outcome
    into ``opts.run`` as the local run would: ``candidate.safetensors``, ``before-after.png``, ``verdict.json``.
    Cancelling the caller cancels the task."""
    import ray

    if not ray.is_initialized():
        await asyncio.to_thread(ray.init, address=address, include_dashboard=False, log_to_driver=False)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    ref = _task().options(num_cpus=opts.threads, num_gpus=gpus).remote(dataclasses.asdict(opts))
    try:
        verdict, files = await ref
    except asyncio.CancelledError:
        ray.cancel(ref, force=True)
        raise
    run = Path(opts.run)
    run.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (run / name).write_bytes(data)
    verdict = {**verdict, "candidate": str(run / "candidate.safetensors"), "grid": str(run / "before-after.png")}
    (run / "verdict.json").write_text(json.dumps(verdict, indent=1))
