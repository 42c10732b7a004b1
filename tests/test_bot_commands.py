"""Parsing chat commands: colour words in any order and language, typos, numbers; never an exception."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands import COMMANDS, Colors, CommandError, Grid, Help, Morph, Stats, Top, Waifu, parse
from generator.tags import eye_index, hair_index

PINK_BLUE = Waifu(hair_index("pink"), eye_index("blue"))


@pytest.mark.parametrize("text", [
    "/waifu pink blue", "/waifu blue eyes pink hair", "/waifu pink hair blue eyes", "/waifu PINK Blue",
    "/waifu@moe_bot pink blue", "/waifu hair:pink eye:blue", "/waifu cheveux roses, yeux bleus",
    "/waifu ピンクの髪と青い目", "/waifu 粉色头发蓝色眼睛", "/waifu 분홍색 머리에 파란 눈", "/waifu rose bleu",
])
def test_pink_hair_blue_eyes_in_many_forms(text):
    assert parse(text) == PINK_BLUE


@pytest.mark.parametrize("text, hair", [
    ("/waifu blonde", "blonde"), ("/waifu blond", "blonde"), ("/waifu yellow", "blonde"), ("/waifu 金髪", "blonde"),
    ("/waifu grey", "gray"), ("/waifu silver", "gray"), ("/waifu cyan", "aqua"), ("/waifu 은색", "gray"),
])
def test_synonyms_name_the_models_colours(text, hair):
    assert parse(text) == Waifu(hair_index(hair), None)


def test_no_arguments_means_random_colours_and_seed():
    assert parse("/waifu") == Waifu(None, None, 1, None)


def test_eye_only_colour_goes_to_the_eyes():
    assert parse("/waifu blue eyes") == Waifu(None, eye_index("blue"))
    assert parse("/waifu white yellow") == Waifu(hair_index("white"), eye_index("yellow"))


def test_count_and_seed():
    assert parse("/waifu pink blue 3 42") == Waifu(hair_index("pink"), eye_index("blue"), 3, 42)
    assert parse("/waifu seed:7") == Waifu(None, None, 1, 7)
    assert parse("/waifu 2 count=4 ") == Waifu(None, None, 4, 2)  # a named count leaves the number for the seed


@pytest.mark.parametrize("text, answer", [
    ("/waifu pnk", "unknown hair colour 'pnk' — did you mean pink?"),
    ("/waifu pink bleu eyes", None),
    ("/waifu pink blu", "unknown eye colour 'blu' — did you mean blue?"),
    ("/waifu blnde hair", "unknown hair colour 'blnde' — did you mean blonde?"),
    ("/waifu pink white", "there are no white eyes"),
    ("/waifu pink blue red", "too many colours"),
    ("/waifu pink hair red hair", "too many hair colours"),
    ("/waifu 9", "count must be between 1 and 4"),
    ("/waifu 1 2 3", "too many numbers"),
    ("/waifu seed:-1", "seed must be between 0 and"),
    ("/waifu zzzz", "unknown hair colour 'zzzz'; hair colours: orange"),
    ("/top month", "/top takes day, week or all"),
    ("/grid all seed:x", "seed must be a whole number"),
    ("/frobnicate", "I don't know the command /frobnicate. Try /help."),
    ("/wafu pink blue", "I don't know the command /wafu — did you mean /waifu pink blue?"),
    ("/Grd@moebot hair", "I don't know the command /grd — did you mean /grid hair?"),
    ("/stat", "I don't know the command /stat — did you mean /stats?"),
])
def test_bad_input_gets_a_clear_answer(text, answer):
    if answer is None:
        parse(text)  # "bleu" is French for blue: accepted
        return
    with pytest.raises(CommandError) as e:
        parse(text)
    assert answer in str(e.value)


def test_other_commands():
    assert parse("/grid hair pink seed:3") == Grid("hair", hair_index("pink"), None, 3)
    assert parse("/grid eyes") == Grid("eye")
    assert parse("/grid") == Grid("all")
    assert parse("/morph pink blue blonde red 1 2") == Morph(hair_index("pink"), eye_index("blue"),
                                                             hair_index("blonde"), eye_index("red"), 1, 2)
    assert parse("/morph blue eyes red eyes") == Morph(None, eye_index("blue"), None, eye_index("red"))
    assert parse("/top") == Top("week") and parse("/top day") == Top("day")
    assert parse("/stats") == Stats() and parse("/colors") == Colors() and parse("/help") == Help()
    assert parse("/start") == Help()


def test_max_count_comes_from_the_limits():
    with pytest.raises(CommandError, match="between 1 and 2"):
        parse("/waifu 3", max_count=2)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["/waifu", "/grid", "/morph", "/top", "/stats", "/x", ""]),
       st.text(max_size=60))
def test_any_text_gets_a_command_or_a_readable_refusal(name, rest):
    try:
        cmd = parse(f"{name} {rest}")
    except CommandError as e:
        assert str(e) and len(str(e)) < 400
    else:  # a value of that command (text with no command name may name any: " sketch")
        spec = COMMANDS.of(cmd)  # KeyError for a value no entry makes
        assert spec.name == name.lstrip("/") or name == ""


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["pink", "blue", "hair", "eyes", "yeux", "cheveux", "髪", "目", "3", "seed:5",
                                 "blnde", "白", "gray", "의", "white"]), max_size=8))
def test_any_mix_of_known_words_parses_or_refuses(words):
    try:
        cmd = parse("/waifu " + " ".join(words))
    except CommandError as e:
        assert str(e)
    else:
        assert cmd.count in range(1, 5)


def test_the_command_line_reads_colours_as_chat_does(tiny_generator_file, tmp_path, capsys):
    from bot.cli import main

    w = ["--weights", str(tiny_generator_file), "-n", "1"]
    assert main(["sample", "--hair", "purplee", "--out", str(tmp_path / "typo"), *w]) == 2
    assert "unknown hair colour 'purplee' — did you mean purple?" in capsys.readouterr().err
    assert main(["sample", "--eye", "white", "--out", str(tmp_path / "white"), *w]) == 2
    assert "there are no white eyes here" in capsys.readouterr().err
    assert main(["sample", "--hair", "blond", "--eye", "bleu", "--out", str(tmp_path / "ok"), *w]) == 0
    assert not (tmp_path / "typo").exists() and (tmp_path / "ok" / "000.png").exists()
