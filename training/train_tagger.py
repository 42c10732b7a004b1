"""``moebot train tagger``: the evaluation classifier, trained on the train split of the tagged faces.

Its accuracy on the held-out split is the ceiling that generated faces are
measured against, so it is written into the weights file beside the network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from generator.models.tagger import Tagger, TaggerConfig
from generator.weights import save_module
from training.dataset import FaceDataset
from training.runs import RunFolder


@dataclass
class TaggerOptions:
    data: str
    run: str
    epochs: int = 6
    batch: int = 128
    lr: float = 2e-3
    seed: int = 0
    threads: int = 0


def augment(x: torch.Tensor) -> torch.Tensor:
    """Flip and shift by up to 4 px: label-preserving (no colour jitter, colours are the labels)."""
    b = x.shape[0]
    flip = torch.rand(b) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (4, 4, 4, 4), mode="replicate")
    dx, dy = torch.randint(0, 9, (2,))
    return padded[:, :, dy:dy + 64, dx:dx + 64]


@torch.no_grad()
def accuracy(model: Tagger, data: FaceDataset, batch: int = 512) -> tuple[float, float]:
    model.eval()
    hits_h = hits_e = 0
    for i in range(0, len(data), batch):
        h, e = model(FaceDataset.to_float(data.images[i:i + batch]))
        hits_h += int((h.argmax(1) == data.hair[i:i + batch]).sum())
        hits_e += int((e.argmax(1) == data.eye[i:i + batch]).sum())
    return hits_h / len(data), hits_e / len(data)


def train_tagger(opts: TaggerOptions, progress: bool = True) -> Path:
    run = RunFolder(opts.run)
    run.start(opts, resume=False)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    train = FaceDataset.load(opts.data, "train", progress=progress)
    heldout = FaceDataset.load(opts.data, "heldout", progress=progress)
    model = Tagger(TaggerConfig())
    steps_per_epoch = max(1, len(train) // opts.batch)
    opt = torch.optim.AdamW(model.parameters(), opts.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, opts.lr, total_steps=opts.epochs * steps_per_epoch)
    t0 = time.perf_counter()
    for epoch in range(opts.epochs):
        model.train()
        perm = torch.randperm(len(train))
        for i in tqdm(range(steps_per_epoch), desc=f"tagger epoch {epoch + 1}/{opts.epochs}", disable=not progress):
            idx = perm[i * opts.batch:(i + 1) * opts.batch]
            h, e = model(augment(FaceDataset.to_float(train.images[idx])))
            loss = F.cross_entropy(h, train.hair[idx], label_smoothing=0.1) + F.cross_entropy(
                e, train.eye[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc_h, acc_e = accuracy(model, heldout)
        run.log((epoch + 1) * steps_per_epoch, epoch=epoch + 1, loss=float(loss.detach()), heldout_hair_acc=acc_h,
                heldout_eye_acc=acc_e, minutes=(time.perf_counter() - t0) / 60)
    out = run.path / "tagger.safetensors"
    save_module(model, out, model.cfg.to_dict(), heldout_hair_acc=acc_h, heldout_eye_acc=acc_e,
                heldout_images=len(heldout), train_images=len(train), epochs=opts.epochs)
    return out
