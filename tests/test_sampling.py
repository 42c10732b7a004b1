"""Sampling: determinism per seed, every ACGAN mode, per-tag folders, and the CLI round trip."""

import torch
from PIL import Image

from bot.cli import main
from generator.sampler import FaceSampler, slerp
from generator.tags import EYE_COLORS, HAIR_COLORS


def test_same_seed_same_face_in_any_batch(tiny_generator_file):
    s = FaceSampler.load(tiny_generator_file, "cpu")
    alone = s.faces([7], [9], [42])
    in_batch = s.faces([0, 7, 3], [1, 9, 2], [1, 42, 5])
    assert alone.dtype == torch.uint8 and alone.shape == (1, 3, 64, 64)
    assert torch.equal(alone[0], in_batch[1])
    assert not torch.equal(s.faces([7], [9], [43])[0], alone[0])
    assert not torch.equal(s.faces([2], [9], [42])[0], alone[0])  # the colours change the picture


def test_modes_have_the_acgan_layouts(tiny_generator_file):
    s = FaceSampler.load(tiny_generator_file, "cpu")
    cell = 64 + 2
    assert s.mode_grid("fix-noise", 0, 0, 1).size == (10 * cell + 2, 12 * cell + 2)
    assert s.mode_grid("change-hair", 0, 3, 1, n=2).size == (12 * cell + 2, 2 * cell + 2)
    assert s.mode_grid("change-eye", 5, 0, 1, n=3).size == (10 * cell + 2, 3 * cell + 2)
    assert s.mode_grid("fix-hair-eye", 5, 0, 1, n=4, size=128).size == (4 * 130 + 2, 4 * 130 + 2)
    frames = s.morph_frames((0, 0, 1), (11, 9, 2), frames=5)
    assert len(frames) == 5 and frames[0].size == (64, 64)
    assert frames[0].tobytes() == Image.fromarray(s.faces([0], [0], [1])[0].permute(1, 2, 0).numpy()).tobytes()


def test_slerp_ends_and_norm():
    a, b = torch.randn(128, generator=torch.Generator().manual_seed(0)), torch.randn(128)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)


def test_cli_writes_faces_deterministically(tiny_generator_file, tmp_path, capsys):
    args = ["sample", "--hair", "pink", "--eye", "blue", "-n", "3", "--seed", "0", "--weights",
            str(tiny_generator_file)]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--size", "128"]) == 0
    assert main([*args, "--out", str(tmp_path / "c")]) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["000.png", "001.png", "002.png"]
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "c" / n).read_bytes()
        assert Image.open(tmp_path / "b" / n).size == (128, 128)
    assert "wrote 3 faces" in capsys.readouterr().out


def test_cli_modes_and_per_tag(tiny_generator_file, tmp_path):
    w = ["--weights", str(tiny_generator_file)]
    for mode in ("fix-noise", "change-hair", "change-eye", "fix-hair-eye"):
        assert main(["sample", "--mode", mode, "--out", str(tmp_path / "modes"), *w]) == 0
        with Image.open(tmp_path / "modes" / f"{mode}.png") as img:
            img.verify()
    gif = tmp_path / "morph.gif"
    assert main(["sample", "--mode", "interpolate", "--hair", "red", "--hair2", "blue", "--frames", "6",
                 "--out", str(gif), *w]) == 0
    with Image.open(gif) as img:
        assert img.format == "GIF" and img.n_frames == 10  # 6 forward, 4 back: a seamless loop
    assert main(["sample", "--per-tag", "1", "--out", str(tmp_path / "pt"), *w]) == 0
    folders = sorted(p.name for p in (tmp_path / "pt").iterdir())
    assert len(folders) == 120 and f"{HAIR_COLORS[0]}_{EYE_COLORS[0]}" in folders
    assert (tmp_path / "pt" / "pink_blue" / "000.png").exists()


def test_cli_rejects_unknown_colour(tiny_generator_file, tmp_path, capsys):
    code = main(["sample", "--hair", "pnk", "--out", str(tmp_path), "--weights", str(tiny_generator_file)])
    assert code == 2
    assert "unknown hair colour 'pnk'" in capsys.readouterr().err
