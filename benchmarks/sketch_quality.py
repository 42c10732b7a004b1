"""The sketch-to-face generator against the issue's bar, next to the face generator.

Prints the held-out sketch figures of training/sketch_metrics.py (doodles and
line art: colour accuracy / ceiling, hair colours with none requested, Fréchet
distance), the face generator's Fréchet distance on the same number of faces
with the same requested tags (FD grows as samples shrink, so the two are only
comparable at equal n), GFLOP per converted sketch and batch-1 milliseconds;
optionally writes a picture of held-out sketches beside their faces.

Then the fidelity yardstick (training/sketch_metrics.py, ``fidelity_yardstick``):
KID against real faces and the classifier FD of --n held-out doodles and --n
rough mouse drawings converted, next to the face generator's faces for the same
colour pairs and the real-vs-real floor, with the layout figures (eyes and chin
where drawn, strokes copied) in the same table. Inception runs at ~1.5 images
a second on this CPU: --n 200 reads 1,200 images (the real ones are cached in
the data directory's cache/ after the first run); --n 0 leaves it out.

    python benchmarks/sketch_quality.py --data data --doodles ../shared/data/doodles/smiley-faces-28.npy \
        [--weights FILE] [--threads 2] [--picture docs/sketch.png] [--n 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from generator.images import grid, to_uint8  # noqa: E402
from generator.models import tag_condition  # noqa: E402
from generator.tags import EYE_COLORS, HAIR_COLORS  # noqa: E402
from generator.sampler import SketchSampler  # noqa: E402
from generator.weights import BUNDLED_GENERATOR, load_module  # noqa: E402
from training.dataset import FaceDataset  # noqa: E402
from training.metrics import classify, frechet_distance  # noqa: E402
from training.rough_drawings import rough_set  # noqa: E402
from training.sketch_metrics import (SETS, SketchEvaluator, faces_for_tags, fidelity_yardstick,  # noqa: E402
                                     format_table, format_yardstick, load_sketch_evaluator)
from training.train_cyclegan import SAMPLE_TAGS, to_rgb  # noqa: E402


@torch.no_grad()
def face_generator_fd(G_face: torch.nn.Module, ev: SketchEvaluator, seed: int = 0) -> float:
    """FD of the face generator on faces drawn for exactly the tags the sketch evaluation requests."""
    hair = torch.cat([ev.tags[s][0] for s in SETS])
    eye = torch.cat([ev.tags[s][1] for s in SETS])
    z = torch.randn(len(hair), G_face.cfg.z_dim, generator=torch.Generator().manual_seed(seed))
    feats, _, _ = classify(ev.tagger, faces_for_tags(G_face, hair, eye, z))
    return frechet_distance(feats.double().numpy(), ev.real_features.double().numpy())


@torch.no_grad()
def speed(G: torch.nn.Module, repeats: int = 50) -> tuple[float, float]:
    """(GFLOP per converted sketch, median batch-1 milliseconds) of eager fp32 inference."""
    s, z = torch.ones(1, 1, 64, 64), torch.randn(1, G.cfg.z_dim)
    cond = tag_condition(torch.tensor([0]), torch.tensor([0]))
    with FlopCounterMode(display=False) as counter:
        G(s, z, cond)
    for _ in range(5):
        G(s, z, cond)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        G(s, z, cond)
        times.append((time.perf_counter() - t0) * 1000)
    return counter.get_total_flops() / 1e9, statistics.median(times)


@torch.no_grad()
def picture(G: torch.nn.Module, ev: SketchEvaluator, rows: int = 4, seed: int = 0):
    """Rows of held-out doodles then rough pad drawings (the yardstick's): the sketch (enlarged to the faces'
    size), then its face in each SAMPLE_TAGS pair."""
    hair = torch.tensor([HAIR_COLORS.index(h) for h, _ in SAMPLE_TAGS])
    eye = torch.tensor([EYE_COLORS.index(e) for _, e in SAMPLE_TAGS])
    z = torch.randn(len(SAMPLE_TAGS), G.cfg.z_dim, generator=torch.Generator().manual_seed(seed))
    tiles = []
    for s in torch.cat([ev.sketches["doodle"][:rows], rough_set(rows).sketches]):
        faces = G(s[None].expand(len(hair), -1, -1, -1), z, tag_condition(hair, eye))
        tiles += [F.interpolate(to_rgb(s[None]), size=faces.shape[-2:], mode="nearest"), faces]
    return grid(to_uint8(torch.cat(tiles)), len(SAMPLE_TAGS) + 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data")
    p.add_argument("--doodles", required=True, help="QuickDraw smiley bitmaps .npy (28x28 uint8)")
    p.add_argument("--weights", default=str(SketchSampler.bundled), help="sketch weights: a CycleGAN generator or a "
                   "sketch encoder (drawn through the face model it was trained against)")
    p.add_argument("--face-weights", default=str(BUNDLED_GENERATOR))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--picture", help="write held-out sketches beside their faces to this PNG")
    p.add_argument("--n", type=int, default=200, help="sketches per set in the fidelity yardstick (0: leave it out)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    sampler = SketchSampler.load(args.weights, "cpu")  # a CycleGAN generator, or a sketch encoder + its face model
    G = sampler.G
    ev = load_sketch_evaluator(args.data, args.doodles, seed=args.seed)
    result = {"model": f"{os.path.basename(args.weights)} ({sampler.version})", **ev.evaluate(G, args.seed)}
    G_face, _ = load_module(args.face_weights)
    result["face_generator_fd_same_tags"] = face_generator_fd(G_face, ev, args.seed)
    result["gflop"], result["ms_batch1"] = speed(G)
    print(format_table(result))
    print(f"face generator, same {result['images']} tag pairs: Fréchet distance "
          f"{result['face_generator_fd_same_tags']:.2f}")
    print(f"{result['gflop']:.3f} GFLOP per sketch, {result['ms_batch1']:.1f} ms at batch 1 ({args.threads} threads)")
    print(json.dumps(result))
    if args.picture:
        picture(G, ev, seed=args.seed).save(args.picture, optimize=True)
        print(f"wrote {args.picture}")
    if args.n:
        heldout, train = (FaceDataset.load(args.data, split, progress=False) for split in ("heldout", "train"))
        yardstick = fidelity_yardstick(G, G_face, ev, rough_set(args.n), heldout.images, train.images,
                                       Path(args.data) / "cache", args.n, args.seed, progress=True)
        print(format_yardstick(yardstick))
        print(json.dumps({"model": result["model"], "yardstick": yardstick}))


if __name__ == "__main__":
    main()
