"""Every command's --help explains itself: a description, and words for every option."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from bot.cli.main import build_parser, main


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


COMMANDS = dict(_commands(build_parser()))


@pytest.mark.parametrize("path", sorted(p for p in COMMANDS if p), ids=" ".join)
def test_every_command_has_a_description_and_every_option_a_help(path: tuple[str, ...]) -> None:
    parser = COMMANDS[path]
    assert parser.description and len(parser.description) > 30, path
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.help == argparse.SUPPRESS:
            continue  # deliberately hidden (a test knob)
        assert action.help and len(action.help) > 8, (path, action.option_strings or action.dest)


@pytest.mark.parametrize(
    ("argv", "explained"),
    [
        (["audit", "summary"], ["--by", "ISO week", "--config", "--data-dir"]),
        (["audit", "report"], ["--title", "heading", "--json", "paths written", "--by"]),
        (["audit", "verify"], ["--anchor", "exit 0"]),
    ],
)
def test_audit_help_reads_as_documentation(
    argv: list[str], explained: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert stop.value.code == 0
    for words in explained:
        assert words in out, words
