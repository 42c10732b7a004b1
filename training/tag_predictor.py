"""Hair and eye colours for a submitted face: the ones its sender gave, the evaluation classifier's guess for the rest.

A submission becomes training data only with both tags, and people often give
one or none. The classifier (the bundled ``Tagger``) reads both colours; its
three most likely readings of each, with probabilities, are what the bot
shows ("I think: pink hair (0.82)") and offers as correction buttons.

It lives beside the importer and the near-duplicate index, the other steps
that turn an upload into a stored face, and reads faces into the network's
range with ``FaceDataset.to_float``, as training and evaluation do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from generator.models.tagger import Tagger
from generator.tags import EYE_COLORS, HAIR_COLORS
from generator.weights import BUNDLED_TAGGER, load_module
from training.dataset import FaceDataset

SIZE = 64  # the classifier's input side
TOP = 3  # readings shown per colour


@dataclass(frozen=True)
class ColourGuess:
    index: int  # the colour kept: the sender's, else the most likely reading
    predicted: bool  # True when the classifier chose it
    probability: float  # the classifier's probability for ``index``
    top: tuple[tuple[int, float], ...]  # its TOP most likely colours and their probabilities, most likely first


@dataclass(frozen=True)
class TagGuess:
    hair: ColourGuess
    eye: ColourGuess

    def text(self) -> str:
        """What the classifier chose, e.g. "I think: pink hair (0.82), blue eyes (0.64)"; "" when it chose nothing."""
        parts = [f"{names[g.index]} {what} ({g.probability:.2f})"
                 for g, names, what in ((self.hair, HAIR_COLORS, "hair"), (self.eye, EYE_COLORS, "eyes"))
                 if g.predicted]
        return f"I think: {', '.join(parts)}" if parts else ""


def load_tagger(path: str | os.PathLike | None = None) -> Tagger:
    """The classifier in a weights file (default: the bundled one), in eval mode."""
    path = path or BUNDLED_TAGGER
    tagger, _ = load_module(path)
    if not isinstance(tagger, Tagger):
        raise ValueError(f"{path} holds a {type(tagger).__name__}, not the tag classifier")
    return tagger


@torch.no_grad()
def tag_probabilities(tagger: Tagger, faces_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities (N, N_HAIR) and (N, N_EYE) for (N, 3, 64, 64) uint8 faces."""
    hair, eye = tagger(FaceDataset.to_float(faces_u8))
    return hair.softmax(1), eye.softmax(1)


def _guess(probs: torch.Tensor, given: int | None) -> ColourGuess:
    top_p, top_i = probs.topk(TOP)
    index = int(top_i[0]) if given is None else given
    return ColourGuess(index, given is None, float(probs[index]),
                       tuple((int(i), float(p)) for i, p in zip(top_i, top_p)))


def complete_tags(tagger: Tagger, face: Image.Image, hair: int | None = None, eye: int | None = None) -> TagGuess:
    """Keep the colours given; read the missing ones off the 64x64 face. The readings of both are always returned."""
    if face.size != (SIZE, SIZE):
        raise ValueError(f"expected a {SIZE}x{SIZE} face, got {face.width}x{face.height}")
    for given, names in ((hair, HAIR_COLORS), (eye, EYE_COLORS)):
        if given is not None and not 0 <= given < len(names):
            raise ValueError(f"colour index {given} is not one of the {len(names)} known")
    pixels = torch.from_numpy(np.array(face.convert("RGB"))).permute(2, 0, 1)[None]
    hair_p, eye_p = tag_probabilities(tagger, pixels)
    return TagGuess(_guess(hair_p[0], hair), _guess(eye_p[0], eye))
