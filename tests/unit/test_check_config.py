"""`check-config` catches a newcomer's mistakes offline, all at once, with what was meant, and
shows the targets the bot will really trade."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bot.cli.main import main

ROOT = Path(__file__).resolve().parents[2]

BASE = """
portfolio = "test"

[accounts.spot]
exchange = "binance"
market = "spot"

[accounts.usdm]
exchange = "binanceusdm"
market = "swap"

[[sleeves]]
name = "btc"
kind = "spot"
account = "spot"
asset = "BTC"
target = 0.6

[[sleeves]]
name = "alts"
kind = "futures"
account = "usdm"
symbol = "SOL/USDT:USDT"
target = 0.05
"""


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("REBALANCE_"):
            monkeypatch.delenv(name)


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> tuple[int, str, str]:
    path = tmp_path / "bot.toml"
    path.write_text(text, encoding="utf-8")
    code = main(["check-config", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert err.startswith("rebalance-bot: invalid configuration: ")
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("mistake", "meant"),
    [
        ('symbol = "SOLUSDT"', "did you mean SOL/USDT:USDT?"),
        ('symbol = "SOL/USDT"', "a spot symbol; a futures sleeve trades perpetuals: did you mean "
         "SOL/USDT:USDT?"),
        ('symbol = "XRP/USD:USDT"', "did you mean XRP/USDT:USDT?"),
        ('symbol = "BTC/USD:BTC"', "coin-margined (inverse)"),
        ('symbol = "sol/usdt:usdt"', "did you mean SOL/USDT:USDT?"),
    ],
)  # fmt: skip
def test_a_futures_sleeve_with_a_bad_symbol_is_refused_offline_with_what_was_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mistake: str, meant: str
) -> None:
    code, out, err = check(tmp_path, capsys, BASE.replace('symbol = "SOL/USDT:USDT"', mistake))

    assert code == 2 and out == ""
    assert "sleeves[1] (alts)" in one_line(err) and meant in err


@pytest.mark.parametrize(
    ("mistake", "meant"),
    [
        ('asset = "BTC/USDT"', 'did you mean asset = "BTC" (traded as BTC/USDT)?'),
        ('asset = "BTCUSDT"', 'did you mean asset = "BTC"'),
        ('asset = "btc"', 'did you mean asset = "BTC"?'),
    ],
)
def test_a_spot_sleeve_naming_a_symbol_instead_of_an_asset_is_refused_with_the_asset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mistake: str, meant: str
) -> None:
    code, _, err = check(tmp_path, capsys, BASE.replace('asset = "BTC"', mistake))

    assert code == 2 and "sleeves[0] (btc)" in one_line(err) and meant in err
    assert "BTC/USDT/USDT" not in err


def test_every_bad_symbol_of_a_basket_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    basket = (
        'instruments = [{ symbol = "SOLUSDT", weight = 0.5 }, '
        '{ symbol = "DOGE/USDT", weight = 0.5 }]'
    )
    code, _, err = check(tmp_path, capsys, BASE.replace('symbol = "SOL/USDT:USDT"', basket))

    assert code == 2
    assert "SOL/USDT:USDT?" in one_line(err) and "DOGE/USDT:USDT?" in err


@pytest.mark.parametrize(
    ("setting", "hint"),
    [
        ("[trigger]\nband = 5\n", "trigger.band: must be > 0 and < 1, got 5 (a fraction: 0.05 "
         "for 5 pp)"),
        ("[trigger]\nrelative_band = 25\n", "0.25 for 25 % of the target"),
    ],
)  # fmt: skip
def test_a_band_in_percent_gets_the_fraction_that_was_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: str, hint: str
) -> None:
    code, _, err = check(tmp_path, capsys, BASE + setting)

    assert code == 2 and hint in one_line(err)


def test_every_problem_is_listed_not_the_first_and_a_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        BASE.replace('symbol = "SOL/USDT:USDT"', 'symbol = "SOLUSDT"').replace(
            "target = 0.6", "target = 60"
        )
        + '[trigger]\nband = 5\ncooldwn = "1h"\n'
    )
    code, _, err = check(tmp_path, capsys, text)

    assert code == 2 and "more problem" not in one_line(err)
    assert "4 problems: (1) " in err
    for expected in (
        "sleeves[0] (btc).target: 60 is not a fraction of NAV",
        "sleeves[1] (alts): 'SOLUSDT'",
        "trigger.band: must be > 0 and < 1, got 5",
        "trigger.cooldwn: unknown setting",
    ):
        assert expected in err, expected


def test_secrets_in_the_file_name_the_environment_variable_to_use_instead(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = BASE.replace('market = "spot"', 'market = "spot"\napi_key = "k-1234"\nsecret = "s-5678"')
    text += '\n[server]\ntoken = "t-9999"\n'

    code, out, err = check(tmp_path, capsys, text)

    assert code == 2 and out == "" and "3 problems" in one_line(err)
    for variable in (
        "REBALANCE_ACCOUNTS__SPOT__API_KEY",
        "REBALANCE_ACCOUNTS__SPOT__SECRET",
        "REBALANCE_SERVER__TOKEN",
    ):
        assert f"set {variable} in the environment (or {variable}_FILE" in err
    for value in ("k-1234", "s-5678", "t-9999"):
        assert value not in err


def _sleeve_lines(out: str) -> dict[str, str]:
    block = out.split("sleeves", 1)[1].split("\nstrategy", 1)[0].split("\ntrigger", 1)[0]
    return {line.split()[0]: line for line in block.splitlines()[1:] if line.strip()}


def test_core_satellite_shows_the_targets_as_shares_of_nav_with_the_cash_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check-config", str(ROOT / "config" / "core-satellite.toml")]) == 0
    lines = _sleeve_lines(capsys.readouterr().out)

    # group weight × weight inside the group (core 0.80, satellite 0.20), as the bot trades it
    expected = {"bitcoin": "60.00%", "ethereum": "20.00%", "altcoin-futures": "5.00%",
                "btc-hedge": "-15.00%", "cash": "20.00%"}  # fmt: skip
    for name, share in expected.items():
        assert re.search(rf"\s{re.escape(share)}\s", lines[name]), lines[name]
    assert "75.00% of core 80.00%" in lines["bitcoin"]
    assert "+75.00" not in "".join(lines.values())


def test_static_targets_and_cash_match_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(ROOT / "config" / "paper.toml")]) == 0
    lines = _sleeve_lines(capsys.readouterr().out)

    assert " 60.00% " in lines["bitcoin"] and " -15.00% " in lines["btc-hedge"]
    assert " 20.00% " in lines["cash"]
