"""`moebot --help` lists every subcommand, in plain text (no reStructuredText backticks)."""

import pytest

from bot.cli import main

SUBCOMMANDS = ("import", "train", "runstate", "sample", "sketch", "evaluate", "models", "retrain", "run")


def help_of(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


def test_help_lists_every_subcommand_without_backticks(capsys):
    text = help_of(capsys)
    assert "`" not in text
    rows = {line.split()[0] for line in text.splitlines() if line.startswith("    ") and line.split()}
    assert set(SUBCOMMANDS) <= rows  # each on a row of its own, with what it does
    for name in SUBCOMMANDS:
        assert "`" not in help_of(capsys, name), name
