"""``moebot train cyclegan``: the sketch <-> face CycleGAN's training loop.

Each step sees a batch of tagged faces x, their XDoG line art l, a drawing s
of each face (its line art l, or for a ``crude_share`` of the faces its crude
line art: the doodle-like drawing of training/sketch_data.py), and doodles d
(half the batch distinct doodles, each shown twice with different z):

- paired (what fixes the public model's blank-page collapse): F(x) is pulled
  to l with L1, and G(s, own tags, z) to x with L1 (for three quarters of the
  batch; the last quarter asks for random colours, judged by D_face only, so
  a drawing of a dark-haired face can still be painted pink);
- cycle (unpaired doodles, and faces): F(G(d)) ~ d (a lower weight, so a crude
  doodle may grow into a full face) and G(F(x), own tags) ~ x;
- identity, adapted to 1 <-> 3 channels: a face's grey version fed to G as a
  sketch should come back as the face (G keeps structure and only colours in),
  and a sketch repeated into RGB fed to F should come back unchanged;
- adversarial (hinge, on 8x8 patches, against a pool of 50 past fakes):
  D_face for G's faces from line art and from doodles, D_sketch for F's sketches;
- colour (ACGAN): D_face classifies real faces' hair and eye (on ``d_real_batch``
  real faces a step, more than G draws: they cost D little and its classifier
  learns small eye colours slowly); G is pushed to have its faces classified as
  the requested tags (doodles get random tags);
- mode seeking (Mao et al. 2019): the two faces drawn from one doodle with
  two z should differ in proportion to their z, so z is not ignored.

The exported ``generator.safetensors`` is an EMA of G's weights (arch
``sketch2face``); ``face2sketch.safetensors`` is F. The run folder follows the
face trainer's conventions (options, stats, loss curves, grids, snapshots, resume).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from generator.images import grid, to_uint8
from generator.models import tag_condition
from generator.models.sketch_gan import (
    FaceDiscriminator, FaceToSketch, PatchDiscriminator, SketchGANConfig, SketchToFace,
)
from generator.tags import EYE_COLORS, HAIR_COLORS, N_EYE, N_HAIR
from generator.weights import load_module, save_module
from training.dataset import FaceDataset
from training.plots import loss_curve
from training.runs import Schedule, open_run, restore, snapshot_state
from training.sketch_data import DoodleSet, crude_ink, heldout_faces, line_art, render_ink, stroke_jitter
from training.train_acgan import ema_update, load_matching

# grid columns: one (hair, eye) pair and one fixed latent each
SAMPLE_TAGS = (("pink", "blue"), ("blonde", "red"), ("blue", "green"), ("black", "yellow"),
               ("aqua", "purple"), ("red", "aqua"))
SAMPLE_ROWS = 6  # held-out doodles, then as many held-out faces drawn as line art and as crude line art
MS_CAP = 0.25    # mode seeking stops pushing once a unit of z moves a pixel by this much on average
EMA_HALF_LIFE_IMAGES = 2_500  # ~150 steps at batch 16, as the face trainer's 10k images are at batch 64


@dataclass
class CycleGANOptions:
    data: str
    doodles: str                      # QuickDraw bitmaps .npy, (N, 28, 28) uint8 white on black
    run: str
    steps: int | None = None          # stop after this many steps in total (across resumes)
    minutes: float | None = None      # or after this much training time in total
    clock: str = "wall"               # "cpu": count process CPU time
    batch: int = 16
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    snapshot_every: int = 100
    sample_every: int = 200
    log_every: int = 10
    g_ch: int = 32
    f_ch: int = 16
    d_ch: int = 32
    z_dim: int = 32
    lr: float = 2e-4
    paired_weight: float = 10.0       # L1 of G(line art) to its face and of F(face) to its line art
    cycle_weight: float = 10.0        # G(F(face)) to the face
    doodle_cycle_weight: float = 3.0  # F(G(doodle)) to the doodle: lower, so a crude doodle may become a full face
    identity_weight: float = 2.0
    cls_weight: float = 1.0           # G's colour-classification loss
    ms_weight: float = 1.0            # mode seeking on z
    pool_size: int = 50
    d_real_batch: int = 64            # real faces D_face sees per step: cheap for D, and its colour classifier is
                                      # what teaches G the (small) eye colours
    crude_share: float = 0.5          # faces G paints from their crude (doodle-like) line art rather than XDoG's
    whole_face_d: bool = False        # D_face adds one whole-face realness score to every patch's
    fm_weight: float = 0.0            # feature matching: G's faces from doodles to real faces, on D_face's mean
                                      # features per position (what a face has where, not a doodle's layout)
    init: str | None = None           # fine-tune: start the networks from another run's snapshot.pt (tensors
                                      # whose shape changed, the optimisers and the pools start fresh), or G
                                      # alone from a sketch2face .safetensors (F and the Ds start fresh)


class FakePool:
    """The CycleGAN history of past fakes: D sees a mix of this batch's fakes and older ones."""

    def __init__(self, size: int, images: torch.Tensor | None = None):
        self.size = size
        self.images = images  # (n <= size, C, H, W) or None while empty

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        """Fill the pool first; once full, each fake is swapped for a stored one with probability 1/2."""
        fakes = fakes.detach()
        out = []
        for img in fakes:
            n = 0 if self.images is None else len(self.images)
            if n < self.size:
                self.images = img[None] if self.images is None else torch.cat([self.images, img[None]])
                out.append(img)
            elif torch.rand(()) < 0.5:
                j = int(torch.randint(n, ()))
                out.append(self.images[j].clone())
                self.images[j] = img
            else:
                out.append(img)
        return torch.stack(out)


def hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def to_rgb(sketch: torch.Tensor) -> torch.Tensor:
    """A 1-channel sketch as a grey RGB image (for grids and F's identity input)."""
    return sketch.expand(-1, 3, -1, -1)


def to_grey(face: torch.Tensor) -> torch.Tensor:
    """A face's luminance as a 1-channel image in [-1, 1] (G's identity input)."""
    return 0.299 * face[:, 0:1] + 0.587 * face[:, 1:2] + 0.114 * face[:, 2:3]


class CycleGAN(nn.Module):
    """The four networks and the losses that tie them; the loop owns data, optimisers and schedule."""

    def __init__(self, opts: CycleGANOptions):
        super().__init__()
        self.cfg = SketchGANConfig(z_dim=opts.z_dim, g_ch=opts.g_ch, f_ch=opts.f_ch, d_ch=opts.d_ch)
        self.G, self.F = SketchToFace(self.cfg), FaceToSketch(self.cfg)
        self.D_face = FaceDiscriminator(self.cfg, whole_face=opts.whole_face_d)
        self.D_sketch = PatchDiscriminator(1, opts.d_ch)
        self.opts = opts

    def generator_losses(self, x: torch.Tensor, lines: torch.Tensor, drawn: torch.Tensor, hair: torch.Tensor,
                         eye: torch.Tensor, doodles: torch.Tensor, d_hair: torch.Tensor, d_eye: torch.Tensor) -> dict:
        """G and F's losses for one batch: ``lines`` is the faces' line art (F's target), ``drawn`` the drawing
        G paints each face from; ``doodles`` is two copies of the same B/2 doodles (mode seeking)."""
        o, b, zd = self.opts, x.shape[0], self.cfg.z_dim
        cond, d_cond = tag_condition(hair, eye, N_HAIR, N_EYE), tag_condition(d_hair, d_eye, N_HAIR, N_EYE)
        z_d = torch.randn(b, zd, device=x.device)
        q = max(1, b // 4)  # quarter-batch slices: identity, and line art recoloured with random tags
        l_hair, l_eye = hair.clone(), eye.clone()  # the last q line drawings ask for other colours: no L1 for them
        l_hair[-q:], l_eye[-q:] = torch.randint_like(hair[-q:], N_HAIR), torch.randint_like(eye[-q:], N_EYE)

        fake_l = self.G(drawn, torch.randn(b, zd, device=x.device), tag_condition(l_hair, l_eye, N_HAIR, N_EYE))
        fake_d = self.G(doodles, z_d, d_cond)                              # (B, 3, 64, 64)
        sketch_x = self.F(x)                                               # (B, 1, 64, 64)
        cyc_d = self.F(fake_d)
        cyc_x = self.G(sketch_x, torch.randn(b, zd, device=x.device), cond)
        id_face = self.G(to_grey(x[:q]), torch.randn(q, zd, device=x.device), cond[:q])
        id_sketch = self.F(to_rgb(doodles[:q]))

        adv_l, hair_l, eye_l = self.D_face(fake_l)
        feat_d = self.D_face.features(fake_d)                             # (B, 4c, 8, 8), read again by fm
        adv_d, hair_d, eye_d = self.D_face.heads(feat_d)
        adv_face = -(adv_l.mean() + adv_d.mean()) / 2
        adv_sketch = -self.D_sketch(sketch_x).mean()
        cls = (F.cross_entropy(hair_l, l_hair) + F.cross_entropy(eye_l, l_eye)
               + F.cross_entropy(hair_d, d_hair) + F.cross_entropy(eye_d, d_eye)) / 2
        paired = (fake_l[:-q] - x[:-q]).abs().mean() + (sketch_x - lines).abs().mean()
        cycle_doodle, cycle_face = (cyc_d - doodles).abs().mean(), (cyc_x - x).abs().mean()
        identity = (id_face - x[:q]).abs().mean() + (id_sketch - doodles[:q]).abs().mean()
        h = b // 2
        ms_ratio = (fake_d[:h] - fake_d[h:]).abs().mean() / (z_d[:h] - z_d[h:]).abs().mean()
        ms = -ms_ratio.clamp(max=MS_CAP)  # bounded (DSGAN): MSGAN's 1 / ratio explodes while z is still ignored
        fm = (feat_d.mean(0) - self.D_face.features(x).mean(0).detach()).abs().mean() \
            if o.fm_weight else torch.zeros((), device=x.device)
        loss = (adv_face + adv_sketch + o.cls_weight * cls + o.paired_weight * paired
                + o.doodle_cycle_weight * cycle_doodle + o.cycle_weight * cycle_face
                + o.identity_weight * identity + o.ms_weight * ms + o.fm_weight * fm)
        return {"loss": loss, "g_adv": adv_face, "f_adv": adv_sketch, "g_cls": cls, "paired": paired,
                "cycle_doodle": cycle_doodle, "cycle_face": cycle_face, "identity": identity, "ms_ratio": ms_ratio,
                "fm": fm,
                "acc_hair_fake": (hair_d.argmax(1) == d_hair).float().mean(),
                "acc_eye_fake": (eye_d.argmax(1) == d_eye).float().mean(),
                "_fake_faces": torch.cat([fake_l, fake_d]), "_fake_sketches": sketch_x}

    def discriminator_losses(self, x: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor, real_sketches: torch.Tensor,
                             fake_faces: torch.Tensor, fake_sketches: torch.Tensor) -> dict:
        adv_real, h_logit, e_logit = self.D_face(x)
        adv_fake, _, _ = self.D_face(fake_faces)
        d_face = hinge_d(adv_real, adv_fake)
        cls = F.cross_entropy(h_logit, hair) + F.cross_entropy(e_logit, eye)
        d_sketch = hinge_d(self.D_sketch(real_sketches), self.D_sketch(fake_sketches))
        return {"loss": d_face + cls + d_sketch, "d_face": d_face, "d_sketch": d_sketch, "d_cls": cls,
                "acc_hair_real": (h_logit.argmax(1) == hair).float().mean(),
                "acc_eye_real": (e_logit.argmax(1) == eye).float().mean()}


def sample_inputs(doodles: torch.Tensor, faces: FaceDataset, z_dim: int, seed: int = 12345) -> dict[str, torch.Tensor]:
    """The fixed grid inputs: SAMPLE_ROWS held-out doodles, line drawings and crude line drawings, SAMPLE_TAGS
    with one z each."""
    n = min(SAMPLE_ROWS, len(faces))
    x = FaceDataset.to_float(faces.images[:n])
    hair = torch.tensor([HAIR_COLORS.index(h) for h, _ in SAMPLE_TAGS])
    eye = torch.tensor([EYE_COLORS.index(e) for _, e in SAMPLE_TAGS])
    return {"sketches": torch.cat([doodles[:SAMPLE_ROWS], line_art(x), render_ink(crude_ink(x))]), "faces": x,
            "z": torch.randn(len(SAMPLE_TAGS), z_dim, generator=torch.Generator().manual_seed(seed)),
            "cond": tag_condition(hair, eye, N_HAIR, N_EYE)}


@torch.no_grad()
def sample_grid(G: nn.Module, Fn: nn.Module, fixed: dict[str, torch.Tensor]) -> Image.Image:
    """Rows: each sketch, G's face for every SAMPLE_TAGS column, F's sketch of the first face; then real
    faces, F's sketches of them and their XDoG line art. Sketches show as grey."""
    rows = []
    k = len(SAMPLE_TAGS)
    for s in fixed["sketches"]:
        faces = G(s[None].expand(k, -1, -1, -1), fixed["z"], fixed["cond"])
        rows += [to_rgb(s[None]), faces, to_rgb(Fn(faces[:1]))]
    x = fixed["faces"]
    pad = torch.ones(k + 2 - len(x), 3, 64, 64, device=x.device)  # white, to end each row of the grid
    rows += [x, pad, to_rgb(Fn(x)), pad, to_rgb(line_art(x)), pad]
    return grid(to_uint8(torch.cat(rows)), k + 2)


def start_from(model: CycleGAN, G_ema: nn.Module, init: str) -> None:
    """Load another run's networks (read without pickle) into a new run; a tensor whose shape changed with
    the recipe (e.g. D_face's colour heads) keeps its fresh initialisation. From a weights file (the bundled
    sketch model keeps no run), G and its EMA start from it and the rest fresh."""
    if init.endswith(".safetensors"):
        g_state = load_module(init)[0].state_dict()
        state = {"model": {f"G.{k}": v for k, v in g_state.items()}, "G_ema": g_state}
    else:
        state = torch.load(init, map_location="cpu", weights_only=True)
    for net, saved in ((model, state["model"]), (G_ema, state["G_ema"])):
        load_matching(net, saved)


def training_loop(opts: CycleGANOptions, resume: bool = False, progress: bool = True) -> Path:
    """Train until ``opts.steps`` or ``opts.minutes`` (totals across resumes); return the exported G."""
    if opts.batch < 2 or opts.batch % 2:
        raise ValueError("--batch must be even (each doodle is drawn twice, with two latents)")
    run, resume_state, device = open_run(opts, resume)
    model = CycleGAN(opts).to(device)
    G_ema = copy.deepcopy(model.G).eval().requires_grad_(False)
    opt_g = torch.optim.Adam([*model.G.parameters(), *model.F.parameters()], opts.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([*model.D_face.parameters(), *model.D_sketch.parameters()], opts.lr, betas=(0.5, 0.999))
    face_pool, sketch_pool = FakePool(opts.pool_size), FakePool(opts.pool_size)
    ema_beta = 0.5 ** (opts.batch / EMA_HALF_LIFE_IMAGES)

    parts = {"model": model, "G_ema": G_ema, "opt_g": opt_g, "opt_d": opt_d}
    step, elapsed = restore(resume_state, parts)
    if resume_state is not None:
        face_pool.images, sketch_pool.images = resume_state["face_pool"], resume_state["sketch_pool"]
    elif opts.init:  # a new run that starts from another run's networks
        start_from(model, G_ema, opts.init)

    faces = FaceDataset.load(opts.data, "train", progress=progress)
    doodles = DoodleSet.load(opts.doodles, "train")
    fixed = {k: v.to(device) for k, v in sample_inputs(
        DoodleSet.load(opts.doodles, "heldout").sketches(), heldout_faces(opts.data), opts.z_dim).items()}
    sched = Schedule(run, opts, opts.batch, "cyclegan", progress, step, elapsed)

    def snapshot() -> None:
        run.save_snapshot(snapshot_state(parts, sched.step, sched.elapsed,
                                         face_pool=face_pool.images, sketch_pool=sketch_pool.images))
        info = dict(step=sched.step, kimg=round(sched.step * opts.batch / 1000, 1),
                    train_minutes=round(sched.elapsed / 60, 1), images=len(faces), doodles=len(doodles))
        save_module(G_ema, run.path / "generator.safetensors", model.cfg.to_dict("sketch2face"), **info)
        save_module(model.F, run.path / "face2sketch.safetensors", model.cfg.to_dict("face2sketch"), **info)
        loss_curve(run.stats, run.path / "loss.png",
                   ("d_face", "g_adv", "d_sketch", "f_adv", "paired", "cycle_doodle", "cycle_face", "ms_ratio",
                    "acc_hair_fake", "acc_eye_fake"))

    def write_grid() -> None:
        sample_grid(G_ema, model.F, fixed).save(run.path / f"fakes{sched.step:06d}.png")

    def postfix(means: dict[str, float]) -> dict[str, str]:
        return dict(paired=f"{means['paired']:.3f}", cyc=f"{means['cycle_face']:.3f}",
                    hair=f"{means['acc_hair_fake']:.2f}", eye=f"{means['acc_eye_fake']:.2f}")

    b, h = opts.batch, opts.batch // 2
    model.train()
    while not sched.done():
        sched.begin()
        idx = torch.randint(len(faces), (max(b, opts.d_real_batch),))  # the first b also go through G and F
        real = FaceDataset.to_float(faces.images[idx])
        flip = torch.rand(len(idx)) < 0.5
        real = torch.where(flip[:, None, None, None], real.flip(3), real).to(device)
        real_hair, real_eye = faces.hair[idx].to(device), faces.eye[idx].to(device)
        x, hair, eye = real[:b], real_hair[:b], real_eye[:b]
        lines = line_art(x)
        crude = (torch.rand(b) < opts.crude_share).to(device)[:, None, None, None]
        drawn = torch.where(crude, render_ink(crude_ink(x), stroke_jitter(b).to(device)), lines)
        d = doodles.augmented(torch.randint(len(doodles), (h,))).to(device)
        d_hair, d_eye = torch.randint(N_HAIR, (h,), device=device), torch.randint(N_EYE, (h,), device=device)

        model.D_face.requires_grad_(False), model.D_sketch.requires_grad_(False)
        g_out = model.generator_losses(x, lines, drawn, hair, eye, torch.cat([d, d]), d_hair.repeat(2),
                                       d_eye.repeat(2))
        opt_g.zero_grad(set_to_none=True)
        g_out["loss"].backward()
        opt_g.step()
        model.D_face.requires_grad_(True), model.D_sketch.requires_grad_(True)

        d_out = model.discriminator_losses(
            real, real_hair, real_eye, torch.cat([d, lines[:h]]),
            face_pool.query(g_out.pop("_fake_faces")), sketch_pool.query(g_out.pop("_fake_sketches")))
        opt_d.zero_grad(set_to_none=True)
        d_out["loss"].backward()
        opt_d.step()
        ema_update(G_ema, model.G, ema_beta)

        sched.end({**g_out, **d_out}, postfix, write_grid, snapshot)
    sched.finish(write_grid, snapshot)
    return run.path / "generator.safetensors"
