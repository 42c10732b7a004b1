"""Face crops of whole pictures: faces the bundled generator drew, found where they were pasted; the fallback."""

from importlib.util import find_spec

import numpy as np
import pytest
from PIL import Image

from conftest import bundled_faces_at_64, draw_face
from generator import face_crop
from generator.face_crop import (NOTHING_DRAWN, FaceDetectorUnavailable, crop_faces, detect_faces, has_content,
                                 read_picture, search_scales, smallest_findable, square_box)
from generator.sketch_input import SketchRejected, UploadLimits
from test_sketch_input import encoded

needs_animeface = pytest.mark.skipif(find_spec("animeface") is None, reason="animeface is not installed")


@pytest.fixture(scope="module")
def gan_faces() -> list[Image.Image]:
    """64x64 faces from the bundled generator, framed like the 64 px set, that the detector finds (it finds none
    of conftest's cartoons)."""
    return bundled_faces_at_64([7, 11], [9, 8], [0, 1])  # pink/blue, blonde/red


def backdrop(w: int, h: int) -> Image.Image:
    """A sky-like gradient: no face in it, and cheap for the detector."""
    g = np.linspace(180, 240, w * h).reshape(h, w)
    return Image.fromarray(np.stack([g, g, np.full_like(g, 230)], -1).astype(np.uint8))


def inside(point: tuple[float, float], box: tuple[int, int, int, int]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


@needs_animeface
def test_finds_each_pasted_face_and_frames_it(gan_faces):
    pic = backdrop(320, 200)
    pasted = [(40, 30, 104, 94), (200, 100, 264, 164)]
    for face, box in zip(gan_faces, pasted):
        pic.paste(face, box[:2])
    result = crop_faces(pic)
    assert result.found and result.note is None
    assert len(result.crops) == 2
    for crop in result.crops:
        assert crop.image.size == (64, 64) and crop.image.mode == "RGB"
        left, top, right, bottom = crop.crop_box
        assert right - left == bottom - top and 0 <= left and 0 <= top and right <= 320 and bottom <= 200
        fx = (crop.face_box[0] + crop.face_box[2]) / 2
        fy = (crop.face_box[1] + crop.face_box[3]) / 2
        on = [box for box in pasted if inside((fx, fy), box)]
        assert len(on) == 1
        assert abs((right - left) - 64) <= 12  # framed like the 64-px face it came from
        assert 0 < crop.confidence <= 1
    assert {tuple(c.face_box) for c in result.crops} == {tuple(round(v) for v in d.box) for d in detect_faces(pic)}
    keys = [(-round(c.confidence, 2), -(c.face_box[2] - c.face_box[0])) for c in result.crops]
    assert keys == sorted(keys)


@needs_animeface
def test_small_face_is_found_by_the_enlarged_pass(gan_faces):
    pic = backdrop(120, 80)
    pic.paste(gan_faces[0].resize((40, 40), Image.Resampling.LANCZOS), (40, 13))
    assert face_crop._run_glue(pic) == []  # under the glue's reliable size, as it is
    (face,) = detect_faces(pic)
    assert inside(((face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2), (40, 13, 80, 53))


@needs_animeface
@pytest.mark.filterwarnings("ignore:Image.Image.getdata is deprecated")
@pytest.mark.skipif(tuple(int(v) for v in Image.__version__.split(".")[:2]) < (12, 0), reason="Pillow < 12")
def test_stock_animeface_sees_nothing_with_pillow_12(gan_faces):
    """Why face_crop does not call animeface.detect: its glue misreads Pillow >= 12's image struct."""
    import animeface

    pic = backdrop(128, 128)
    pic.paste(gan_faces[0], (32, 21))
    assert animeface.detect(pic) == []
    assert len(detect_faces(pic)) == 1


def test_no_face_falls_back_to_the_centre_square():
    pic = backdrop(300, 200)
    result = crop_faces(pic)
    assert not result.found and result.note == "no face found — used the whole picture"
    (crop,) = result.crops
    assert crop.crop_box == (50, 0, 250, 200) and crop.face_box is None and crop.confidence is None
    expected = np.asarray(pic.crop(crop.crop_box).resize((64, 64), Image.Resampling.LANCZOS), dtype=float)
    assert np.abs(np.asarray(crop.image, dtype=float) - expected).mean() < 1


@needs_animeface
@pytest.mark.parametrize("size", [(640, 480), (1024, 768)])
def test_large_face_in_a_medium_picture_is_found_by_a_smaller_pass(gan_faces, size):
    """A 256 px face on 640x480 was found in 0 of 40 pictures: the one pass barely shrank the picture, and the
    detector misses faces much over 112 px."""
    for face in gan_faces:
        pic = backdrop(*size)
        pic.paste(face.resize((256, 256), Image.Resampling.LANCZOS), (150, 100))
        result = crop_faces(pic)
        assert result.found
        crop = result.crops[0]
        assert inside(((crop.face_box[0] + crop.face_box[2]) / 2, (crop.face_box[1] + crop.face_box[3]) / 2),
                      (150, 100, 406, 356))
        assert 200 <= crop.crop_box[2] - crop.crop_box[0] <= 330  # framed like the 256 px face it is


def test_search_goes_down_until_the_widest_face_fits_the_detector():
    for size in [(320, 200), (640, 480), (1600, 1200), (4000, 300)]:
        scales = [s for s in search_scales(size) if s <= 1]  # less the enlarged pass of small pictures
        assert min(size) * scales[-1] <= face_crop.RELIABLE_MAX < min(size) * scales[-2]
        assert all(a / b == pytest.approx(face_crop.FACE_STEP) for a, b in zip(scales, scales[1:]))
    assert search_scales((120, 80)) == [1.0, 2.0]  # small enough for only the enlarged pass


def test_big_picture_note_says_how_big_a_face_must_be():
    pic = backdrop(1600, 1200)
    result = crop_faces(pic)
    assert not result.found
    assert result.note == (f"no face found (faces under {smallest_findable(pic.size)} px wide are too small to find "
                           "in a picture this big) — used the whole picture")
    assert smallest_findable(pic.size) > smallest_findable((200, 200)) == face_crop.MIN_FACE


def test_pictures_with_nothing_drawn_are_refused():
    rng = np.random.default_rng(0)
    nothing = {"blank": Image.new("RGB", (640, 480), "white"), "gradient": backdrop(640, 480),
               "noise": Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)),
               "small noise": Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)),
               "grey noise": Image.fromarray(np.clip(128 + rng.normal(0, 20, (300, 300)), 0, 255).astype(np.uint8))}
    for name, pic in nothing.items():
        assert not has_content(pic.convert("RGB")), name
        for fmt in ("PNG", "JPEG"):
            with pytest.raises(SketchRejected) as e:
                read_picture(encoded(pic, fmt), UploadLimits())
            assert str(e.value) == NOTHING_DRAWN
    cartoon = draw_face("blue", "red", 77, size=128)  # a face the detector misses: still something to submit
    picture, animated = read_picture(encoded(cartoon), UploadLimits())
    assert picture.mode == "RGB" and picture.size == (128, 128) and not animated
    assert has_content(draw_face("green", "purple", 3, size=640))


def test_submitted_pictures_are_decoded_no_bigger_than_the_search_needs():
    picture, _ = read_picture(encoded(draw_face("green", "purple", 3, size=3000), "JPEG"), UploadLimits())
    assert picture.size == (1500, 1500) and picture.mode == "RGB"  # JPEG: decoded at 1/2 by its DCT
    picture, _ = read_picture(encoded(draw_face("green", "purple", 3, size=2500)), UploadLimits())
    assert picture.size == (1250, 1250)  # PNG: halved right after decoding
    with pytest.raises(SketchRejected, match="send a picture at least 32x32"):
        read_picture(encoded(draw_face("green", "purple", 3, size=24)), UploadLimits())


def test_detector_unavailable_still_gives_the_whole_picture(monkeypatch):
    def missing():
        raise FaceDetectorUnavailable("animeface is not installed (test)")

    monkeypatch.setattr(face_crop, "_glue", missing)
    result = crop_faces(backdrop(100, 150).convert("RGBA"))
    assert not result.found and result.note == "couldn't look for faces — used the whole picture"
    assert result.crops[0].crop_box == (0, 25, 100, 125) and result.crops[0].image.mode == "RGB"


def test_square_box_stays_inside_the_picture():
    assert square_box((100, 80), 50, 40, 20) == (40, 30, 60, 50)
    assert square_box((100, 80), 5, 75, 20) == (0, 60, 20, 80)   # pushed in from the corner
    assert square_box((100, 80), 50, 40, 500) == (10, 0, 90, 80)  # shrunk to the short side
