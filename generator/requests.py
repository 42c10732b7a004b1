"""What the generator service is asked for and answers, without torch: typed drawing requests, the pictures
drawn with the version that drew them, and the service's refusals.

The bot asks through these only (``DrawingService.pictures``), so it never handles tensors; the
service turns each request into rows of its model kind and the rows back into pictures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


class QueueFull(Exception):
    """Too much is waiting; ``retry_after`` is a fair guess of the seconds until there is room."""

    def __init__(self, retry_after: int):
        super().__init__(f"busy, try again in {retry_after} s")
        self.retry_after = retry_after


class GenerationFailed(Exception):
    """The worker failed on this request's batch (it has been restarted); the request may be retried."""


class ModelUnavailable(Exception):
    """No model of the kind asked for is loaded (none is active, or its weights were refused); ``str(e)`` says why."""


@dataclass(frozen=True)
class FaceRequest:
    """One face per (hair, eye, seed), shown at ``size`` px (through the upscaler from 128 px when one is active)."""
    hair: tuple[int, ...]
    eye: tuple[int, ...]
    seeds: tuple[int, ...]
    size: int = 64


@dataclass(frozen=True)
class GridRequest:
    """The cells of one of the ACGAN's sampling modes (``generator.sampler.mode_rows``), each at ``size`` px."""
    mode: str  # fix-noise, change-hair, change-eye or fix-hair-eye
    hair: int
    eye: int
    seed: int
    size: int = 64
    n: int = 1


@dataclass(frozen=True)
class MorphRequest:
    """``frames`` faces from (hair, eye, seed) ``start`` to ``end``, each at ``size`` px."""
    start: tuple[int, int, int]
    end: tuple[int, int, int]
    frames: int
    size: int = 64


@dataclass(frozen=True)
class SketchRequest:
    """The face painted from a drawing ((64, 64) float32, ink -1 on paper +1) in these colours, at ``size`` px."""
    sketch: np.ndarray
    hair: int
    eye: int
    seed: int
    size: int = 64


Request = FaceRequest | GridRequest | MorphRequest | SketchRequest


@dataclass(frozen=True)
class Pictures:
    """What a request drew: its pictures in order, how many a row when tiled, and the model version."""
    images: tuple[Image.Image, ...]
    version: str
    columns: int = 1
