"""One /sketch end to end on this CPU: uploaded bytes in, the reply's PNG bytes out.

Each run decodes and normalises the upload (``normalise_sketch``), paints the
face with the sketch model at batch 1 and encodes the reply picture the bot
sends (the drawing and the face side by side at the display size), which is
everything /sketch does besides the chat round trip and the queue. Two uploads:
a drawing app's PNG export (1024x768) and a phone photo of paper (JPEG,
4032x3024, uneven light). Prints p50/p99 per stage and in total.

    python benchmarks/sketch_speed.py [--weights FILE] [--runs 50] [--threads N] [--size 256]
"""

from __future__ import annotations

import argparse
import io
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from bot.pictures import beside_png  # noqa: E402
from generator.images import to_pil  # noqa: E402
from generator.requests import Pictures  # noqa: E402
from generator.metrics import percentile  # noqa: E402
from generator.sampler import SketchSampler  # noqa: E402
from generator.sketch_input import normalise_sketch  # noqa: E402


def doodle(w: int, h: int, width: int) -> Image.Image:
    """A face outline with eyes, hair strands and a mouth, dark on white."""
    img = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(img)
    d.ellipse([w * 0.3, h * 0.15, w * 0.7, h * 0.85], outline=0, width=width)
    for x in (0.4, 0.54):
        d.ellipse([w * x, h * 0.42, w * (x + 0.06), h * 0.5], outline=0, width=width)
    d.arc([w * 0.44, h * 0.6, w * 0.56, h * 0.7], 20, 160, fill=0, width=width)
    for k in range(8):
        d.line([w * (0.32 + 0.05 * k), h * 0.15, w * (0.3 + 0.05 * k), h * 0.35], fill=0, width=width)
    return img


def uploads() -> dict[str, bytes]:
    app = io.BytesIO()
    doodle(1024, 768, 4).save(app, format="PNG")
    strokes = np.asarray(doodle(4032, 3024, 12), dtype=np.float32) / 255
    light = np.linspace(0.45, 0.95, 4032)[None, :] * np.linspace(0.85, 1.0, 3024)[:, None]
    photo = (0.15 + 0.7 * strokes) * light + np.random.default_rng(0).normal(0, 0.015, strokes.shape)
    jpeg = io.BytesIO()
    Image.fromarray(np.clip(photo * 255, 0, 255).astype(np.uint8)).convert("RGB").save(jpeg, format="JPEG", quality=90)
    return {"drawing app PNG 1024x768": app.getvalue(), "phone photo JPEG 4032x3024": jpeg.getvalue()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", help="sketch-to-face weights (default: the bundled ones)")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    ap.add_argument("--size", type=int, default=256, help="display size of each half of the reply picture")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sampler = SketchSampler.load(args.weights, "cpu")
    print(f"model {sampler.version}, {torch.get_num_threads()} threads, {args.runs} runs per upload")
    for name, data in uploads().items():
        stages: dict[str, list[float]] = {"normalise": [], "model": [], "encode": [], "total": []}
        for i in range(args.runs + 3):  # the first 3 warm up
            t0 = time.perf_counter()
            sketch = normalise_sketch(data)
            t1 = time.perf_counter()
            face = sampler.faces(torch.from_numpy(sketch.pixels)[None, None], [i % 12], [i % 10], [i])[0]
            t2 = time.perf_counter()
            reply = beside_png(sketch.to_image(), Pictures((to_pil(face, args.size),), sampler.version), args.size)
            t3 = time.perf_counter()
            if i >= 3:
                for key, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                    stages[key].append(seconds * 1000)
        print(f"{name} ({len(data) / 1024:.0f} KB in, {len(reply) / 1024:.0f} KB out):")
        for key, ms in stages.items():
            print(f"  {key:9s} p50 {percentile(ms, 50):6.1f} ms   p99 {percentile(ms, 99):6.1f} ms")


if __name__ == "__main__":
    main()
