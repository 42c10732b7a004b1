"""Uploaded drawings to the sketch model's input: any picture a person sends, or a clear refusal.

``normalise_sketch(data, limits)`` turns the bytes of an upload (a scan, a
drawing app's export, a phone photo of paper) into one 64x64 sketch in the
model's convention, or raises ``SketchRejected`` whose message is the answer a
user reads. The chat platforms, the CLI and the web UI all come through here.

The steps, and why:

1. Only the documented raster formats are opened (PNG, JPEG, GIF, WebP, BMP,
   TIFF): Pillow knows others whose decoders are programs (EPS runs
   Ghostscript, which a 2 kB file can keep busy forever). Size and pixel count
   are checked before anything is decoded (the pixel count comes from the
   file's header), so a small file that unpacks to gigapixels (a
   decompression bomb) costs nothing. A JPEG is decoded at a reduced scale
   (its DCT allows 1/2 to 1/8), any other picture is shrunk by a whole factor
   right after decoding, so the work below sees at most a few hundred
   thousand pixels whatever was sent.
2. A small drawing (a 28x28 doodle) is enlarged smoothly, so its strokes are
   read like a big picture's. An animated image gives its first frame; a phone photo is turned upright
   by its EXIF orientation; transparency is flattened onto a background that
   contrasts with the strokes (white under dark strokes, black under light).
   A photo of a sheet lying on a darker desk is cut to the sheet (the large
   bright area, when the darker one holds most of the picture's edge).
3. **Which way round.** Ink is what stands out from its surroundings: the
   picture minus a blurred copy of itself has one long tail (the strokes) and
   a bulk near zero (the paper). When the bright tail is longer than the dark
   one the drawing is light on dark (chalk, a dark-mode app) and is inverted,
   so the rest only ever sees dark ink on light paper.
4. **Uneven light.** Paper in a photo is brighter near the lamp and grey in
   the shadow; dividing by an estimate of the paper's own brightness (the
   brightest nearby values, blurred) makes it 1 everywhere, and ink a fraction
   of it.
5. Ink is what Otsu's threshold separates from paper, and never less than
   25% darker than the paper, so noise on a blank page is not a drawing.
6. The drawing's bounding box (ignoring the outermost 0.2% of ink, a stray
   speck) plus a margin is cut out and padded to a square with paper.
7. Strokes are thickened before the area-averaging downscale to 64x64, in
   proportion to the shrink, so a pen line in a 3000-pixel photo still shows.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

SIZE = 64  # the model's input side
MIN_SIDE = 16  # smaller pictures hold too little drawing to read (Quick, Draw! doodles are 28x28)
SMALL_SIDE = 2 * SIZE  # longest side a smaller drawing is enlarged to before it is read
WORK_SIDE = 512  # longest side the picture is analysed at (enough for a 64x64 result, fast on a small CPU)
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")  # what uploads may be (Pillow's names), as documented
MIN_CONTRAST = 0.25  # ink is at least this much darker than the paper around it
MIN_INK = 0.0005  # share of the picture that must be ink for it to be a drawing at all
MARGIN = 0.08  # paper kept around the drawing, as a share of its longer side
PAPER, INK = 1.0, -1.0  # the model's values for paper and for a full stroke


DAMAGED = "That image file is damaged or cut short, so I can't read it — please send it again."


class SketchRejected(ValueError):
    """An upload that cannot be a sketch; ``str(e)`` is the polite answer."""


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 10 * 2**20
    max_pixels: int = 16_000_000  # a 12 MP phone photo, a 4000x4000 scan; decoded, at most 64 MB (RGBA)


@dataclass(frozen=True)
class Sketch:
    pixels: np.ndarray  # (64, 64) float32 in [-1, 1]: PAPER where blank, INK on strokes
    format: str  # the upload's file format as Pillow names it, e.g. 'PNG', 'JPEG'
    animated: bool  # only the first frame was used
    inverted: bool  # the upload was light strokes on a dark ground

    @property
    def suffix(self) -> str:
        """The file suffix that the upload's format goes by, for storing the original bytes."""
        return suffix_of(self.format)

    def notes(self) -> list[str]:
        """What the user should know about how their upload was read."""
        out = []
        if self.animated:
            out.append("Your image is animated; I used its first frame.")
        if self.inverted:
            out.append("Your drawing is light on dark; I read it as dark lines on paper.")
        return out

    def to_image(self) -> Image.Image:
        """The sketch as a greyscale picture: black strokes on white paper."""
        return Image.fromarray(np.round((self.pixels - INK) / (PAPER - INK) * 255).astype(np.uint8), "L")


def suffix_of(fmt: str) -> str:
    """The file suffix a format (as Pillow names it, e.g. 'JPEG') goes by."""
    return {"JPEG": ".jpg", "TIFF": ".tif"}.get(fmt, f".{fmt.lower()}")


def normalise_sketch(data: bytes, limits: UploadLimits = UploadLimits()) -> Sketch:
    """The upload ``data`` as a 64x64 sketch; SketchRejected with the reason a person can act on."""
    img, animated = decode_upload(data, limits, side=WORK_SIDE, mode="L")
    grey = _flatten_alpha(img)
    longest = max(grey.shape)
    if longest < SMALL_SIDE:  # bilinear, as the training doodles are enlarged from 28 px
        grey = _resize(grey, SMALL_SIDE / longest, Image.Resampling.BILINEAR)
    else:
        grey = _on_the_paper(_resize(grey, min(1.0, WORK_SIDE / longest)))
    inverted = _light_on_dark(grey)
    if inverted:
        grey = 1.0 - grey
    ink = _ink(grey / _paper(grey))
    if ink.mean() < MIN_INK:
        raise SketchRejected("I can't find a drawing in that picture — it looks blank. Send dark lines on light "
                             "paper (or light lines on dark), with the drawing filling most of the picture.")
    coverage = _to_64(_square(_crop(ink)))
    return Sketch((PAPER + (INK - PAPER) * coverage).astype(np.float32), img.format or "?", animated, inverted)


def check_size(n_bytes: int, limits: UploadLimits) -> None:
    """SketchRejected when a file of ``n_bytes`` is over the limit (callers that know the size check it before
    downloading)."""
    if n_bytes > limits.max_bytes:
        raise SketchRejected(f"That file is {_mb(n_bytes)}; I take files up to {_mb(limits.max_bytes)}.")


def decode_upload(data: bytes, limits: UploadLimits, side: int | None = None, mode: str | None = None,
                  min_side: int = MIN_SIDE) -> tuple[Image.Image, bool]:
    """Open and decode the first frame of an uploaded picture, upright, and whether it was animated; every way
    it can fail is a SketchRejected (sketches and /submit share these checks). With ``side``, the picture comes
    back shrunk by the largest whole factor that keeps its longer side at least ``side`` (a JPEG decoded so, in
    ``mode`` if given: its DCT scales for free), since that is all the caller reads of it."""
    check_size(len(data), limits)
    limit = f"I take up to {limits.max_pixels / 1e6:g} megapixels."
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
        except UnidentifiedImageError:
            raise SketchRejected("That file is not a picture I can read; send a PNG, JPEG, GIF, WebP, BMP or "
                                 "TIFF image.") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise SketchRejected(f"That image has too many pixels to open safely; {limit}") from None
        except (OSError, SyntaxError, ValueError):
            raise SketchRejected(DAMAGED) from None
        if img.width * img.height > limits.max_pixels:
            raise SketchRejected(f"That image is {img.width}x{img.height} pixels, too many to open safely; {limit}")
        if min(img.size) < min_side:
            raise SketchRejected(f"That image is only {img.width}x{img.height} pixels; send a picture at least "
                                 f"{min_side}x{min_side}.")
        fmt, animated = img.format or "?", getattr(img, "n_frames", 1) > 1
        try:
            if side:
                img.draft(mode, (side, side))  # JPEG: decode at a reduced scale (DCT), much faster
            ImageOps.exif_transpose(img, in_place=True)  # decodes, then turns a phone photo upright
            if side:
                img = _reduced(img, max(1, min(max(img.size) // side, min(img.size) // min_side)))
        except (OSError, SyntaxError, EOFError, ValueError, IndexError, Image.DecompressionBombWarning):
            raise SketchRejected(DAMAGED) from None
    img.format = fmt  # a reduced copy has none
    return img, animated


def _reduced(img: Image.Image, factor: int) -> Image.Image:
    """The picture shrunk ``factor`` times by averaging blocks; palette and bilevel pictures, whose values are not
    brightnesses, are converted first."""
    if factor == 1:
        return img
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    elif img.mode == "1" or img.mode.startswith("I;16"):
        img = img.convert("L" if img.mode == "1" else "I")
    return img.reduce(factor)


def _flatten_alpha(img: Image.Image) -> np.ndarray:
    """Greyscale float in [0, 1]; transparent parts take the colour that contrasts with the strokes."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit and float scans: scale to their own range
        a = np.asarray(img.convert("F"), dtype=np.float32)
        return a / max(float(a.max()), 1.0)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        la = np.asarray(img.convert("LA"), dtype=np.float32) / 255
        grey, alpha = la[..., 0], la[..., 1]
        strokes_light = alpha.sum() > 0 and (grey * alpha).sum() / alpha.sum() > 0.5
        return grey * alpha + (0.0 if strokes_light else 1.0) * (1 - alpha)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255


def _resize(a: np.ndarray, scale: float, resample: Image.Resampling = Image.Resampling.BOX) -> np.ndarray:
    """A float image scaled by ``scale``."""
    if scale == 1:
        return a
    h, w = a.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(a, "F").resize(size, resample), dtype=np.float32)


def _filtered(a: np.ndarray, how: ImageFilter.Filter) -> np.ndarray:
    """A Pillow filter on a [0, 1] float image (through 8 bits: Pillow blurs only 8-bit images)."""
    grey = Image.fromarray(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8), "L")
    return np.asarray(grey.filter(how), dtype=np.float32) / 255


def _on_the_paper(grey: np.ndarray) -> np.ndarray:
    """A photo of a sheet on a darker desk, cut to the sheet; any other picture as it is.

    At 1/8 scale a median filter wipes out the strokes and leaves the large areas. When those split into a
    clearly brighter part (the sheet) and a darker part that holds most of the picture's edge (the desk),
    with a sharp step between them (few values in the middle third of the gap: light falling off across a
    sheet is a slope, not a step), the rows and columns that are mostly sheet, less a 3% rim, are kept.
    """
    h, w = grey.shape
    if min(h, w) < 128:
        return grey
    coarse = _filtered(_resize(grey, 1 / 8), ImageFilter.MedianFilter(5))
    sheet = coarse > _otsu(coarse)
    if sheet.all() or not sheet.any():
        return grey
    desk, paper = coarse[~sheet].mean(), coarse[sheet].mean()
    between = ((coarse > desk + (paper - desk) / 3) & (coarse < paper - (paper - desk) / 3)).mean()
    edge = np.concatenate([sheet[0], sheet[-1], sheet[:, 0], sheet[:, -1]]).mean()
    if paper - desk < 0.2 or between > 0.05 or edge > 0.5:
        return grey
    rows, cols = np.nonzero(sheet.mean(1) > 0.5)[0], np.nonzero(sheet.mean(0) > 0.5)[0]
    if len(rows) < 4 or len(cols) < 4:
        return grey
    sy, sx = h / sheet.shape[0], w / sheet.shape[1]
    y0, y1, x0, x1 = rows[0] * sy, (rows[-1] + 1) * sy, cols[0] * sx, (cols[-1] + 1) * sx
    dy, dx = 0.03 * (y1 - y0), 0.03 * (x1 - x0)
    return grey[int(y0 + dy):int(y1 - dy), int(x0 + dx):int(x1 - dx)]


def _light_on_dark(grey: np.ndarray) -> bool:
    """Whether the strokes are brighter than what surrounds them (see step 3 of the module docstring)."""
    detail = grey - _filtered(grey, ImageFilter.GaussianBlur(max(grey.shape) / 16))
    dark, bright = np.percentile(detail, [0.5, 99.5])
    return bool(bright > -dark)


def _paper(grey: np.ndarray) -> np.ndarray:
    """How bright the paper is at every pixel: the brightest values nearby, at 1/8 scale, smoothed."""
    h, w = grey.shape
    small = _resize(grey, 1 / 8) if min(h, w) >= 64 else grey
    small = _filtered(_filtered(small, ImageFilter.MaxFilter(5)), ImageFilter.GaussianBlur(2))
    paper = np.asarray(Image.fromarray(small, "F").resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
    return np.maximum(paper, 1e-3)


def _ink(relative: np.ndarray) -> np.ndarray:
    """Boolean strokes of a picture whose paper is 1: Otsu's threshold, capped by MIN_CONTRAST."""
    relative = np.clip(relative, 0, 1)
    return relative < min(_otsu(relative), 1 - MIN_CONTRAST)


def _otsu(a: np.ndarray, bins: int = 256) -> float:
    """The threshold that best splits ``a`` (in [0, 1]) into two classes (Otsu 1979)."""
    hist, edges = np.histogram(a, bins=bins, range=(0, 1))
    p = hist / max(hist.sum(), 1)
    omega = np.cumsum(p)  # share of the dark class for each cut
    mu = np.cumsum(p * (edges[:-1] + edges[1:]) / 2)
    between = (mu[-1] * omega - mu) ** 2 / np.maximum(omega * (1 - omega), 1e-12)
    return float(edges[int(np.argmax(between)) + 1])


def _crop(ink: np.ndarray) -> np.ndarray:
    """The drawing's bounding box with a margin, stray specks at the edges left out."""
    top, bottom, left, right = drawing_box(ink)
    return ink[top:bottom, left:right]


def drawing_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), ends exclusive: the part of a boolean ink mask that becomes the sketch (the
    drawing's bounding box with a margin, stray specks at the edges left out); it is then padded to a centred
    square and shrunk to SIZE. Public so that drawings made in code can map their own coordinates the same way."""
    ys, xs = np.nonzero(ink)
    y0, y1 = np.percentile(ys, [0.2, 99.8]).round().astype(int)
    x0, x1 = np.percentile(xs, [0.2, 99.8]).round().astype(int)
    pad = int(np.ceil(MARGIN * max(y1 - y0 + 1, x1 - x0 + 1)))
    h, w = ink.shape
    return max(0, y0 - pad), min(h, y1 + 1 + pad), max(0, x0 - pad), min(w, x1 + 1 + pad)


def _square(ink: np.ndarray) -> np.ndarray:
    """Padded with paper to a centred square."""
    h, w = ink.shape
    side = max(h, w)
    out = np.zeros((side, side), dtype=bool)
    out[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = ink
    return out


def _to_64(ink: np.ndarray) -> np.ndarray:
    """Stroke coverage in [0, 1] at SIZE x SIZE: thicken by half the shrink factor, then average the area."""
    grow = int(ink.shape[0] / SIZE / 2) * 2 + 1  # odd; 1 (no change) when the picture is small already
    for axis in (0, 1):  # a square max filter, as two 1-D ones (Pillow's MaxFilter costs grow² per pixel)
        padded = np.pad(ink, [(grow // 2, grow // 2) if a == axis else (0, 0) for a in (0, 1)])
        ink = np.lib.stride_tricks.sliding_window_view(padded, grow, axis=axis).any(axis=-1)
    mask = Image.fromarray(ink.astype(np.uint8) * 255, "L")
    cover = np.asarray(mask.resize((SIZE, SIZE), Image.Resampling.BOX), dtype=np.float32) / 255
    return np.clip(cover * 2, 0, 1)  # a cell half covered by a stroke is drawn fully


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{-(-n // 1024)} KB"
