"""Every command's --help explains itself: a description, and words for every option."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

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


LEAVES = sorted(
    p
    for p, parser in COMMANDS.items()
    if p and not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
)


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_a_bad_flag_prints_the_commands_own_usage_and_exit_2(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main([*path, "--bogus"])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.startswith(f"usage: rebalance-bot {' '.join(path)} "), err
    assert f"rebalance-bot {' '.join(path)}: error: " in err, err
    assert "unrecognized arguments: --bogus" in err or "required" in err, err


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["run", "--bogus"], "usage: rebalance-bot run [-h]"),
        (["check-config", "--log-level"], "usage: rebalance-bot check-config [-h]"),
        (["audit", "verify", "x"], "usage: rebalance-bot audit verify [-h]"),
    ],
)
def test_an_unrecognized_argument_is_reported_by_its_command(
    argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith(usage), err
    assert f"error: unrecognized arguments: {argv[-1]}" in err and err.count("error:") == 1


WITH_LIVE = sorted(
    p
    for p, parser in COMMANDS.items()
    if any("--live" in a.option_strings for a in parser._actions)
)


@pytest.mark.parametrize("path", WITH_LIVE, ids=" ".join)
def test_the_live_flag_says_what_it_does_with_a_dry_run_config(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """The help tells what the command does: --live on a dry-run config is refused (exit 2),
    not run as a dry run."""
    (live,) = [a for a in COMMANDS[path]._actions if "--live" in a.option_strings]
    assert live.help is not None
    assert 'refused unless the config says mode = "live"' in " ".join(live.help.split())
    paper = Path(__file__).parents[2] / "config" / "paper.toml"
    assert main([*path, "--config", str(paper), "--live"]) == 2
    assert '--live was given but the config says mode = "dry-run"' in capsys.readouterr().err
