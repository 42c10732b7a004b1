"""``moebot train acgan``: the conditional face GAN's training loop.

Four presets share the loop. ``face-gan`` is the residual model in
generator/models/face_gan.py, trained with DiffAugment; ``face-gan-128`` is the
same model drawing 128 px faces, trained on the 128 px set (see
FaceGAN128Objective); ``default`` is the
earlier transposed-conv model in generator/models/acgan.py (both: hinge +
projection + auxiliary classifiers, spectral norm, conditional BN, EMA
generator). ``seed-acgan`` reproduces the original public ACGAN (BCE losses,
classification loss on real images only for D, batch 128, Adam 2e-4, beta1
0.5) so it can be compared with them on the same data.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from generator.images import grid, to_uint8
from generator.models import acgan, face_gan, seed_acgan, tag_condition
from generator.tags import EYE_COLORS, N_EYE, N_HAIR
from generator.weights import load_module, read_metadata, save_module
from training.augment import diff_augment
from training.dataset import FaceDataset
from training.plots import loss_curve
from training.runs import Schedule, open_run, restore, snapshot_state

SAMPLE_EYES = ("blue", "red", "green", "yellow", "purple", "brown")  # grid columns; rows are all 12 hair colours
Tags = tuple[torch.Tensor, torch.Tensor]  # (hair, eye) indices per face; -1 = untagged (real faces only)


@dataclass
class TrainOptions:
    data: str
    run: str
    preset: str = "default"
    steps: int | None = None          # stop after this many steps in total (across resumes)
    minutes: float | None = None      # or after this much training time in total
    clock: str = "wall"               # "cpu": count process CPU time, for fair comparisons on a busy machine
    batch: int | None = None          # default: the preset's
    seed: int = 0
    device: str = "auto"
    threads: int = 0                  # torch threads; 0 = leave torch's default
    snapshot_every: int = 250
    sample_every: int = 500
    log_every: int = 25
    g_ch: int | None = None           # network widths; default: the preset's
    d_ch: int | None = None
    g_cls_weight: float = 1.0         # default preset: weight of the generator's classification loss
    init: str | None = None           # fine-tune: start the generator from these weights (its size wins)
    init_d: str | None = None         # fine-tune: start the discriminator from these weights (else a fresh one)
    d_warmup: int = 0                 # fine-tune: steps that train only the fresh discriminator
    g_ramp: int = 0                   # fine-tune: steps after d_warmup over which G's rate rises from 0 to lr
    d_ramp: int = 0                   # fine-tune: first steps, over which D's rate rises from 0 to lr_d
    curated_share: float = 0.0        # most of each batch drawn from curated faces (see batch_weights)
    curated_half: int = 20            # curated faces at which they get half of curated_share
    lr: float | None = None           # Adam learning rate of G; default: the preset's
    lr_d: float | None = None         # of D; default: G's times the preset's ratio (face-gan: 4x, TTUR)


class Objective(Protocol):
    """One preset's networks, hyper-parameters and losses."""

    batch: int
    lr: float
    lr_d: float
    betas: tuple[float, float]
    ema: bool  # export an EMA of the generator's weights (else the raw generator)
    config: acgan.ACGANConfig | seed_acgan.SeedACGANConfig
    G: nn.Module
    D: nn.Module

    def load_data(self, data_dir: str, progress: bool) -> FaceDataset: ...

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor, tags: Tags, fake_tags: Tags) -> dict: ...

    def g_loss(self, fake: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor) -> dict: ...


class DefaultObjective:
    """The transposed-conv ACGAN of generator/models/acgan.py: hinge + projection + auxiliary classifiers."""

    batch, lr, lr_d, betas, ema = 64, 2e-4, 2e-4, (0.5, 0.999), True
    model = acgan
    model_options: dict = {}  # the model's Config fields that the preset fixes

    def __init__(self, opts: TrainOptions):
        widths = {k: v for k in ("g_ch", "d_ch") if (v := getattr(opts, k)) is not None}
        self.config = self.model.Config(**widths, **self.model_options)
        self.G, self.D = self.model.Generator(self.config), self.model.Discriminator(self.config)
        self.g_cls_weight = opts.g_cls_weight

    def load_data(self, data_dir: str, progress: bool) -> FaceDataset:
        """The faces this preset trains on: the tagged 64 px training split."""
        return FaceDataset.load(data_dir, "train", progress=progress)

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """What D sees of every face, real or fake."""
        return images

    def d_loss(self, real, fake, tags, fake_tags):
        (hair, eye), (fake_hair, fake_eye) = tags, fake_tags
        adv_real, h_logit, e_logit = self.D(self.augment(real), hair, eye)
        adv_fake, _, _ = self.D(self.augment(fake), fake_hair, fake_eye)
        adv = F.relu(1 - adv_real).mean() + F.relu(1 + adv_fake).mean()
        cls = tagged_ce(h_logit, hair) + tagged_ce(e_logit, eye)
        return {"loss": adv + cls, "d_adv": adv, "d_cls": cls,
                "acc_hair_real": tagged_accuracy(h_logit, hair), "acc_eye_real": tagged_accuracy(e_logit, eye)}

    def g_loss(self, fake, hair, eye):
        adv_fake, h_logit, e_logit = self.D(self.augment(fake), hair, eye)
        adv = -adv_fake.mean()
        cls = F.cross_entropy(h_logit, hair) + F.cross_entropy(e_logit, eye)
        return {"loss": adv + self.g_cls_weight * cls, "g_adv": adv, "g_cls": cls,
                "acc_hair_fake": (h_logit.argmax(1) == hair).float().mean(),
                "acc_eye_fake": (e_logit.argmax(1) == eye).float().mean()}


class FaceGANObjective(DefaultObjective):
    """The residual face GAN of generator/models/face_gan.py, with DiffAugment (the set is small for a GAN)
    and Adam's beta1 at 0, as BigGAN and SNGAN train residual hinge GANs."""

    lr, lr_d, betas = 1e-4, 4e-4, (0.0, 0.999)  # one D step per G step needs a faster D (TTUR, as SAGAN/BigGAN)
    model = face_gan

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        return diff_augment(images)


class FaceGAN128Objective(FaceGANObjective):
    """Path (a) of the 128 px faces: the face GAN at ``size=128``, trained on the 128 px set.

    Most of that set is untagged (tag -1: no projection, no colour loss for that face), and some colour pairs
    are rare in it, so each D step also classifies a half batch of the tagged 64 px faces through D's 64 px
    entry: the colours are learnt from 34k tagged faces, the look from the 128 px ones."""

    model_options = {"size": 128}
    colours: FaceDataset  # the tagged 64 px faces, set by load_data

    def load_data(self, data_dir: str, progress: bool) -> FaceDataset:
        """The 128 px faces, imported and curated (a data directory or a retraining run's rows file; curated ones
        weighted as at 64 px, see batch_weights), and the tagged 64 px faces for the colours."""
        self.colours = super().load_data(data_dir, progress)
        return FaceDataset.load_size(data_dir, 128, "train", progress=progress, statuses=("base", "curated"))

    def d_loss(self, real, fake, tags, fake_tags):
        out = super().d_loss(real, fake, tags, fake_tags)
        idx = torch.randint(len(self.colours), (real.shape[0] // 2,))
        faces = FaceDataset.to_float(self.colours.images[idx]).to(real.device, memory_format=torch.channels_last)
        h_logit, e_logit = self.D.classify64(self.augment(faces))
        hair, eye = self.colours.hair[idx].to(real.device), self.colours.eye[idx].to(real.device)
        cls64 = F.cross_entropy(h_logit, hair) + F.cross_entropy(e_logit, eye)
        return {**out, "loss": out["loss"] + cls64, "d_cls64": cls64}


class SeedObjective:
    batch, lr, lr_d, betas, ema = 128, 2e-4, 2e-4, (0.5, 0.999), False  # the original exported its raw generator

    def __init__(self, opts: TrainOptions):
        self.config = seed_acgan.SeedACGANConfig()
        self.G, self.D = seed_acgan.Generator(self.config), seed_acgan.Discriminator(self.config)
        self.G.apply(seed_acgan.init_weights)
        self.D.apply(seed_acgan.init_weights)

    load_data = DefaultObjective.load_data

    def d_loss(self, real, fake, tags, fake_tags):
        hair, eye = tags
        adv_real, cls_real = self.D(real)
        adv_fake, _ = self.D(fake)
        adv = (F.binary_cross_entropy_with_logits(adv_real, torch.ones_like(adv_real))
               + F.binary_cross_entropy_with_logits(adv_fake, torch.zeros_like(adv_fake)))
        cls = F.binary_cross_entropy_with_logits(cls_real, tag_condition(hair, eye))
        return {"loss": adv + cls, "d_adv": adv, "d_cls": cls,
                "acc_hair_real": (cls_real[:, :N_HAIR].argmax(1) == hair).float().mean(),
                "acc_eye_real": (cls_real[:, N_HAIR:].argmax(1) == eye).float().mean()}

    def g_loss(self, fake, hair, eye):
        adv_fake, cls_fake = self.D(fake)
        adv = F.binary_cross_entropy_with_logits(adv_fake, torch.ones_like(adv_fake))
        cls = F.binary_cross_entropy_with_logits(cls_fake, tag_condition(hair, eye))
        return {"loss": adv + cls, "g_adv": adv, "g_cls": cls,
                "acc_hair_fake": (cls_fake[:, :N_HAIR].argmax(1) == hair).float().mean(),
                "acc_eye_fake": (cls_fake[:, N_HAIR:].argmax(1) == eye).float().mean()}


PRESETS: dict[str, Callable[[TrainOptions], Objective]] = {
    "default": DefaultObjective, "face-gan": FaceGANObjective, "face-gan-128": FaceGAN128Objective,
    "seed-acgan": SeedObjective}
PRESET_OF_ARCH = {"acgan": "default", "face-gan": "face-gan", "seed-acgan": "seed-acgan"}
EMA_HALF_LIFE_IMAGES = 10_000


def preset_of(config: dict) -> str:
    """The preset that trains weights with this config: a fine-tune continues its parent's."""
    preset = PRESET_OF_ARCH[config["arch"]]
    return "face-gan-128" if preset == "face-gan" and config.get("size", 64) == 128 else preset


def tagged_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the tagged faces only (target -1 = untagged); 0 when none is tagged."""
    return F.cross_entropy(logits, target, ignore_index=-1, reduction="sum") / (target >= 0).sum().clamp(min=1)


def tagged_accuracy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    tagged = target >= 0
    return ((logits.argmax(1) == target) & tagged).sum() / tagged.sum().clamp(min=1)


def fill_untagged(tags: Tags, data: FaceDataset) -> Tags:
    """Tags for the fakes drawn beside a batch of real faces: the reals' own, and for an untagged real a
    colour drawn from the tagged faces, so fakes follow the set's colour mix and every fake has a tag."""
    filled = []
    for tag, column in zip(tags, (data.hair, data.eye)):
        if (tag < 0).any():
            pool = column[column >= 0]
            tag = torch.where(tag >= 0, tag, pool[torch.randint(len(pool), tag.shape)].to(tag.device))
        filled.append(tag)
    return filled[0], filled[1]


def load_matching(net: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy the tensors of ``state`` whose name and shape ``net`` shares (growing a 64 px face GAN to 128 px
    keeps every layer but the new ones, which keep their fresh initialisation)."""
    own = net.state_dict()
    net.load_state_dict({k: v for k, v in state.items() if k in own and own[k].shape == v.shape}, strict=False)


def batch_weights(data: FaceDataset, share: float, half: int) -> torch.Tensor | None:
    """Sampling weights that give the curated faces ``share * n / (n + half)`` of every batch.

    A handful of curated faces then matters (20 of them get half the share, however big the base)
    and thousands never drown the base (their share is capped). None: sample uniformly.
    """
    n = int(data.curated.sum()) if data.curated is not None else 0
    if share <= 0 or n == 0 or n == len(data):
        return None
    mass = share * n / (n + half)
    return torch.where(data.curated, mass / n, (1 - mass) / (len(data) - n))


def sample_latents(z_dim: int, seed: int = 12345) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed grid: rows are every hair colour, columns SAMPLE_EYES, one latent per column."""
    g = torch.Generator().manual_seed(seed)
    z_cols = torch.randn(len(SAMPLE_EYES), z_dim, generator=g)
    hair = torch.arange(N_HAIR).repeat_interleave(len(SAMPLE_EYES))
    eye = torch.tensor([EYE_COLORS.index(e) for e in SAMPLE_EYES]).repeat(N_HAIR)
    return z_cols.repeat(N_HAIR, 1), hair, eye


def ramp(opt: torch.optim.Optimizer, lr: float, step: int, steps: int) -> None:
    """Set the rate of an optimiser's ``step``-th step (0-based) on a linear rise from 0 to ``lr`` over ``steps``:
    a fine-tune's fresh Adam moments would otherwise first move every trained weight by about lr at once."""
    for group in opt.param_groups:
        group["lr"] = lr * min(1.0, (step + 1) / max(1, steps))


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """Move ``ema``'s weights a ``1 - beta`` step towards ``model``'s; buffers (BN stats) are copied."""
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p, 1 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


@torch.no_grad()
def standing_stats(G: nn.Module, z_dim: int, device: torch.device, batches: int = 4, batch: int = 128) -> None:
    """Re-estimate the EMA generator's BatchNorm statistics from its own outputs.

    The EMA weights never ran in train mode, so running stats copied from the
    raw generator do not match them; averaging fresh batch stats fixes that.
    512 faces do (each channel's mean is over every pixel of each): a 128 px
    model's export would cost a nightly run and a test a minute at 2,048.
    """
    bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the passes below
    G.train()
    for _ in range(batches):
        hair = torch.randint(N_HAIR, (batch,), device=device)
        eye = torch.randint(N_EYE, (batch,), device=device)
        G(torch.randn(batch, z_dim, device=device), tag_condition(hair, eye))
    G.eval()
    for bn in bns:
        bn.momentum = 0.1


def training_loop(opts: TrainOptions, resume: bool = False, progress: bool = True) -> Path:
    """Train until ``opts.steps`` or ``opts.minutes`` (totals across resumes); return the exported generator."""
    growing = False
    if opts.init:  # the networks must match the weights they start from: their preset and widths
        config = read_metadata(opts.init)["config"]
        parent = preset_of(config)
        growing = opts.preset == "face-gan-128" and parent == "face-gan"  # a 64 px face GAN grown to 128 px
        opts.preset = opts.preset if growing else parent
        opts.g_ch, opts.d_ch = config.get("g_ch", opts.g_ch), config.get("d_ch", opts.d_ch)
    run, resume_state, device = open_run(opts, resume)
    objective = PRESETS[opts.preset](opts)
    if resume_state is None:
        for path, net in ((opts.init, objective.G), (opts.init_d, objective.D)):
            if path:
                state = load_module(path)[0].state_dict()
                if growing:
                    load_matching(net, state)
                else:
                    net.load_state_dict(state)
    # channels-last: the CPU's convolutions run ~1.5x faster on it
    G = objective.G.to(device, memory_format=torch.channels_last)
    D = objective.D.to(device, memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    lr_g = opts.lr or objective.lr
    # A G rate alone (the retrainer's) keeps the preset's D:G ratio: face-gan's D must stay 4x faster than G
    lr_d = opts.lr_d or lr_g * objective.lr_d / objective.lr
    opt_g = torch.optim.Adam(G.parameters(), lr_g, betas=objective.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr_d, betas=objective.betas)
    batch = opts.batch or objective.batch
    z_dim = objective.config.z_dim
    ema_beta = 0.5 ** (batch / EMA_HALF_LIFE_IMAGES) if objective.ema else 0.0

    parts = {"G": G, "D": D, "G_ema": G_ema, "opt_g": opt_g, "opt_d": opt_d}
    step, elapsed = restore(resume_state, parts)

    data = objective.load_data(opts.data, progress)
    weights = batch_weights(data, opts.curated_share, opts.curated_half)
    fixed = [t.to(device) for t in sample_latents(z_dim)]
    sched = Schedule(run, opts, batch, opts.preset, progress, step, elapsed)

    export_cache: dict[int, nn.Module] = {}

    def exported() -> nn.Module:
        """The generator as it will be served: EMA weights with standing BN stats, or the raw one in eval mode.

        Built once per step: a step that writes both a grid and a snapshot re-estimates the stats once."""
        if sched.step not in export_cache:
            export = copy.deepcopy(G_ema)
            if objective.ema:
                standing_stats(export, z_dim, device)
            export_cache.clear()
            export_cache[sched.step] = export.eval()
        return export_cache[sched.step]

    def snapshot() -> None:
        run.save_snapshot(snapshot_state(parts, sched.step, sched.elapsed))
        save_module(exported(), run.path / "generator.safetensors", objective.config.to_dict(),
                    preset=opts.preset, step=sched.step, kimg=round(sched.step * batch / 1000, 1),
                    train_minutes=round(sched.elapsed / 60, 1), images=len(data))
        if isinstance(objective, DefaultObjective):  # its partner, for a later fine-tune to start from
            config = objective.config.to_dict()
            save_module(D, run.path / "discriminator.safetensors", {**config, "arch": config["arch"] + "-d"},
                        step=sched.step)
        loss_curve(run.stats, run.path / "loss.png",
                   ("d_adv", "g_adv", "d_cls", "g_cls", "acc_hair_fake", "acc_eye_fake"))

    def sample_grid() -> None:
        with torch.no_grad():
            imgs = to_uint8(exported()(fixed[0], tag_condition(fixed[1], fixed[2])))
        grid(imgs, len(SAMPLE_EYES)).save(run.path / f"fakes{sched.step:06d}.png")

    def postfix(means: dict[str, float]) -> dict[str, str]:
        return dict(d=f"{means['d_adv']:.2f}", g=f"{means['g_adv']:.2f}", hair=f"{means['acc_hair_fake']:.2f}",
                    eye=f"{means['acc_eye_fake']:.2f}")

    G.train(), D.train()
    while not sched.done():
        sched.begin()
        idx = torch.randint(len(data), (batch,)) if weights is None else torch.multinomial(weights, batch, True)
        real = FaceDataset.to_float(data.images[idx]).to(device, memory_format=torch.channels_last)
        flip = torch.rand(batch, device=device) < 0.5
        real = torch.where(flip[:, None, None, None], real.flip(3), real)
        tags = data.hair[idx].to(device), data.eye[idx].to(device)
        hair, eye = fill_untagged(tags, data)
        fake = G(torch.randn(batch, z_dim, device=device), tag_condition(hair, eye))

        d_out = objective.d_loss(real, fake.detach(), tags, (hair, eye))
        ramp(opt_d, lr_d, sched.step, opts.d_ramp)
        opt_d.zero_grad(set_to_none=True)
        d_out["loss"].backward()
        opt_d.step()

        D.requires_grad_(False)
        g_out = objective.g_loss(fake, hair, eye)
        if sched.step >= opts.d_warmup:  # a fine-tune's fresh D first learns to judge the faces G already draws
            ramp(opt_g, lr_g, sched.step - opts.d_warmup, opts.g_ramp)
            opt_g.zero_grad(set_to_none=True)
            g_out["loss"].backward()
            opt_g.step()
        D.requires_grad_(True)

        ema_update(G_ema, G, ema_beta)

        sched.end({**d_out, **g_out}, postfix, sample_grid, snapshot)
    sched.finish(sample_grid, snapshot)
    return run.path / "generator.safetensors"
