"""Anime faces in a whole illustration, cut out and framed like the 64x64 training faces.

The detector is AnimeFace (nagadomi's libnvxs, 2009: a sliding-window
multi-layer perceptron whose weights are compiled into the library; not the
lbpcascade), as packaged by ``animeface`` 2.0.3 (Apache-2.0 wrapper, NYSL
library, wheels with the library inside: nothing is downloaded). Used as
shipped it finds nothing with Pillow >= 12 and never finds small faces:

* **Pillow >= 12.** ``animeface.detect(im)`` hands ``im.getdata()`` (Pillow's
  ``ImagingCore``) to its C glue ``_nvxs.detect``, which was compiled against
  Pillow 4.2.1's ``Imaging.h`` and reads the ``struct ImagingMemoryInstance``
  behind it directly (from the disassembly): ``mode`` as ``char[7]`` at offset
  0, ``xsize``/``ysize`` at 0x14/0x18, the row pointers ``image`` at 0x38.
  Pillow 12.0 replaced ``char mode[7]`` by a 4-byte ``ModeID`` enum, which
  moves every later field 4 bytes down: the glue takes the height for the
  width and the low half of the (NULL) palette pointer for the height, 0, so
  it scans an empty picture and returns ``[]`` with no error. The same picture
  gives one face with Pillow 11.3.0 and none with 12.0.0 or 13.0.0.
  Here the glue never sees a Pillow object: the fields it reads are laid out
  in the 4.2.1 layout over our own RGBX rows (a ctypes structure), and that
  ctypes object is what it gets. The glue takes the pointer at offset 16 of
  its argument (``ImagingObject.image``), which in a ctypes object is the
  address of its buffer (``CDataObject.b_ptr``), checked before every call.
  This depends on the binary of animeface 2.0.3 (pinned), not on Pillow
  (whose ``getdata``, which ``animeface.detect`` calls, goes in Pillow 14).
* **Small faces.** The glue calls ``nv_face_detect`` with a fixed smallest
  window of 42.592 px (step 4, scale factor 1.095), so smaller faces are never
  looked at, and faces barely bigger are mostly missed too. A picture small
  enough is therefore searched a second time, enlarged so that a face
  ``min_face`` px wide becomes ``RELIABLE_FACE`` px wide. Faces drawn by the
  bundled generator, resized, on a plain picture three faces wide (48 each):

      face width     32 px   40 px   48 px   64 px   96 px
      as it is        0/48    1/48   12/48   42/48   48/48
      detect_faces   39/48   44/48   48/48   46/48   48/48

  It is an extra pass, not a replacement: enlarging blurs, and blurred big
  faces are missed (the 96 px faces: 0/48 once enlarged 2x).
* **Large faces.** The glue misses big faces just as surely: of 24 faces,
  resized, on a plain picture (``_run_glue`` as it is),

      face width   56   64   72   80   88   96  104  112  120  128  160  192
      found        14   22   24   22   24   24   24   23   22   17    1    0

  so after the first pass the picture is searched again, each time
  ``FACE_STEP`` smaller, until a face as wide as its short side is down to
  ``RELIABLE_MAX``. A 256 px face pasted on 640x480 was found in 0/40 such
  pictures with the first pass alone (the picture barely shrunk); it is found
  at 1/2.4 of that.

The glue holds the GIL and runs on one core, for a time that grows with the
pixels and the clutter (a 512x512 noise picture 1.7 s, a 512x384 gradient
16 ms), so each pass sees at most ``WORK_PIXELS`` (the smaller passes add at
most 1/(FACE_STEP² - 1) of the first); in a big picture the smallest face
that can be found grows, and the note says so. A submitted picture is decoded
no bigger than that search and the crops need (``read_picture``), and one
with nothing drawn in it (blank, a smooth gradient, noise) is refused before
the detector spends its time on it.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import logging
import math
from dataclasses import dataclass
from importlib import metadata

import numpy as np
from PIL import Image

from generator.sketch_input import SketchRejected, UploadLimits, decode_upload

log = logging.getLogger(__name__)

SIZE = 64  # the side of a training face
MIN_FACE = 32  # px; a smaller face holds too little to learn from (the importer's smallest picture)
WORK_PIXELS = 512 * 512  # the most pixels one detector pass sees
PICTURE_SIDE = 1024  # a submission is decoded shrunk, but never below this longer side (a first pass's 512²)
RELIABLE_FACE = 64  # px; faces this wide are mostly found (the glue's smallest window is 42.592 px)
RELIABLE_MAX = 112  # px; and faces up to this wide (see the table of large faces)
FACE_STEP = 1.5  # each further pass is this much smaller: its band of found widths overlaps the last one's
EDGE = 16  # grey levels between neighbours at 64 px that make an edge: a line or a boundary of colour
MIN_EDGES = 0.01  # share of neighbours at 64 px that must be edges for a picture to hold something drawn
MIN_COHERENCE = 0.5  # correlation of neighbours at 64 px below which the picture is noise (noise: ~0.1)
NOTHING_DRAWN = ("I can't find a face or anything drawn in that picture — it looks blank, a smooth gradient or "
                 "noise.")
CROP_MARGIN = 64 / 56  # a 64-px face drawn by the bundled generator gets a 56-px box (median of 189 faces)
OVERLAP = 0.3  # boxes overlapping more than this (intersection over union) are one face
ANIMEFACE_VERSION = "2.0.3"  # the glue whose struct layout _LegacyImaging copies

Box = tuple[int, int, int, int]  # left, top, right, bottom in the picture's pixels


class FaceDetectorUnavailable(RuntimeError):
    """animeface is missing, or is not the build this module knows how to call."""


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # left, top, right, bottom in the picture's pixels
    likelihood: float  # the detector's confidence, 0..1

    @property
    def side(self) -> float:
        return self.box[2] - self.box[0]


@dataclass(frozen=True)
class FaceCrop:
    image: Image.Image  # SIZE x SIZE RGB
    crop_box: Box  # the square cut from the picture
    face_box: Box | None  # the detector's box; None when the whole picture was used
    confidence: float | None  # the detector's likelihood; None when the whole picture was used


@dataclass(frozen=True)
class FaceCrops:
    crops: list[FaceCrop]  # best first, never empty
    note: str | None  # None when faces were found, else what a user is told

    @property
    def found(self) -> bool:
        return self.note is None


_Row = ctypes.POINTER(ctypes.c_uint8)


class _LegacyImaging(ctypes.Structure):
    """The head of Pillow 4.2.1's ``struct ImagingMemoryInstance``: every field the glue reads, at its offset."""

    _fields_ = [
        ("mode", ctypes.c_char * 7), ("type", ctypes.c_int), ("depth", ctypes.c_int), ("bands", ctypes.c_int),
        ("xsize", ctypes.c_int), ("ysize", ctypes.c_int), ("palette", ctypes.c_void_p),
        ("image8", ctypes.POINTER(_Row)), ("image32", ctypes.c_void_p), ("image", ctypes.POINTER(_Row)),
    ]


@functools.cache
def _glue():
    """animeface's C glue, imported on first use so the bot runs without it."""
    try:
        version = metadata.version("animeface")
        from animeface import _nvxs
    except (ImportError, metadata.PackageNotFoundError, OSError) as e:
        raise FaceDetectorUnavailable(f"animeface is not installed ({e})") from None
    if version != ANIMEFACE_VERSION:
        raise FaceDetectorUnavailable(f"animeface {version} is installed; this module calls {ANIMEFACE_VERSION}")
    return _nvxs


def _run_glue(img: Image.Image) -> list[dict]:
    """The glue's raw results for an RGB picture, passed in the struct layout it was compiled for."""
    glue = _glue()
    pixels = np.ascontiguousarray(np.asarray(img.convert("RGBX")))
    h, w = pixels.shape[:2]
    rows = (_Row * h)(*(pixels[y].ctypes.data_as(_Row) for y in range(h)))
    image = _LegacyImaging(b"RGB", 0, 8, 3, w, h, None, None, None, rows)
    held = ctypes.c_void_p.from_address(id(image) + object.__basicsize__).value
    if held != ctypes.addressof(image):
        raise FaceDetectorUnavailable("this Python's ctypes objects do not hold their buffer where the glue looks")
    return glue.detect(image)


def search_scales(size: tuple[int, int], min_face: int = MIN_FACE) -> list[float]:
    """The scales the picture is searched at: as it is (shrunk to WORK_PIXELS), then FACE_STEP smaller each time
    until a face as wide as the picture's short side is within the detector's reliable widths, then enlarged for
    small faces."""
    area = size[0] * size[1]
    scales = [min(1.0, math.sqrt(WORK_PIXELS / area))]
    while min(size) * scales[-1] > RELIABLE_MAX:
        scales.append(scales[-1] / FACE_STEP)
    enlarge = RELIABLE_FACE / min_face
    if enlarge > scales[0] and area * enlarge ** 2 <= WORK_PIXELS:
        scales.append(enlarge)
    return scales


def smallest_findable(size: tuple[int, int], min_face: int = MIN_FACE) -> int:
    """The width in px of the smallest face the search reliably finds in a picture of this size."""
    return max(min_face, math.ceil(RELIABLE_FACE / max(search_scales(size, min_face))))


def read_picture(data: bytes, limits: UploadLimits) -> tuple[Image.Image, bool]:
    """An uploaded picture to cut faces from, decoded no bigger than the search and the crops need, and whether it
    was animated; SketchRejected (what the user reads) when it is no picture, or holds nothing drawn."""
    img, animated = decode_upload(data, limits, side=PICTURE_SIDE, min_side=MIN_FACE)
    img = img if img.mode == "RGB" else img.convert("RGB")
    if not has_content(img):
        raise SketchRejected(NOTHING_DRAWN)
    return img, animated


def has_content(img: Image.Image) -> bool:
    """Whether an RGB picture holds something drawn, judged at 64 px on its short side (never enlarged): edges
    between neighbours (a blank page and a smooth gradient have none) that are coherent (neighbours correlate;
    in noise they do not)."""
    scale = min(1.0, SIZE / min(img.size))
    small = img.convert("L").resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                                    Image.Resampling.BOX)
    grey = np.asarray(small, dtype=np.float64)
    pairs = [(grey[:, :-1], grey[:, 1:]), (grey[:-1], grey[1:])]
    edges = np.mean([(np.abs(a - b) >= EDGE).mean() for a, b in pairs])
    coherence = np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1] if a.std() and b.std() else 0.0 for a, b in pairs])
    return bool(edges >= MIN_EDGES and coherence >= MIN_COHERENCE)


def _overlap(a: Detection, b: Detection) -> float:
    """Intersection over union of two boxes (the detector's boxes are square)."""
    w = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
    h = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    inter = max(w, 0) * max(h, 0)
    return inter / (a.side ** 2 + b.side ** 2 - inter)


def detect_faces(img: Image.Image, min_face: int = MIN_FACE) -> list[Detection]:
    """Anime faces in an RGB picture, most likely (then biggest) first; a face found at several scales counts once,
    with the box of the pass where the detector's box was nearest the ``SIZE / CROP_MARGIN`` px that CROP_MARGIN
    was measured at (its box is tighter round bigger faces: a 256 px face's is 152 px where the face is 88 px wide,
    199 px where it is 51).

    ``min_face`` is the width of the smallest face (framed like a training face) worth an enlarged search.

    Raises FaceDetectorUnavailable when animeface cannot be used.
    """
    found: list[tuple[float, Detection]] = []  # (how far the box's size was from the measured one, detection)
    work = img
    for scale in search_scales(img.size, min_face):
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        source = work if scale < 1 else img  # a smaller pass shrinks the last one's picture: much cheaper
        work = source if source.size == size else source.resize(size, Image.Resampling.LANCZOS)
        sx, sy = img.width / work.width, img.height / work.height
        for r in _run_glue(work):
            x, y, w, h = r["face_box"]
            found.append((abs(math.log(w * CROP_MARGIN / SIZE)),
                          Detection((x * sx, y * sy, (x + w) * sx, (y + h) * sy), float(r["likelihood"]))))
    kept: list[Detection] = []
    for _, d in sorted(found, key=lambda f: f[0]):
        same = [i for i, k in enumerate(kept) if _overlap(d, k) > OVERLAP]
        if not same:
            kept.append(d)
        elif d.likelihood > kept[same[0]].likelihood:  # the box stays, the surest pass's likelihood counts
            kept[same[0]] = dataclasses.replace(kept[same[0]], likelihood=d.likelihood)
    return _best_first(kept)


def _best_first(faces: list[Detection]) -> list[Detection]:
    return sorted(faces, key=lambda d: (-round(d.likelihood, 2), -d.side))


def square_box(size: tuple[int, int], cx: float, cy: float, side: float) -> Box:
    """A square of ``side`` centred on (cx, cy), shrunk and shifted as little as needed to lie inside the picture."""
    w, h = size
    side = min(round(side), w, h)
    left = min(max(round(cx - side / 2), 0), w - side)
    top = min(max(round(cy - side / 2), 0), h - side)
    return left, top, left + side, top + side


def _cut(img: Image.Image, box: Box) -> Image.Image:
    return img.resize((SIZE, SIZE), Image.Resampling.LANCZOS, box=box)


def crop_faces(img: Image.Image, max_faces: int = 4, min_face: int = MIN_FACE) -> FaceCrops:
    """The faces of a picture as SIZE x SIZE crops, best first; the whole picture (centre square) when none is found.

    The crop is the detector's box widened by CROP_MARGIN, so a face is framed like the training faces.
    """
    img = img if img.mode == "RGB" else img.convert("RGB")
    try:
        faces = detect_faces(img, min_face)[:max_faces]
    except FaceDetectorUnavailable as e:
        log.warning("face detection skipped: %s", e)
        faces, note = [], "couldn't look for faces — used the whole picture"
    else:
        note = "no face found — used the whole picture"
        if not faces and smallest_findable(img.size, min_face) > min_face:
            note = (f"no face found (faces under {smallest_findable(img.size, min_face)} px wide are too small to "
                    "find in a picture this big) — used the whole picture")
    if not faces:
        box = square_box(img.size, img.width / 2, img.height / 2, min(img.size))
        return FaceCrops([FaceCrop(_cut(img, box), box, None, None)], note)
    crops = []
    for d in faces:
        box = square_box(img.size, (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2, d.side * CROP_MARGIN)
        face_box = tuple(round(v) for v in d.box)
        crops.append(FaceCrop(_cut(img, box), box, face_box, d.likelihood))
    return FaceCrops(crops, None)
