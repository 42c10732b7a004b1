"""How well a sketch-to-face generator converts, read by the evaluation classifier.

Two fixed held-out sketch sets: 200 doodles and the XDoG line art of 200
held-out faces (training/sketch_data.py). Each is converted twice:

- colours requested: line art with its own face's tags, each doodle with a
  fixed random tag pair. ``<set>_hair_acc`` / ``<set>_eye_acc``: how often the
  classifier reads the requested colours; ``*_ratio`` divides by its accuracy
  on all real held-out faces (the ceiling, as in training/metrics.py);
- no colours requested (random tags and z by seed, as ``/sketch`` alone does):
  ``<set>_free_hair_colours``, the number of distinct hair colours the
  classifier reads across the outputs (of 12);
- ``fd``: Fréchet distance in the classifier's feature space between the
  requested-colour outputs of both sets and all real held-out faces;
- ``<set>_eye_window_ratio``: the eye ratio again with everything outside the
  eye window (where the aligned faces' eyes are) painted grey, for the outputs
  and the ceiling alike. The classifier pools its features, so an eye-coloured
  blob anywhere can read as the eye colour (one fine-tuning run learnt exactly
  that, in a corner); this figure only counts colour where eyes are.

Latents and tags come from ``seed``, so a weights file always gets the same figures.

The fidelity yardstick (``fidelity_yardstick``) asks whether the outputs look like anime faces at all, and
whether they keep the drawing's layout without copying its strokes. Two sets of n sketches: held-out
doodles and rough mouse drawings (training/rough_drawings.py), each converted with a seeded random colour
pair, next to the face generator's faces for the same colour pairs (colours matched, same n):

- ``kid``: KID x1000 on Inception features (training/fidelity.py) against n held-out real faces, beside the
  floor: as many training faces against the same held-out ones (Inception FID is left out: at a few hundred
  samples its 2048-dim covariance is rank-deficient and its bias swamps the differences); ``fd``: the
  classifier Fréchet distance above, against all real held-out faces (floor: n training faces);
- ``eyes_placed``: how often an output has more edge (colour gradient) in discs round the eyes its own
  drawing put down than round another drawing's eyes, over all ordered pairs of drawings. A face painted
  where the drawing asked scores near 1; a model that ignores the drawing scores 0.5 (a constant face
  exactly 0.5). ``face_placed``: the same along the lower half of the drawn head (cheeks and chin). Rough
  drawings only: they record where they put the face and eyes; doodles do not;
- ``copies``: the mean correlation between a drawing's edge map and its output's, 1 for a model that
  returns the drawing; ``copies_chance``: the same against other drawings' outputs, what a face that ignores
  the drawing gets. A head ring left in the output raises ``copies``; a good conversion keeps the layout
  (high ``*_placed``) with ``copies`` well under 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from generator.images import resized, to_uint8
from generator.models import tag_condition
from generator.models.tagger import Tagger
from generator.sampler import SketchSampler
from generator.tags import N_EYE, N_HAIR
from generator.weights import BUNDLED_TAGGER, load_module
from training.dataset import FaceDataset
from training.fidelity import evenly_spaced, inception_features, kid, real_features
from training.metrics import BATCH, classify, frechet_distance
from training.rough_drawings import RoughSet
from training.sketch_data import DoodleSet, colour_edges, heldout_faces, line_art

SETS = ("doodle", "line")
# rows and columns (end exclusive) that hold both eyes of the aligned 64x64 faces: the crude line art of the
# held-out faces has its eye strokes in rows 16-34 and columns 13-24 and 38-50
EYE_WINDOW = (slice(12, 40), slice(8, 56))
EYE_RADIUS = 4.0     # px round a drawn eye's centre in which the output's eye should be (its eyes are ~8 px wide)
OUTLINE_BAND = 2.0   # px either side of the drawn head's outline


def eye_window(images: torch.Tensor) -> torch.Tensor:
    """uint8 faces (N, 3, 64, 64) with everything outside EYE_WINDOW painted mid grey."""
    out = torch.full_like(images, 128)
    out[:, :, EYE_WINDOW[0], EYE_WINDOW[1]] = images[:, :, EYE_WINDOW[0], EYE_WINDOW[1]]
    return out


@torch.no_grad()
def convert(G: nn.Module, sketches: torch.Tensor, hair: torch.Tensor, eye: torch.Tensor,
            z: torch.Tensor) -> torch.Tensor:
    """64 px uint8 faces for sketches (N, 1, 64, 64) with the given tags and latents, in batches (an encoder
    on a 128 px face model draws 128 px faces: the figures compare them at 64 px, as the classifier reads)."""
    G.eval()
    device = next(G.parameters()).device
    out = []
    for i in range(0, len(sketches), BATCH):
        cond = tag_condition(hair[i:i + BATCH], eye[i:i + BATCH], N_HAIR, N_EYE)
        faces = G(sketches[i:i + BATCH].to(device), z[i:i + BATCH].to(device), cond.to(device))
        out.append(resized(to_uint8(faces), 64))
    return torch.cat(out)


@torch.no_grad()
def faces_for_tags(G_face: nn.Module, hair: torch.Tensor, eye: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """64 px uint8 faces of the face generator for the given tags and latents, in batches: the colour-matched
    reference the sketch outputs are compared with."""
    G_face.eval()
    return torch.cat([resized(to_uint8(G_face(z[i:i + BATCH], tag_condition(hair[i:i + BATCH], eye[i:i + BATCH]))),
                              64) for i in range(0, len(hair), BATCH)])


def edge_maps(images: torch.Tensor) -> torch.Tensor:
    """(N, 64 * 64) colour edge strength of uint8 faces (N, 3, 64, 64) or float sketches (N, 1, 64, 64)."""
    x = FaceDataset.to_float(images) if images.dtype == torch.uint8 else images.float()
    return colour_edges(x).flatten(1)


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    return m[~torch.eye(len(m), dtype=torch.bool)]


def stroke_copying(sketches: torch.Tensor, faces: torch.Tensor) -> tuple[float, float]:
    """(copies, chance): the mean correlation of each drawing's edge map with its output's, and with the other
    drawings' outputs (n >= 2)."""
    a, b = (e - e.mean(1, keepdim=True) for e in (edge_maps(sketches), edge_maps(faces)))
    a, b = (e / e.norm(dim=1, keepdim=True).clamp_min(1e-8) for e in (a, b))
    corr = a @ b.T
    return float(corr.diagonal().mean()), float(_off_diagonal(corr).mean())


def placement(faces: torch.Tensor, masks: torch.Tensor) -> float:
    """The share of ordered pairs (i, j), i != j, where output i has more mean edge under its own drawing's mask
    than under drawing j's (ties count half): 0.5 when the outputs ignore where the drawings put things."""
    weights = masks.flatten(1).float()
    under = edge_maps(faces) @ (weights / weights.sum(1, keepdim=True).clamp_min(1e-8)).T  # [i, j]: i under j's
    own = under.diagonal()[:, None]
    return float(_off_diagonal((own > under).float() + 0.5 * (own == under).float()).mean())


def _grid(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    return xs, ys


def eye_masks(eyes: torch.Tensor, radius: float = EYE_RADIUS) -> torch.Tensor:
    """(N, 64, 64) discs of ``radius`` round both eye centres (N, 2, 2) (x, y)."""
    xs, ys = _grid()
    d2 = (xs - eyes[:, :, 0, None, None]) ** 2 + (ys - eyes[:, :, 1, None, None]) ** 2  # (N, 2, 64, 64)
    return (d2 <= radius ** 2).any(1)


def outline_masks(faces: torch.Tensor, band: float = OUTLINE_BAND) -> torch.Tensor:
    """(N, 64, 64) the lower half of the ellipse inscribed in each face box (N, 4) (x0, y0, x1, y1), ``band``
    px either side: where a face's cheeks and chin meet what is round it."""
    xs, ys = _grid()
    x0, y0, x1, y1 = (faces[:, k, None, None] for k in range(4))
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    rho = (((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2).sqrt()
    return ((rho - 1).abs() * torch.minimum(rx, ry) <= band) & (ys >= cy)


def layout_figures(sketches: torch.Tensor, faces: torch.Tensor, rough: RoughSet | None = None) -> dict[str, float]:
    """``copies`` and ``copies_chance`` of outputs ``faces`` for ``sketches``; with the rough drawings' recorded
    layout, ``eyes_placed`` and ``face_placed`` too."""
    copies, chance = stroke_copying(sketches, faces)
    out = {"copies": copies, "copies_chance": chance}
    if rough is not None:
        out["eyes_placed"] = placement(faces, eye_masks(rough.eyes))
        out["face_placed"] = placement(faces, outline_masks(rough.faces))
    return out


@dataclass
class SketchEvaluator:
    """The held-out sketches with their requested tags, and the real faces they are judged against."""

    tagger: Tagger
    sketches: dict[str, torch.Tensor]              # set name -> (N, 1, 64, 64) sketches
    tags: dict[str, tuple[torch.Tensor, torch.Tensor]]  # set name -> requested (hair, eye)
    real_features: torch.Tensor
    real_hair_acc: float
    real_eye_acc: float
    real_eye_window_acc: float  # the ceiling of the eye-window figure

    @classmethod
    def build(cls, tagger: Tagger, heldout: FaceDataset, lines_of: FaceDataset, doodles: DoodleSet,
              seed: int = 0) -> "SketchEvaluator":
        """``heldout``: all real held-out faces (reference and ceiling); ``lines_of``: the faces whose line art
        is converted (their tags are requested); doodles get random tag pairs fixed by ``seed``."""
        tagger.eval()
        feats, hair, eye = classify(tagger, heldout.images)
        _, _, window_eye = classify(tagger, eye_window(heldout.images))
        g = torch.Generator().manual_seed(seed)
        n = len(doodles)
        doodle_tags = (torch.randint(N_HAIR, (n,), generator=g), torch.randint(N_EYE, (n,), generator=g))
        return cls(tagger,
                   {"doodle": doodles.sketches(), "line": line_art(FaceDataset.to_float(lines_of.images))},
                   {"doodle": doodle_tags, "line": (lines_of.hair, lines_of.eye)},
                   feats, float((hair == heldout.hair).float().mean()), float((eye == heldout.eye).float().mean()),
                   float((window_eye == heldout.eye).float().mean()))

    def evaluate(self, G: nn.Module, seed: int = 0) -> dict[str, float]:
        g = torch.Generator().manual_seed(seed)
        result: dict[str, float] = {"real_hair_acc": self.real_hair_acc, "real_eye_acc": self.real_eye_acc,
                                    "real_eye_window_acc": self.real_eye_window_acc}
        requested_feats, hits_hair, hits_eye, total = [], 0, 0, 0
        for name in SETS:
            sketches, (hair, eye) = self.sketches[name], self.tags[name]
            n = len(sketches)
            faces = convert(G, sketches, hair, eye, torch.randn(n, G.cfg.z_dim, generator=g))
            feats, hair_read, eye_read = classify(self.tagger, faces)
            _, _, window_read = classify(self.tagger, eye_window(faces))
            requested_feats.append(feats)
            hits_hair += int((hair_read == hair).sum())
            hits_eye += int((eye_read == eye).sum())
            total += n
            result[f"{name}_hair_acc"] = float((hair_read == hair).float().mean())
            result[f"{name}_eye_acc"] = float((eye_read == eye).float().mean())
            result[f"{name}_hair_ratio"] = result[f"{name}_hair_acc"] / self.real_hair_acc
            result[f"{name}_eye_ratio"] = result[f"{name}_eye_acc"] / self.real_eye_acc
            result[f"{name}_eye_window_ratio"] = float((window_read == eye).float().mean()) / self.real_eye_window_acc
            free_hair, free_eye = torch.randint(N_HAIR, (n,), generator=g), torch.randint(N_EYE, (n,), generator=g)
            _, free_read, _ = classify(self.tagger, convert(G, sketches, free_hair, free_eye,
                                                            torch.randn(n, G.cfg.z_dim, generator=g)))
            result[f"{name}_free_hair_colours"] = len(free_read.unique())
            result[f"{name}_fd"] = frechet_distance(feats.double().numpy(), self.real_features.double().numpy())
        result["hair_ratio"] = hits_hair / total / self.real_hair_acc
        result["eye_ratio"] = hits_eye / total / self.real_eye_acc
        result["fd"] = frechet_distance(torch.cat(requested_feats).double().numpy(),
                                        self.real_features.double().numpy())
        result["images"] = total
        return result


def load_sketch_evaluator(data_dir: str | Path, doodles: str | Path, tagger_path: str | Path | None = None,
                          seed: int = 0) -> SketchEvaluator:
    tagger, _ = load_module(tagger_path or BUNDLED_TAGGER)
    return SketchEvaluator.build(tagger, FaceDataset.load(data_dir, "heldout", progress=False),
                                 heldout_faces(data_dir), DoodleSet.load(doodles, "heldout"), seed)


def format_table(result: dict) -> str:
    lines = [f"model {result['model']} on {result['images']} held-out sketches (doodles, line art)",
             f"{'':28}{'doodles':>10}{'line art':>10}{'real':>8}"]
    rows = (("hair_acc", "hair accuracy", "real_hair_acc"), ("eye_acc", "eye accuracy", "real_eye_acc"),
            ("hair_ratio", "hair / ceiling", None), ("eye_ratio", "eye / ceiling", None),
            ("eye_window_ratio", "eye / ceiling, eye window", None),
            ("free_hair_colours", "hair colours, none asked", None), ("fd", "Fréchet distance", None))
    for key, label, real in rows:
        d, ln = result[f"doodle_{key}"], result[f"line_{key}"]
        fmt = "{:>10d}" if isinstance(d, int) else "{:>10.3f}"
        lines.append(f"{label:28}{fmt.format(d)}{fmt.format(ln)}" + (f"{result[real]:>8.3f}" if real else ""))
    lines.append(f"both sets: hair / ceiling {result['hair_ratio']:.3f}, eye / ceiling {result['eye_ratio']:.3f}, "
                 f"Fréchet distance {result['fd']:.2f}")
    return "\n".join(lines)


def evaluate_sketch_weights(weights: str | Path | None, data_dir: str | Path, doodles: str | Path,
                            tagger_path: str | Path | None = None, seed: int = 0) -> dict:
    """``moebot evaluate`` for a sketch model (a CycleGAN generator, or a sketch encoder drawn through its face
    generator): the figures above, plus a printable table."""
    weights = Path(weights) if weights else SketchSampler.bundled
    sampler = SketchSampler.load(weights, "cpu")
    G = sampler.G
    result: dict = {"model": f"{weights.name} ({sampler.version})",
                    **load_sketch_evaluator(data_dir, doodles, tagger_path, seed).evaluate(G, seed)}
    result["_table"] = format_table(result)
    return result


def fidelity_yardstick(G: nn.Module, G_face: nn.Module, ev: SketchEvaluator, rough: RoughSet,
                       heldout_u8: torch.Tensor, train_u8: torch.Tensor, cache_dir: Path, n: int = 200,
                       seed: int = 0, progress: bool = False) -> dict:
    """The yardstick of the module docstring on the first n held-out doodles (their requested colours) and the
    first n rough drawings (seeded colour pairs): ``<set>_sketch`` and ``<set>_face`` (the face generator on
    the same colour pairs) hold each output set's figures, ``real`` the real-vs-real floor at the same n."""
    n = min(n, len(ev.sketches["doodle"]), len(rough))
    g = torch.Generator().manual_seed(seed)
    rough, doodle_hair, doodle_eye = rough.first(n), *(t[:n] for t in ev.tags["doodle"])
    sets = {"doodle": (ev.sketches["doodle"][:n], doodle_hair, doodle_eye, None),
            "rough": (rough.sketches, torch.randint(N_HAIR, (n,), generator=g),
                      torch.randint(N_EYE, (n,), generator=g), rough)}
    real_fd = ev.real_features.double().numpy()
    real, other = real_features(heldout_u8, train_u8, cache_dir, n, progress)
    result: dict = {"n": n, "n_real_fd": len(real_fd)}
    for name, (sketches, hair, eye, layout) in sets.items():
        outputs = {"sketch": convert(G, sketches, hair, eye, torch.randn(n, G.cfg.z_dim, generator=g)),
                   "face": faces_for_tags(G_face, hair, eye, torch.randn(n, G_face.cfg.z_dim, generator=g))}
        for who, faces in outputs.items():
            feats, _, _ = classify(ev.tagger, faces)
            result[f"{name}_{who}"] = {"kid": kid(inception_features(faces, progress, f"inception ({name}, {who})"),
                                                  real),
                                       "fd": frechet_distance(feats.double().numpy(), real_fd),
                                       **layout_figures(sketches, faces, layout)}
    train_feats, _, _ = classify(ev.tagger, evenly_spaced(train_u8, n))
    result["real"] = {"kid": kid(other, real), "fd": frechet_distance(train_feats.double().numpy(), real_fd)}
    return result


def _cell(v: float | None) -> str:
    if v is None:
        return f"{'-':>10}"
    return f"{v:>10.3f}" if abs(v) < 10 else f"{v:>10.1f}"


def format_yardstick(result: dict) -> str:
    """The yardstick as one table: fidelity and layout side by side, for each set the sketch model and the face
    generator on the same colour pairs, and real faces' floor."""
    n = result["n"]
    cols = ("doodle_sketch", "doodle_face", "rough_sketch", "rough_face", "real")
    lines = [f"fidelity yardstick, n = {n} per set, colours matched: KID against {n} held-out real faces, "
             f"classifier FD against {result['n_real_fd']:,}",
             f"{'':36}{'doodles':>20}{'rough drawings':>20}{'real':>10}",
             f"{'':36}{'sketch':>10}{'face gen':>10}{'sketch':>10}{'face gen':>10}{'floor':>10}"]
    rows = (("kid", "KID x1000"), ("fd", "classifier FD"),
            ("eyes_placed", "eyes where drawn (0.5: ignores)"), ("face_placed", "chin where drawn (0.5: ignores)"),
            ("copies", "copies strokes (edge correlation)"), ("copies_chance", "  same, other drawings' outputs"))
    for key, label in rows:
        lines.append(f"{label:36}" + "".join(_cell(result[c].get(key)) for c in cols))
    ratios = (f"{name} {result[f'{name}_sketch']['kid'] / result[f'{name}_face']['kid']:.2f}"
              for name in ("doodle", "rough"))
    lines.append("KID, sketch / face generator: " + ", ".join(ratios))
    return "\n".join(lines)
