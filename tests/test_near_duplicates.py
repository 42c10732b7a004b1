"""Near-duplicate faces: edited copies are found, other faces are not; the index over a data directory."""

import io

import numpy as np
import pytest
from conftest import bundled_faces_at_64, draw_face, make_face_folder
from PIL import Image, ImageEnhance

from training.near_duplicates import (CACHE, THRESHOLD, WORDS, FaceHashIndex, NearDuplicate, face_hash, hamming,
                                      phash)


@pytest.fixture(scope="module")
def gan_faces() -> list[Image.Image]:
    """Faces from the bundled generator: the faces THRESHOLD was measured on (conftest's flat cartoons
    flip more bits when shifted than drawn faces do)."""
    return bundled_faces_at_64([7, 11, 2], [9, 8, 4], [0, 1, 2])


def distance(a: Image.Image, b: Image.Image) -> int:
    return int(hamming(face_hash(a)[None], face_hash(b))[0])


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def recrop(img: Image.Image, px: int) -> Image.Image:
    """``px`` pixels cut off the left and top, resized back: the same face framed a little differently."""
    return img.crop((px, px, 64, 64)).resize((64, 64), Image.Resampling.LANCZOS)


def test_edited_copies_are_near_duplicates(gan_faces):
    for face in gan_faces:
        assert distance(face, jpeg(face, 60)) <= THRESHOLD
        assert distance(face, recrop(face, 2)) <= THRESHOLD
        assert distance(face, ImageEnhance.Brightness(face).enhance(1.15)) <= THRESHOLD
        assert distance(face, ImageEnhance.Brightness(recrop(face, 1)).enhance(0.85)) <= THRESHOLD


def test_other_faces_are_not(gan_faces):
    for i, a in enumerate(gan_faces):
        for b in gan_faces[i + 1:]:
            assert distance(a, b) > THRESHOLD
    assert distance(draw_face("pink", "blue", 1), draw_face("blonde", "red", 2)) > THRESHOLD


def test_hash_layout_and_popcount():
    faces = np.stack([np.asarray(draw_face("pink", "blue", s)) for s in range(3)])
    hashes = phash(faces)
    assert hashes.shape == (3, WORDS) and hashes.dtype == np.uint64
    assert (hashes[1] == face_hash(Image.fromarray(faces[1]))).all()
    known = np.array([[0, 0, 0], [1, 3, 2 ** 63]], dtype=np.uint64)
    assert hamming(known, np.zeros(WORDS, np.uint64)).tolist() == [0, 4]
    with pytest.raises(ValueError, match="64, 64, 3"):
        phash(faces[:, :32])


@pytest.fixture
def data_dir(tmp_path):
    import migrations
    from training.importer import import_folder

    make_face_folder(tmp_path / "src", per_pair=2)
    conn = migrations.connect(tmp_path / "data" / "moebot.db")
    import_folder(conn, tmp_path / "data", tmp_path / "src", progress=False)
    conn.close()
    return tmp_path / "data"


def stored_faces(data_dir) -> dict[int, Image.Image]:
    import migrations

    conn = migrations.connect(data_dir / "moebot.db")
    rows = conn.execute("SELECT id, path FROM images").fetchall()
    conn.close()
    return {i: Image.open(data_dir / p).convert("RGB") for i, p in rows}


def test_index_finds_a_stored_face_from_a_reencoded_copy(data_dir, monkeypatch):
    faces = stored_faces(data_dir)
    index = FaceHashIndex.build(data_dir)
    assert len(index) == len(faces) == 12
    image_id, face = next(iter(faces.items()))
    assert index.find(face_hash(face))[0] == NearDuplicate(image_id, 0)
    found = index.find(face_hash(jpeg(face, 60)))
    assert found[0].image_id == image_id and found[0].distance <= THRESHOLD
    assert [d.distance for d in found] == sorted(d.distance for d in found)
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert index.find(face_hash(noise)) == []

    assert (data_dir / CACHE).exists()  # a rebuild reads no face file: every hash comes from the cache
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("read a face the cache holds"))
    again = FaceHashIndex.build(data_dir)
    assert (again.hashes == index.hashes).all() and (again.image_ids == index.image_ids).all()


def test_added_face_is_found(data_dir):
    index = FaceHashIndex.build(data_dir)
    new = draw_face("purple", "orange", 99)
    assert index.find(face_hash(new)) == []
    index.add(10_000, face_hash(new))
    assert index.find(face_hash(jpeg(new, 90)))[0].image_id == 10_000
