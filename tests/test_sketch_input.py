"""Uploads to sketches: every refusal with a crafted file, and drawings read the same however they arrive."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from generator.sketch_input import INK, PAPER, SketchRejected, UploadLimits, decode_upload, normalise_sketch


def drawing(size=(600, 400), ink=0, paper=255, width=3) -> Image.Image:
    """A face-like doodle: a head, two eyes, a mouth (dark on light by default)."""
    img = Image.new("L", size, paper)
    d = ImageDraw.Draw(img)
    w, h = size
    d.ellipse([w * 0.3, h * 0.15, w * 0.7, h * 0.85], outline=ink, width=width)
    for x in (0.42, 0.55):
        d.ellipse([w * x, h * 0.4, w * (x + 0.04), h * 0.47], outline=ink, width=width)
    d.arc([w * 0.43, h * 0.55, w * 0.57, h * 0.7], 20, 160, fill=ink, width=width)
    return img


def encoded(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with a tiny body: a decompression bomb's shape."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def refusal(data: bytes, **limits) -> str:
    with pytest.raises(SketchRejected) as e:
        normalise_sketch(data, UploadLimits(**limits))
    return str(e.value)


def test_refusals_name_the_problem():
    assert "too many pixels to open safely" in refusal(png_header_only(20000, 20000))  # Pillow's own guard
    assert "7000x7000 pixels, too many" in refusal(png_header_only(7000, 7000), max_pixels=40_000_000)
    assert "megapixels" in refusal(encoded(drawing()), max_pixels=100_000)  # 240k pixels over a low limit
    good = encoded(drawing())
    assert "damaged or cut short" in refusal(good[: len(good) // 2])
    assert "not a picture I can read" in refusal(b"Dear bot, here is my drawing.\n" * 20)
    assert "not a picture I can read" in refusal(b"")
    assert "only 1x1 pixels" in refusal(encoded(Image.new("L", (1, 1), 0)))
    assert refusal(encoded(drawing((15, 40), width=1))).startswith("That image is only 15x40 pixels; send a picture "
                                                                   "at least 16x16.")
    assert "looks blank" in refusal(encoded(Image.new("RGB", (800, 600), "white")))
    noisy = np.clip(200 + np.random.default_rng(0).normal(0, 4, (300, 300)), 0, 255).astype(np.uint8)
    assert "looks blank" in refusal(encoded(Image.fromarray(noisy), "JPEG"))  # grey paper, sensor noise
    assert refusal(good, max_bytes=1000) == f"That file is {-(-len(good) // 1024)} KB; I take files up to 1 KB."
    assert "is 12.0 MB; I take files up to 10.0 MB" in refusal(b"\0" * (12 * 2**20))


def test_result_is_a_64x64_sketch_in_the_model_convention():
    sketch = normalise_sketch(encoded(drawing()))
    assert sketch.pixels.shape == (64, 64) and sketch.pixels.dtype == np.float32
    assert sketch.pixels.max() == PAPER and sketch.pixels.min() == INK
    assert (sketch.pixels[0] == PAPER).all() and (sketch.pixels[:, 0] == PAPER).all()  # a margin of paper
    ink = sketch.pixels < 0
    assert 0.03 < ink.mean() < 0.4  # strokes survive the 9x shrink, and do not flood the picture
    assert sketch.format == "PNG" and sketch.suffix == ".png" and sketch.notes() == []
    shown = sketch.to_image()
    assert shown.mode == "L" and shown.size == (64, 64) and shown.getpixel((0, 0)) == 255


def test_light_on_dark_reads_like_dark_on_light():
    dark_on_light = normalise_sketch(encoded(drawing()))
    light_on_dark = normalise_sketch(encoded(drawing(ink=240, paper=20)))
    assert not dark_on_light.inverted and light_on_dark.inverted
    assert "light on dark" in light_on_dark.notes()[0]
    assert np.abs(dark_on_light.pixels - light_on_dark.pixels).mean() < 0.02


def test_photo_of_paper_with_uneven_light_thresholds_to_the_strokes():
    clean = normalise_sketch(encoded(drawing()))
    strokes = np.asarray(drawing(), dtype=np.float32) / 255
    light = np.linspace(0.35, 0.95, strokes.shape[1])[None, :] * np.linspace(0.8, 1.0, strokes.shape[0])[:, None]
    grey_paper = 0.85  # paper is not white, ink is not black
    photo = (0.15 + (grey_paper - 0.15) * strokes) * light + np.random.default_rng(1).normal(0, 0.015, strokes.shape)
    sketch = normalise_sketch(encoded(Image.fromarray(np.clip(photo * 255, 0, 255).astype(np.uint8)), "JPEG",
                                      quality=85))
    assert not sketch.inverted
    assert np.abs(sketch.pixels - clean.pixels).mean() < 0.1
    assert ((sketch.pixels < 0) == (clean.pixels < 0)).mean() > 0.95
    plain_threshold = (np.asarray(Image.open(io.BytesIO(encoded(Image.fromarray(
        np.clip(photo * 255, 0, 255).astype(np.uint8))))), dtype=np.float32) / 255) < 0.5
    assert plain_threshold.mean() > 0.2  # a global threshold would have called the dim side ink


def test_exif_orientation_is_applied():
    upright = drawing(size=(400, 600))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # how the camera wrote it
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 CW to display"
    jpeg = encoded(stored.convert("RGB"), "JPEG", exif=exif.tobytes(), quality=95)
    turned = normalise_sketch(jpeg)
    reference = normalise_sketch(encoded(upright))
    unturned = normalise_sketch(encoded(stored))
    assert turned.suffix == ".jpg"
    assert np.abs(turned.pixels - reference.pixels).mean() < np.abs(unturned.pixels - reference.pixels).mean() / 2


def test_animated_gif_uses_its_first_frame_and_says_so():
    first, second = drawing().convert("P"), Image.new("P", (600, 400), 255)
    buf = io.BytesIO()
    first.save(buf, format="GIF", save_all=True, append_images=[second], duration=100, loop=0)
    sketch = normalise_sketch(buf.getvalue())
    assert sketch.animated and "first frame" in sketch.notes()[0]
    assert np.abs(sketch.pixels - normalise_sketch(encoded(drawing())).pixels).mean() < 0.02


def test_transparent_background_takes_the_contrasting_colour():
    strokes = np.asarray(drawing(), dtype=np.uint8) < 128
    for colour in (0, 255):  # black strokes on nothing, then white strokes on nothing
        rgba = np.zeros((*strokes.shape, 4), dtype=np.uint8)
        rgba[..., :3] = colour
        rgba[..., 3] = strokes * 255
        sketch = normalise_sketch(encoded(Image.fromarray(rgba, "RGBA")))
        assert 0.03 < (sketch.pixels < 0).mean() < 0.4


def test_thin_strokes_of_a_large_scan_stay_visible():
    big = normalise_sketch(encoded(drawing(size=(3000, 2000), width=3)))  # 1-pixel lines after the 6x work shrink
    assert (big.pixels < 0).mean() > 0.03


def test_a_sheet_photographed_on_a_dark_desk_is_cut_to_the_sheet():
    clean = normalise_sketch(encoded(drawing()))
    strokes = np.asarray(drawing(), dtype=np.float32) / 255
    desk = 0.25 + np.random.default_rng(2).normal(0, 0.03, (600, 900)).astype(np.float32)
    desk[100:500, 150:750] = 0.15 + 0.7 * strokes  # grey paper, dark ink
    photo = np.clip(desk * np.linspace(0.6, 1.0, 900)[None, :], 0, 1)
    sketch = normalise_sketch(encoded(Image.fromarray((photo * 255).astype(np.uint8)), "JPEG"))
    assert not sketch.inverted  # the sheet's bright edge against the desk is not light ink
    assert np.abs(sketch.pixels - clean.pixels).mean() < 0.1


def test_large_filled_areas_stay_ink():
    filled = drawing()
    ImageDraw.Draw(filled).rectangle([180, 60, 420, 140], fill=0)  # hair coloured in with a marker
    sketch = normalise_sketch(encoded(filled))
    assert not sketch.inverted and sketch.pixels[5:15, 10:54].max() == INK


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two sketches' ink."""
    return float(((a < 0) & (b < 0)).sum() / ((a < 0) | (b < 0)).sum())


def test_small_doodles_are_enlarged_and_read_like_big_ones():
    big = normalise_sketch(encoded(drawing((280, 280), width=10)))
    doodle = normalise_sketch(encoded(drawing((28, 28), width=1)))  # a Quick, Draw! bitmap's size
    assert iou(doodle.pixels, big.pixels) > 0.5
    tiny = normalise_sketch(encoded(drawing((16, 16), width=1)))
    assert 0.03 < (tiny.pixels < 0).mean() < 0.4 and (tiny.pixels[0] == PAPER).all()
    from test_sketch_data import draw_doodles  # white on black, as the sketch model's doodles come
    from training.sketch_data import DoodleSet

    bitmaps = draw_doodles(4)
    read = [normalise_sketch(encoded(Image.fromarray(b))) for b in bitmaps]
    trained_on = DoodleSet.from_bitmaps(bitmaps).sketches()[:, 0].numpy()
    assert all(r.inverted for r in read)
    assert np.mean([iou(r.pixels, t) for r, t in zip(read, trained_on)]) > 0.5


def test_only_documented_formats_are_opened_and_ghostscript_never_runs(monkeypatch):
    from PIL import EpsImagePlugin

    started = []

    def ghostscript(*args, **kwargs):
        started.append(args)
        raise OSError("gs would have started")
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n{ 1 pop } loop\n%%EOF\n"  # spins gs forever
    assert Image.open(io.BytesIO(eps)).format == "EPS"  # Pillow itself would open it
    others = [eps, b"%PDF-1.4\n1 0 obj << >> endobj\n"] + [encoded(drawing().convert("RGB"), f)
                                                               for f in ("PPM", "ICO", "TGA", "PCX")]
    for data in others:
        assert refusal(data) == ("That file is not a picture I can read; send a PNG, JPEG, GIF, WebP, BMP or TIFF "
                                 "image.")
    assert started == []
    reference = normalise_sketch(encoded(drawing()))
    for fmt in ("TIFF", "WEBP", "BMP"):
        assert np.abs(normalise_sketch(encoded(drawing(), fmt)).pixels - reference.pixels).mean() < 0.02


def test_big_pictures_are_refused_early_and_decoded_shrunk():
    assert "6300x6300 pixels, too many to open safely; I take up to 16 megapixels." in \
        refusal(png_header_only(6300, 6300))  # a 128 kB PNG of this size used to cost 453 MB
    img, _ = decode_upload(encoded(drawing((3000, 2000))), UploadLimits(), side=512)
    assert img.size == (600, 400) and img.format == "PNG"  # shrunk 5x, the most that keeps 512 px
    jpeg, _ = decode_upload(encoded(drawing((4000, 3000)), "JPEG"), UploadLimits(), side=512, mode="L")
    assert jpeg.size == (1000, 750) and jpeg.mode == "L" and jpeg.format == "JPEG"  # decoded at 1/4 by its DCT
    palette = Image.new("P", (2000, 1000), 1)
    palette.putpalette([0, 0, 0, 200, 30, 60] + [0] * 762)
    ImageDraw.Draw(palette).rectangle([0, 0, 999, 999], fill=0)
    shrunk, _ = decode_upload(encoded(palette), UploadLimits(), side=400)  # colours averaged, not palette indices
    assert shrunk.size == (400, 200) and shrunk.getpixel((100, 100)) == (0, 0, 0) and \
        shrunk.getpixel((300, 100)) == (200, 30, 60)
    whole, _ = decode_upload(encoded(drawing((3000, 2000))), UploadLimits())
    assert whole.size == (3000, 2000)
