"""Training and sampling speed of the face generators on this machine.

Prints, for the default model and the seed-acgan preset side by side: GFLOP per
generated face, training steps/s and images/s at batch 64, and sampling faces/s
at batch 1 and 64 (eager PyTorch, fp32).

    python benchmarks/acgan_speed.py [--threads N] [--seconds S]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from generator.models import tag_condition  # noqa: E402
from training.train_acgan import PRESETS, TrainOptions  # noqa: E402


def gflop_per_face(G: torch.nn.Module) -> float:
    z, cond = torch.randn(8, G.cfg.z_dim), tag_condition(torch.zeros(8, dtype=torch.long), torch.zeros(8, dtype=torch.long))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        G(z, cond)
    return counter.get_total_flops() / 8 / 1e9


def timed(fn, seconds: float) -> float:
    """Calls per second of ``fn`` over at least ``seconds`` after one warm-up call."""
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 2:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def train_step_fn(preset: str, batch: int):
    obj = PRESETS[preset](TrainOptions(data="", run=""))
    G, D = obj.G.train(), obj.D.train()
    opt_g = torch.optim.Adam(G.parameters(), obj.lr, betas=obj.betas)
    opt_d = torch.optim.Adam(D.parameters(), obj.lr, betas=obj.betas)
    real = torch.rand(batch, 3, 64, 64) * 2 - 1
    hair, eye = torch.randint(12, (batch,)), torch.randint(10, (batch,))

    def step():
        fake = G(torch.randn(batch, obj.config.z_dim), tag_condition(hair, eye))
        d = obj.d_loss(real, fake.detach(), (hair, eye), (hair, eye))["loss"]
        opt_d.zero_grad()
        d.backward()
        opt_d.step()
        D.requires_grad_(False)
        g = obj.g_loss(fake, hair, eye)["loss"]
        opt_g.zero_grad()
        g.backward()
        opt_g.step()
        D.requires_grad_(True)

    return obj, step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--seconds", type=float, default=10.0, help="time per measurement")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}")
    print(f"{'preset':12}{'G params':>10}{'D params':>10}{'GFLOP/face':>12}{'train step/s':>14}"
          f"{'train img/s':>13}{'sample/s b1':>13}{'sample/s b64':>14}")
    for preset in ("default", "seed-acgan"):
        obj, step = train_step_fn(preset, 64)
        steps_per_s = timed(step, args.seconds)
        G = obj.G.eval()
        z_dim = obj.config.z_dim
        with torch.inference_mode():
            rates = []
            for b in (1, 64):
                z = torch.randn(b, z_dim)
                cond = tag_condition(torch.randint(12, (b,)), torch.randint(10, (b,)))
                rates.append(timed(lambda: G(z, cond), args.seconds) * b)
        n_g = sum(p.numel() for p in obj.G.parameters()) / 1e6
        n_d = sum(p.numel() for p in obj.D.parameters()) / 1e6
        print(f"{preset:12}{n_g:>9.2f}M{n_d:>9.2f}M{gflop_per_face(G):>12.3f}{steps_per_s:>14.2f}"
              f"{steps_per_s * 64:>13.1f}{rates[0]:>13.1f}{rates[1]:>14.1f}", flush=True)


if __name__ == "__main__":
    main()
