"""The Ray training backend on a local Ray instance the test starts (skipped, saying why, only without
the ``ray`` extra): the same run as the child process, its candidate and figures brought back."""

import asyncio
import importlib.util
import shutil

import pytest

from generator.active_model import read_active
from test_retraining import curate, make_retrainer

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="the ray extra is not installed: pip install -e '.[ray]'")


def test_a_run_on_ray_comes_back_judged_and_promoted(tmp_path, face_data_dir, tiny_generator_file):
    import ray
    data_dir = tmp_path / "data"
    shutil.copytree(face_data_dir, data_dir)
    curate(data_dir, hair=6, n=4)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        async def go():
            async with make_retrainer(data_dir, tiny_generator_file, backend="ray") as retrainer:
                await retrainer.start("telegram:1")
                return await retrainer.wait(), await retrainer.models()
        outcome, models = asyncio.run(go())
    finally:
        ray.shutdown()
    assert outcome.promoted, outcome.reason
    run = data_dir / "retrain" / outcome.version
    assert outcome.grid == run / "before-after.png" and outcome.grid.stat().st_size > 1000
    assert (run / "candidate.safetensors").exists() and (run / "loss.png").exists()
    assert [m.state for m in models] == ["active", "retired"] and models[0].metrics["images"] > 0
    assert read_active(data_dir).version == outcome.version
