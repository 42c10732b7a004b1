"""Shared fixtures: tiny procedurally drawn faces with known colours, a data directory, a tiny model."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import random  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

import generator  # noqa: E402,F401  (sets OMP_WAIT_POLICY before torch loads)
from generator.tags import EYE_COLORS, HAIR_COLORS  # noqa: E402

HAIR_RGB = {
    "orange": (250, 140, 20), "white": (240, 240, 245), "aqua": (20, 220, 220), "gray": (130, 130, 135),
    "green": (40, 170, 50), "red": (215, 25, 30), "purple": (135, 50, 185), "pink": (255, 135, 195),
    "blue": (35, 70, 225), "black": (25, 22, 30), "brown": (125, 75, 35), "blonde": (250, 225, 110),
}
EYE_RGB = {
    "black": (20, 20, 20), "orange": (250, 130, 20), "pink": (255, 120, 190), "yellow": (245, 225, 40),
    "aqua": (30, 215, 215), "purple": (140, 50, 190), "green": (40, 175, 60), "brown": (120, 70, 30),
    "red": (220, 30, 30), "blue": (40, 80, 230),
}


def bundled_faces_at_64(hair: list[int], eye: list[int], seeds: list[int]) -> list[Image.Image]:
    """Faces the bundled generator draws, framed like the 64 px set, which the face detector and the
    near-duplicate threshold were tuned on: the bundled model's 128 px faces are framed like the 128 px set
    (looser), so their central 112 px are shrunk to 64."""
    from generator.images import to_pil
    from generator.sampler import FaceSampler

    faces = FaceSampler.load(device="cpu").faces(hair, eye, seeds, 128)
    return [to_pil(face[:, 8:120, 8:120], 64) for face in faces]


def draw_face(hair: str, eye: str, seed: int, size: int = 64) -> Image.Image:
    """A cartoon face: skin oval, hair cap and bangs in the hair colour, two eyes in the eye colour."""
    rng = random.Random(seed)
    s = size / 64
    img = Image.new("RGB", (size, size), tuple(rng.randrange(180, 256) for _ in range(3)))
    d = ImageDraw.Draw(img)
    j = lambda v: v + rng.uniform(-2, 2)  # noqa: E731  small jitter so no two faces are equal
    d.ellipse([j(6) * s, j(2) * s, j(58) * s, j(62) * s], fill=HAIR_RGB[hair])
    d.ellipse([j(14) * s, j(16) * s, j(50) * s, j(60) * s], fill=(250, 215, 190))
    d.polygon([(12 * s, 10 * s), (52 * s, 10 * s), (j(44) * s, j(24) * s), (32 * s, j(18) * s),
               (j(20) * s, j(24) * s)], fill=HAIR_RGB[hair])
    for x in (22, 36):
        d.ellipse([j(x) * s, j(30) * s, (x + 7) * s, 41 * s], fill=EYE_RGB[eye], outline=(10, 10, 10))
    d.arc([26 * s, 44 * s, 38 * s, 52 * s], 20, 160, fill=(150, 40, 40), width=max(1, int(s)))
    return img


PAIRS = [("pink", "blue"), ("blonde", "red"), ("blue", "green"), ("black", "yellow"), ("aqua", "purple"),
         ("red", "aqua")]


def make_face_folder(folder: Path, per_pair: int = 4, pairs=PAIRS, seed: int = 0) -> dict[str, tuple[str, str]]:
    """``images/<id>.png`` plus ``tags.csv`` in the anime-faces-64 layout; returns id -> (hair, eye)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    tags = {}
    i = 0
    for hair, eye in pairs:
        for k in range(per_pair):
            draw_face(hair, eye, seed * 10_000 + i).save(folder / "images" / f"{i}.png")
            tags[str(i)] = (hair, eye)
            i += 1
    (folder / "tags.csv").write_text("".join(f"{k},{h} hair {e} eyes\n" for k, (h, e) in tags.items()))
    return tags


@pytest.fixture(scope="session")
def face_data_dir(tmp_path_factory) -> Path:
    """A data directory with ~190 imported tagged faces (enough for a held-out split of every run)."""
    import migrations
    from training.importer import import_folder

    root = tmp_path_factory.mktemp("faces")
    pairs = [(h, e) for h in HAIR_COLORS[::2] for e in EYE_COLORS[::3]]  # 6 x 4 pairs
    make_face_folder(root / "src", per_pair=8, pairs=pairs)
    data_dir = root / "data"
    conn = migrations.connect(data_dir / "moebot.db")
    import_folder(conn, data_dir, root / "src", progress=False)
    conn.close()
    return data_dir


@pytest.fixture(scope="session")
def tiny_generator_file(tmp_path_factory) -> Path:
    """An untrained, narrow default generator saved the way training exports it."""
    import torch

    from generator.models.acgan import ACGANConfig, Generator
    from generator.weights import save_module

    torch.manual_seed(0)
    G = Generator(ACGANConfig(g_ch=4))
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_module(G, path, G.cfg.to_dict(), step=0)
    return path


@pytest.fixture(scope="session")
def tiny_sketch_file(tmp_path_factory) -> Path:
    """An untrained, narrow sketch-to-face generator saved the way its trainer exports it."""
    from fakes.bot_parts import tiny_sketch_weights

    return tiny_sketch_weights(tmp_path_factory.mktemp("weights") / "tiny-sketch.safetensors")


@pytest.fixture(scope="session")
def face128_data_dir(tmp_path_factory) -> Path:
    """A data directory with ~60 untagged 128 px drawn faces imported with ``--size 128`` and their colours
    read by the bundled classifier, beside a few tagged 64 px faces."""
    import migrations
    from training.auto_tags import tag_untagged
    from training.importer import import_folder

    root = tmp_path_factory.mktemp("faces128")
    (root / "big").mkdir()
    for i, (hair, eye) in enumerate((h, e) for h in HAIR_COLORS[::3] for e in EYE_COLORS[::3]):
        for k in range(4):
            draw_face(hair, eye, seed=100 + 4 * i + k, size=128).save(root / "big" / f"{i}-{k}.png")
    make_face_folder(root / "small", per_pair=2)
    data_dir = root / "data"
    conn = migrations.connect(data_dir / "moebot.db")
    import_folder(conn, data_dir, root / "small", progress=False)
    import_folder(conn, data_dir, root / "big", progress=False, size=128)
    tag_untagged(conn, data_dir, progress=False)
    conn.close()
    return data_dir


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the session (Debian's package; the tests that need it skip without it)."""
    from fakes.postgres_server import PostgresServer, binaries

    found = binaries()
    if found is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    server = PostgresServer(found).start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The URL of an empty database of its own on the session's PostgreSQL server."""
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", "postgres"])
def store_target(request, tmp_path):
    """Where a store opens, once per backend: a SQLite file in tmp_path, and a PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "moebot.db"
    return request.getfixturevalue("postgres_url")
