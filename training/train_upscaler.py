"""``moebot train upscaler``: the 2x face upscaler's training loop.

Pairs are made from the 128 px faces' train split: the face itself is the target
and a degraded 64 px copy the input. The degradations resemble what the face
generator draws, not only a clean downscale: a random blur before shrinking
(generated faces are soft), a random resampling filter, mild noise and, now and
then, JPEG-like blockiness from a coarse quantisation. Losses: L1 on pixels, L1 on
the Laplacian (edges count, not only flat colour), and a hinge PatchGAN term that
keeps the output from being as blurry as L1 alone makes it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from generator.images import grid, to_uint8
from generator.models.upscaler import PatchDiscriminator, Upscaler, UpscalerConfig
from generator.weights import save_module
from training.dataset import FaceDataset
from training.plots import loss_curve
from training.runs import Schedule, open_run, restore, snapshot_state
from training.train_acgan import ema_update

GRID_FACES = 8
EMA_HALF_LIFE_IMAGES = 2_000


@dataclass
class UpscalerOptions:
    data: str
    run: str
    steps: int | None = None
    minutes: float | None = None
    clock: str = "wall"
    batch: int = 16
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    snapshot_every: int = 250
    sample_every: int = 500
    log_every: int = 25
    ch: int = 32
    convs: int = 8
    lr: float = 2e-4
    adv_weight: float = 0.03   # of the PatchGAN term, against L1 weight 1
    edge_weight: float = 1.0   # of the Laplacian L1 term
    adv_start: int = 500       # steps of L1 alone first: D then judges faces that are already roughly right


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """A 5x5 Gaussian blur with a per-image ``sigma`` (0: unchanged)."""
    r = torch.arange(-2, 3, dtype=x.dtype, device=x.device)
    k = torch.exp(-(r[None] ** 2) / (2 * sigma.clamp(min=1e-3)[:, None] ** 2))
    k = k / k.sum(1, keepdim=True)  # (B, 5)
    b, c, h, w = x.shape
    xs = x.reshape(1, b * c, h, w)
    kh = k.repeat_interleave(c, 0)[:, None, None, :]  # (B*C, 1, 1, 5)
    xs = F.conv2d(F.pad(xs, (2, 2, 0, 0), mode="replicate"), kh, groups=b * c)
    xs = F.conv2d(F.pad(xs, (0, 0, 2, 2), mode="replicate"), kh.transpose(2, 3), groups=b * c)
    return xs.view(b, c, h, w)


def degrade(hr: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """(B, 3, 128, 128) faces in [-1, 1] -> (B, 3, 64, 64) inputs that look like what the face generator draws."""
    b = hr.shape[0]
    rand = lambda *shape: torch.rand(*shape, generator=gen).to(hr.device)  # noqa: E731
    x = _blur(hr, rand(b) * 1.2)
    modes = ("bilinear", "bicubic", "area")
    pick = int(rand(1).item() * len(modes))
    x = F.interpolate(x, size=(64, 64), mode=modes[pick], **({} if modes[pick] == "area" else {"antialias": True}))
    x = x + torch.randn(x.shape, generator=gen).to(hr.device) * (rand(b, 1, 1, 1) * 0.03)
    coarse = rand(b, 1, 1, 1) < 0.3  # blocky colour steps, as in a compressed or quantised picture
    x = torch.where(coarse, torch.round(x * 24) / 24, x)
    return x.clamp(-1, 1)


def laplacian(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], device=x.device)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k.expand(x.shape[1], 1, 3, 3), groups=x.shape[1])


def training_loop(opts: UpscalerOptions, resume: bool = False, progress: bool = True) -> Path:
    """Train until ``opts.steps`` or ``opts.minutes`` (totals across resumes); return the exported upscaler."""
    run, resume_state, device = open_run(opts, resume)
    cfg = UpscalerConfig(ch=opts.ch, convs=opts.convs)
    G, D = Upscaler(cfg).to(device), PatchDiscriminator(cfg).to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), opts.lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), opts.lr, betas=(0.5, 0.99))
    parts = {"G": G, "D": D, "G_ema": G_ema, "opt_g": opt_g, "opt_d": opt_d}
    step, elapsed = restore(resume_state, parts)

    data = FaceDataset.load_size(opts.data, 128, "train", progress=progress)
    heldout = FaceDataset.load_size(opts.data, 128, "heldout", progress=progress)
    fixed_hr = FaceDataset.to_float(heldout.images[torch.linspace(0, len(heldout) - 1, GRID_FACES).long()])
    fixed_lr = degrade(fixed_hr, torch.Generator().manual_seed(0)).to(device)
    ema_beta = 0.5 ** (opts.batch / EMA_HALF_LIFE_IMAGES)
    sched = Schedule(run, opts, opts.batch, "upscaler", progress, step, elapsed)

    def snapshot() -> None:
        run.save_snapshot(snapshot_state(parts, sched.step, sched.elapsed))
        save_module(G_ema, run.path / "upscaler.safetensors", cfg.to_dict(), step=sched.step,
                    kimg=round(sched.step * opts.batch / 1000, 1), train_minutes=round(sched.elapsed / 60, 1),
                    images=len(data))
        loss_curve(run.stats, run.path / "loss.png", ("l1", "edge", "d_adv", "g_adv"))

    def sample_grid() -> None:
        """Columns: the 64 px input enlarged (nearest), the upscaler's face, the real 128 px face."""
        with torch.no_grad():
            sr = G_ema(fixed_lr)
        near = F.interpolate(fixed_lr, scale_factor=2.0, mode="nearest")
        rows = torch.stack([near.cpu(), sr.cpu(), fixed_hr], 1).flatten(0, 1)
        grid(to_uint8(rows), 3).save(run.path / f"fakes{sched.step:06d}.png")

    def postfix(means: dict[str, float]) -> dict[str, str]:
        return dict(l1=f"{means['l1']:.3f}", edge=f"{means['edge']:.3f}", g=f"{means['g_adv']:.2f}")

    G.train(), D.train()
    while not sched.done():
        sched.begin()
        idx = torch.randint(len(data), (opts.batch,))
        hr = FaceDataset.to_float(data.images[idx]).to(device)
        flip = torch.rand(opts.batch, device=device) < 0.5
        hr = torch.where(flip[:, None, None, None], hr.flip(3), hr)
        sr = G(degrade(hr))
        adversarial = sched.step >= opts.adv_start

        d_adv = torch.zeros((), device=device)
        if adversarial:
            d_adv = F.relu(1 - D(hr)).mean() + F.relu(1 + D(sr.detach())).mean()
            opt_d.zero_grad(set_to_none=True)
            d_adv.backward()
            opt_d.step()

        l1 = (sr - hr).abs().mean()
        edge = (laplacian(sr) - laplacian(hr)).abs().mean()
        D.requires_grad_(False)
        g_adv = -D(sr).mean() if adversarial else torch.zeros((), device=device)
        D.requires_grad_(True)
        opt_g.zero_grad(set_to_none=True)
        (l1 + opts.edge_weight * edge + opts.adv_weight * g_adv).backward()
        opt_g.step()
        ema_update(G_ema, G, ema_beta)
        sched.end({"l1": l1, "edge": edge, "d_adv": d_adv, "g_adv": g_adv}, postfix, sample_grid, snapshot)
    sched.finish(sample_grid, snapshot)
    return run.path / "upscaler.safetensors"
