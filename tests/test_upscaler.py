"""The 2x upscaler: degradations, a few training steps with no NaN, snapshot and resume, exported weights."""

import json

import torch

from generator.models.upscaler import Upscaler, UpscalerConfig
from generator.weights import load_module, read_metadata
from training.train_upscaler import UpscalerOptions, degrade, training_loop


def _opts(data_dir, run, **kw) -> UpscalerOptions:
    base = dict(data=str(data_dir), run=str(run), batch=4, ch=4, convs=1, snapshot_every=2, sample_every=2,
                log_every=1, threads=1, adv_start=1)
    return UpscalerOptions(**{**base, **kw})


def test_degrade_halves_and_stays_in_range():
    hr = torch.rand(3, 3, 128, 128) * 2 - 1
    lr = degrade(hr, torch.Generator().manual_seed(0))
    assert lr.shape == (3, 3, 64, 64) and lr.min() >= -1 and lr.max() <= 1
    assert torch.equal(lr, degrade(hr, torch.Generator().manual_seed(0)))  # a seed fixes the degradation


def test_an_untrained_upscaler_is_plain_enlargement():
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    out = Upscaler(UpscalerConfig(ch=4, convs=1))(x)
    assert out.shape == (2, 3, 128, 128)
    assert torch.allclose(out, torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


def test_trains_snapshots_and_resumes(face128_data_dir, tmp_path):
    run = tmp_path / "up"
    training_loop(_opts(face128_data_dir, run, steps=2), progress=False)
    training_loop(_opts(face128_data_dir, run, steps=4), resume=True, progress=False)
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats] == [1, 2, 3, 4]
    assert all(v == v for s in stats for v in s.values())  # no NaN
    assert stats[-1]["d_adv"] > 0  # the adversarial term is on after adv_start
    for name in ("snapshot.pt", "loss.png", "fakes000002.png", "fakes000004.png"):
        assert (run / name).stat().st_size > 0, name
    up, meta = load_module(run / "upscaler.safetensors")
    assert meta["step"] == 4 and read_metadata(run / "upscaler.safetensors")["config"]["arch"] == "upscaler"
    with torch.no_grad():
        out = up(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 3, 128, 128) and torch.isfinite(out).all()



def test_faces_at_128_come_from_the_upscaler_and_256_from_those(tiny_generator_file, tmp_path):
    from PIL import Image

    from bot.cli import main
    from generator.images import from_pil, to_pil
    from generator.sampler import FaceSampler
    from generator.weights import save_module

    up = Upscaler(UpscalerConfig(ch=4, convs=1))
    torch.nn.init.normal_(up.body[-2].weight, std=0.1)  # not plain enlargement, so the two paths differ
    save_module(up, tmp_path / "up.safetensors", up.cfg.to_dict(), step=7)
    plain = FaceSampler.load(tiny_generator_file, "cpu")
    sharp = FaceSampler.load(tiny_generator_file, "cpu").with_upscaler(tmp_path / "up.safetensors")
    assert sharp.version.endswith("+up@7")
    small = plain.faces([1], [2], [5])
    lanczos = plain.faces([1], [2], [5], size=128)
    assert lanczos.shape == (1, 3, 128, 128) and torch.equal(lanczos[0], from_pil(to_pil(small[0], 128)))
    drawn = sharp.faces([1], [2], [5], size=128)
    assert drawn.shape == (1, 3, 128, 128) and not torch.equal(drawn, lanczos)
    big = sharp.faces([1], [2], [5], size=256)
    assert torch.equal(big[0], from_pil(to_pil(drawn[0], 256)))  # 256 px from the 128 px face, never from 64
    out = tmp_path / "faces"
    assert main(["sample", "--weights", str(tiny_generator_file), "--upscaler", str(tmp_path / "up.safetensors"),
                 "--size", "128", "-n", "2", "--hair", "pink", "--eye", "blue", "--out", str(out)]) == 0
    written = Image.open(out / "000.png")
    assert written.size == (128, 128)
    assert torch.equal(from_pil(written), sharp.faces([7], [9], [0], size=128)[0])  # exactly what the sampler draws
