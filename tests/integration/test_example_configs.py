"""Every config shipped in config/ passes check-config (no network needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "config").glob("*.toml"))


def test_there_are_example_configs() -> None:
    assert {p.name for p in CONFIGS} >= {"paper.toml", "binance.example.toml"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_config_is_valid(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(path)]) == 0, capsys.readouterr().err
