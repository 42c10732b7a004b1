"""``moebot sketch``: a drawing in, a face out; bad files and colours exit 2 with a message."""

from PIL import Image

from bot.cli import main
from test_sketch_input import drawing, encoded


def test_sketch_round_trip_sizes_and_refusals(tmp_path, tiny_sketch_file, capsys):
    drawn = tmp_path / "in.png"
    drawn.write_bytes(encoded(drawing()))
    base = ["sketch", str(drawn), "--weights", str(tiny_sketch_file)]

    assert main([*base, "--out", str(tmp_path / "out.png"), "--hair", "pink", "--eye", "blue", "--seed", "3"]) == 0
    out = Image.open(tmp_path / "out.png")
    assert out.size == (64, 64) and out.mode == "RGB"
    assert "pink hair, blue eyes, seed 3 (model sketch-v1)" in capsys.readouterr().out
    assert main([*base, "--out", str(tmp_path / "again.png"), "--hair", "pink", "--eye", "blue", "--seed", "3"]) == 0
    assert Image.open(tmp_path / "again.png").tobytes() == out.tobytes()  # reproducible
    assert main([*base, "--out", str(tmp_path / "big" / "out.png"), "--size", "256"]) == 0
    assert Image.open(tmp_path / "big" / "out.png").size == (256, 256)

    bad = tmp_path / "bad.png"
    bad.write_text("this is not a drawing")
    assert main(["sketch", str(bad), "--out", str(tmp_path / "x.png"), "--weights", str(tiny_sketch_file)]) == 2
    assert "bad.png: That file is not a picture I can read" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "x.png"), "--hair", "pnk"]) == 2
    assert "unknown hair colour 'pnk' — did you mean pink?" in capsys.readouterr().err
    assert main(["sketch", str(tmp_path / "missing.png"), "--out", str(tmp_path / "x.png")]) == 2
    assert "missing.png" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
