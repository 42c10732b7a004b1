"""``moebot train sketch-encoder``: the sketch -> latent encoder's training loop (issue #17, 2b).

Pairs come from the frozen face generator itself, so they are endless and exact: each step draws latents z
and random colours, the faces x = G(z, colours), and a drawing of each face, either

- a rough drawing on the playground pad (training/rough_drawings.py ``rough_of_face``): a wobbly head
  round the face, its eyes drawn where the face has its eyes as dots, circles, dashes..., maybe a mouth and
  bangs, read through the bot's own ``normalise_sketch``; or
- its crude line art (training/sketch_data.py), moved a little and with a random stroke width, as doodles.

Losses: the encoder's mean to z (MSE), a Gaussian likelihood of z that teaches the log-variance how much of
z the drawing leaves open (on the mean held fixed), and consistency: G(mean rescaled to the prior's norm,
same colours) against x (L1), so the face drawn back looks like the face drawn. A 128 px face generator's
faces are shrunk to 64 px first: the drawings, the yardstick and the term all work at 64 px. The run folder follows the
other loops (options, stats, loss curve, grids, snapshots, resume); ``sketch-encoder.safetensors`` records
the face generator it was trained against (``generator.weights.face_reference``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from generator.images import grid, to_uint8
from generator.models import tag_condition
from generator.models.sketch_encoder import EncodedSketchToFace, SketchEncoder, SketchEncoderConfig, on_prior_shell
from generator.tags import N_EYE, N_HAIR
from generator.weights import BUNDLED_GENERATOR, face_reference, load_module, save_module
from training.plots import loss_curve
from training.rough_drawings import HELDOUT_FIRST_SEED, eye_centres, rough_of_face
from training.runs import Schedule, open_run, restore, snapshot_state
from training.sketch_data import augment_ink, crude_ink, render_ink, stroke_jitter
from training.train_cyclegan import to_rgb

GRID_ROWS = 8  # half rough drawings, half crude line art
GRID_SEED = 999_000  # the grid's faces and drawings (below the yardstick's seeds)


@dataclass
class SketchEncoderOptions:
    run: str
    face: str = ""                    # the face generator's weights (empty: the bundled one)
    steps: int | None = None          # stop after this many steps in total (across resumes)
    minutes: float | None = None      # or after this much training time in total
    clock: str = "wall"               # "cpu": count process CPU time
    batch: int = 32
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    snapshot_every: int = 200
    sample_every: int = 500
    log_every: int = 25
    ch: int = 24
    lr: float = 5e-4
    consistency_weight: float = 2.0   # L1 of the re-drawn face to the face, against latent MSE weight 1
    rough_share: float = 0.5          # drawings that are rough pad drawings (the rest: crude line art)
    noise: float = 0.6                # the exported encoder's share of the seed's latent (see SketchEncoderConfig)


def drawings(faces: torch.Tensor, n_rough: int, first_seed: int, gen: torch.Generator | None = None
             ) -> torch.Tensor:
    """(B, 1, 64, 64) drawings of faces (B, 3, 64, 64): the first ``n_rough`` rough pad drawings (seeds
    first_seed, first_seed + 1, ...), the rest crude line art, moved and with a random stroke width."""
    faces_cpu = faces.cpu()  # Pillow draws the rough drawings; the crude ones are cheap on the CPU too
    rough = [torch.from_numpy(rough_of_face(e, (first_seed + i) % HELDOUT_FIRST_SEED))[None]
             for i, e in enumerate(eye_centres(faces_cpu[:n_rough]))]
    rest = faces_cpu[n_rough:]
    crude = render_ink(augment_ink(crude_ink(rest), gen), stroke_jitter(len(rest), gen))
    return torch.cat([*rough, *crude]).unsqueeze(1).to(faces.device)


def at_64(faces: torch.Tensor) -> torch.Tensor:
    """(B, 3, 64 or 128, ...) float faces at 64 px (area average, so gradients reach every pixel)."""
    return faces if faces.shape[-1] == 64 else F.interpolate(faces, size=(64, 64), mode="area")


def face_pairs(G_face: nn.Module, b: int, z_dim: int, gen: torch.Generator | None = None,
               device: torch.device = torch.device("cpu")) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z, colour conditions, 64 px faces) of ``b`` faces the frozen face generator draws."""
    z = torch.randn(b, z_dim, generator=gen).to(device)
    cond = tag_condition(torch.randint(N_HAIR, (b,), generator=gen), torch.randint(N_EYE, (b,), generator=gen))
    cond = cond.to(device)
    with torch.no_grad():
        return z, cond, at_64(G_face(z, cond))


def losses(E: SketchEncoder, G_face: nn.Module, sketches: torch.Tensor, z: torch.Tensor, cond: torch.Tensor,
           faces: torch.Tensor, consistency_weight: float) -> dict[str, torch.Tensor]:
    mean, log_var = E(sketches)
    latent = (mean - z).pow(2).mean()
    nll = 0.5 * (log_var + (z - mean.detach()).pow(2) / log_var.exp()).mean()
    consistency = (at_64(G_face(on_prior_shell(mean), cond)) - faces).abs().mean()
    return {"loss": latent + nll + consistency_weight * consistency, "latent": latent, "nll": nll,
            "consistency": consistency, "spread": (0.5 * log_var).exp().mean()}


@torch.no_grad()
def sample_grid(E: SketchEncoder, G_face: nn.Module, fixed: dict[str, torch.Tensor]) -> Image.Image:
    """Rows: the drawing, the face it was drawn from, the face re-drawn from the encoder's mean, and the face
    as /sketch serves it (the seed's latent filling in)."""
    E.eval()
    redrawn = at_64(G_face(on_prior_shell(E(fixed["sketches"])[0]), fixed["cond"]))
    served = at_64(EncodedSketchToFace(E, G_face)(fixed["sketches"], fixed["noise"], fixed["cond"]))
    E.train()
    rows = torch.stack([to_rgb(fixed["sketches"]), fixed["faces"], redrawn, served], 1).flatten(0, 1)
    return grid(to_uint8(rows), 4)


def training_loop(opts: SketchEncoderOptions, resume: bool = False, progress: bool = True) -> Path:
    """Train until ``opts.steps`` or ``opts.minutes`` (totals across resumes); return the exported encoder."""
    run, resume_state, device = open_run(opts, resume)
    face_path = Path(opts.face) if opts.face else BUNDLED_GENERATOR
    G_face, _ = load_module(face_path, device)
    G_face.requires_grad_(False)
    cfg = SketchEncoderConfig(z_dim=G_face.cfg.z_dim, ch=opts.ch, noise=opts.noise)
    E = SketchEncoder(cfg).to(device)
    opt = torch.optim.Adam(E.parameters(), opts.lr, betas=(0.9, 0.99))
    parts = {"E": E, "opt": opt}
    step, elapsed = restore(resume_state, parts)
    face = face_reference(face_path)

    g = torch.Generator().manual_seed(GRID_SEED)
    _, cond, faces = face_pairs(G_face, GRID_ROWS, cfg.z_dim, g, device)
    fixed = {"cond": cond, "faces": faces, "noise": torch.randn(GRID_ROWS, cfg.z_dim, generator=g).to(device),
             "sketches": drawings(faces, GRID_ROWS // 2, GRID_SEED, g)}
    sched = Schedule(run, opts, opts.batch, "sketch-encoder", progress, step, elapsed)

    def snapshot() -> None:
        run.save_snapshot(snapshot_state(parts, sched.step, sched.elapsed))
        E.eval()
        save_module(E, run.path / "sketch-encoder.safetensors", cfg.to_dict(), step=sched.step,
                    kimg=round(sched.step * opts.batch / 1000, 1), train_minutes=round(sched.elapsed / 60, 1),
                    face=face)
        E.train()
        loss_curve(run.stats, run.path / "loss.png", ("latent", "nll", "consistency", "spread"))

    def write_grid() -> None:
        sample_grid(E, G_face, fixed).save(run.path / f"fakes{sched.step:06d}.png")

    def postfix(means: dict[str, float]) -> dict[str, str]:
        return dict(latent=f"{means['latent']:.3f}", cons=f"{means['consistency']:.3f}")

    n_rough = round(opts.batch * opts.rough_share)
    E.train()
    while not sched.done():
        sched.begin()
        z, cond, faces = face_pairs(G_face, opts.batch, cfg.z_dim, device=device)
        sketches = drawings(faces, n_rough, opts.seed * 7919 + sched.step * opts.batch)
        out = losses(E, G_face, sketches, z, cond, faces, opts.consistency_weight)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        sched.end(out, postfix, write_grid, snapshot)
    sched.finish(write_grid, snapshot)
    return run.path / "sketch-encoder.safetensors"
