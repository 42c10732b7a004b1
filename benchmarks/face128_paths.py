"""The 128 px face paths side by side, on the same held-out 128 px faces.

For each path: Inception FID and KID x1000 of ``moebot sample --per-tag 13 --size 128`` (1,560 faces)
against the held-out tenth of the 128 px set (with the real-vs-real floor), colour accuracy of those
faces (the evaluation classifier reading them at its 64 px input, against the colours asked for), and
model time per face at batch 1 (face generator + stage, median of repeated calls).

    (a) a generator that draws 128 px directly:     --direct FILE (``moebot train acgan --preset face-gan-128``)
    (b) the 64 px face generator + a 2x upscaler:   --upscaler FILE
    (c) the 64 px face generator + Lanczos:          unless --skip-lanczos

    python benchmarks/face128_paths.py [--weights G] [--direct FILE] [--upscaler FILE] [--data data] [--threads 1]
                                       [--speed-only]

``--speed-only`` prints only the model time (it does not depend on training: any weights of the
architecture measure it).

Needs ``moebot import ../shared/data/anime-faces-128 --size 128`` and the 'fid' extra. Inception runs at
~1.5 faces/s on one busy core here: real features are cached in data/cache, so each path costs ~20 min.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from generator.images import to_pil  # noqa: E402
from generator.sampler import FaceSampler  # noqa: E402
from training.auto_tags import read_colours  # noqa: E402
from training.evaluate import PER_TAG, sampler_fidelity  # noqa: E402
from training.tag_predictor import load_tagger  # noqa: E402


def colour_accuracy(sampler: FaceSampler, per_tag: int) -> tuple[float, float]:
    """How often the classifier reads the asked-for hair and eye colours on the 128 px per-tag faces."""
    tagger, hits_h, hits_e, n = load_tagger(), 0, 0, 0
    for h, e, faces in sampler.per_tag(per_tag, 0, 128):
        hair, eye, _ = read_colours(tagger, [to_pil(f) for f in faces])
        hits_h, hits_e, n = hits_h + int((hair == h).sum()), hits_e + int((eye == e).sum()), n + len(faces)
    return hits_h / n, hits_e / n


def ms_per_face(sampler: FaceSampler, repeats: int = 30) -> float:
    """Median model time of one 128 px face at batch 1."""
    times = []
    for i in range(repeats + 3):
        t0 = time.perf_counter()
        sampler.faces([i % 12], [i % 10], [i], 128)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times[3:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", help="64 px face generator (default: the bundled one)")
    p.add_argument("--direct", help="128 px face generator for path (a)")
    p.add_argument("--upscaler", help="2x upscaler weights for path (b)")
    p.add_argument("--data", default="data")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-lanczos", action="store_true", help="leave path (c) out")
    p.add_argument("--speed-only", action="store_true", help="model time per face only")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    paths = {} if args.skip_lanczos else {"(c) 64 px + Lanczos": FaceSampler.load(args.weights, "cpu")}
    if args.direct:
        paths["(a) 128 px generator"] = FaceSampler.load(args.direct, "cpu")
    if args.upscaler:
        paths["(b) 64 px + upscaler"] = FaceSampler.load(args.weights, "cpu").with_upscaler(args.upscaler)
    for name, sampler in paths.items():
        if args.speed_only:
            print(f"{name} [{sampler.version}]: {ms_per_face(sampler):.1f} ms per face at batch 1 "
                  f"({args.threads} thread)", flush=True)
            continue
        fid = sampler_fidelity(sampler, args.data, 128, progress=True)
        hair, eye = colour_accuracy(sampler, PER_TAG[128])
        print(f"{name} [{sampler.version}]: FID {fid.fid:.1f}, KID x1000 {fid.kid:.1f} "
              f"(real vs real: FID {fid.floor_fid:.1f}, KID {fid.floor_kid:.1f}; {fid.n_fake} vs {fid.n_real}); "
              f"hair {hair:.3f}, eye {eye:.3f}; {ms_per_face(sampler):.1f} ms per face at batch 1 "
              f"({args.threads} thread)", flush=True)


if __name__ == "__main__":
    main()
