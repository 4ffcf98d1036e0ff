"""Scenarios: defaults, the shipped files, realistic filters, one-line errors naming the field."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from bot.exchange.local import local_api_urls as bot_urls
from rebalance_sim.client import simulator_urls as sim_urls
from rebalance_sim.engine import InstrumentId, MarketKind
from rebalance_sim.errors import SimConfigError
from rebalance_sim.scenario import ScenarioError, derived_filters, load_scenario
from rebalance_sim.server import build_simulator

ROOT = Path(__file__).parents[2]
D = Decimal


@pytest.mark.parametrize("name", ["default", "volatile", "regimes"])
def test_the_shipped_scenarios_load_and_build(name: str) -> None:
    sim = build_simulator(ROOT / "config" / "sim" / f"{name}.toml", seed=7, log_requests=False)
    assert sim.engine.markets
    assert "main" in sim.admin.accounts()
    reader = sim.admin.credentials("main", read_only=True)
    assert sim.admin.credentials("main").api_key != reader.api_key


def test_the_regimes_scenario_switches_regimes() -> None:
    sim = build_simulator(ROOT / "config" / "sim" / "regimes.toml", seed=7, log_requests=False)
    names = {regime.name for regime in sim.prices.spec.regimes}
    assert names == {"bull", "bear", "sideways"}
    assert len(sim.prices.spec.regimes) > 5


def test_an_empty_scenario_is_a_realistic_binance_like_market() -> None:
    sim = build_simulator(None, seed=7, log_requests=False)
    markets = sim.engine.markets
    assets = {"BTC", "ETH", "SOL", "BNB", "XRP", "DOGE", "ADA", "LINK", "AVAX", "DOT", "LTC"}
    assert {i.base for i in markets if i.kind is MarketKind.SPOT} == assets
    assert {i.base for i in markets if i.kind is MarketKind.PERP} == assets
    btc = markets[InstrumentId(MarketKind.SPOT, "BTC", "USDT")].rules
    assert (btc.tick_size, btc.step_size, btc.min_qty, btc.min_notional) == (
        D("0.01"),
        D("0.00001"),
        D("0.00001"),
        D("5"),
    )
    perp = markets[InstrumentId(MarketKind.PERP, "BTC", "USDT")].rules
    assert (perp.tick_size, perp.step_size, perp.min_notional, perp.max_leverage) == (
        D("0.10"),
        D("0.001"),
        D("100"),
        125,
    )
    account = sim.admin.account("main")
    assert account.spot["USDT"].free == D("10000")
    assert account.futures.wallet_balance == D("5000")


@pytest.mark.parametrize("count", [3, 30, 100])
def test_synthetic_assets_make_large_portfolios(count: int) -> None:
    sim = build_simulator({"markets": {"synthetic": count}}, seed=7, log_requests=False)
    synthetic = sorted({i.base for i in sim.engine.markets if i.base.startswith("ALT")})
    assert synthetic == [f"ALT{n:03d}" for n in range(1, count + 1)]
    for base in synthetic:
        rules = sim.engine.markets[InstrumentId(MarketKind.SPOT, base, "USDT")].rules
        price = sim.engine.mid(InstrumentId(MarketKind.SPOT, base, "USDT"))
        assert D("0.001") <= rules.step_size * price <= D("1")
        assert price / rules.tick_size >= 1000


def test_derived_filters_scale_with_the_price() -> None:
    assert derived_filters(0.0123, perp=False)[:2] == ("0.000001", "1")
    assert derived_filters(45.0, perp=False)[:2] == ("0.001", "0.001")


def test_keys_are_derived_from_the_seed_unless_given() -> None:
    first = build_simulator(None, seed=1, log_requests=False).admin.credentials("main")
    again = build_simulator(None, seed=1, log_requests=False).admin.credentials("main")
    other = build_simulator(None, seed=2, log_requests=False).admin.credentials("main")
    assert first.api_key == again.api_key != other.api_key
    given = build_simulator(
        {"accounts": [{"name": "a", "api_key": "k" * 20, "api_secret": "s" * 20}]},
        log_requests=False,
    ).admin.credentials("a")
    assert (given.api_key, given.secret.get_secret_value()) == ("k" * 20, "s" * 20)


def test_initial_positions_and_leverage_are_put_in_place() -> None:
    sim = build_simulator(
        {
            "accounts": [
                {
                    "name": "hedged",
                    "futures_wallet": "1000",
                    "leverage": {"ETH": 3},
                    "positions": [{"asset": "BTC", "amount": "-0.02", "entry_price": "61000"}],
                }
            ]
        },
        log_requests=False,
    )
    (position,) = sim.admin.account("hedged").futures.positions
    assert (position.amount, position.entry_price, position.leverage) == (
        D("-0.02"),
        D("61000"),
        20,
    )
    assert sim.engine.leverage_of("hedged", InstrumentId(MarketKind.PERP, "ETH", "USDT")) == 3


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"clock": {"mode": "fast"}}, "clock.mode"),
        ({"clock": {"step": "7 parsecs"}}, "clock.step"),
        ({"book": {"spread_bps": -1}}, "book.spread_bps"),
        ({"accounts": [{"name": "a", "spot": {"BTC": "-1"}}]}, "accounts.0.spot"),
        ({"accounts": [{"name": "a", "api_key": "k" * 20}]}, "accounts.0"),
        ({"faults": {"rules": [{"kind": "http_503"}]}}, "faults.rules.0"),
        ({"faults": {"rules": [{"kind": "meteor", "next": 1}]}}, "faults.rules.0.kind"),
        ({"markets": {"spot": ["NOPE"]}}, "markets.spot names unknown assets"),
        ({"assets": {"BTC": {"price": 0}}}, "assets.BTC.price"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_an_invalid_scenario_is_a_one_line_error_naming_the_field(
    data: dict[str, object], field: str
) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario(data)
    message = str(err.value)
    assert "\n" not in message
    assert field in message
    assert isinstance(err.value, SimConfigError)  # the bot's door turns it into ConfigError


def test_a_bad_file_is_reported_with_its_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[clock\n")
    with pytest.raises(ScenarioError, match=r"broken\.toml: not valid TOML"):
        load_scenario(broken)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.toml")


def test_an_inconsistent_price_setup_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError, match="correlation"):
        build_simulator({"correlation": [[1.0, 0.5], [0.5, 1.0]]}, log_requests=False)


def test_an_initial_position_in_an_unknown_market_names_the_account() -> None:
    with pytest.raises(ScenarioError, match=r"accounts\.0"):
        build_simulator(
            {
                "accounts": [
                    {
                        "name": "a",
                        "positions": [{"asset": "NOPE", "amount": "1", "entry_price": "1"}],
                    }
                ]
            },
            log_requests=False,
        )


def test_replay_files_are_named_relative_to_the_scenario(tmp_path: Path) -> None:
    replay = ROOT / "tests" / "fixtures" / "replay" / "btcusdt_1h_2024-01-01.csv"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "btc.csv").write_text(replay.read_text())
    scenario = tmp_path / "replay.toml"
    scenario.write_text(
        '[clock]\nmode = "manual"\nstart = 2024-01-01T05:00:00Z\nstep = "1h"\n'
        "[assets.BTC]\nprice = 42000.0\n"
        '[replay]\nBTC = "data/btc.csv"\n'
    )
    sim = build_simulator(scenario, log_requests=False)
    quote = sim.engine.quote(InstrumentId(MarketKind.SPOT, "BTC", "USDT"))
    assert quote.last == D("42239.57")  # the close of the 05:00 candle in the file


def test_a_replay_that_starts_after_the_clock_is_refused() -> None:
    replay = ROOT / "tests" / "fixtures" / "replay" / "btcusdt_1h_2024-01-01.csv"
    with pytest.raises(ScenarioError, match=r"replay\.BTC"):
        build_simulator(
            {
                "clock": {"start": "2023-12-31T00:00:00Z", "step": "1h"},
                "assets": {"BTC": {"price": 42000.0}},
                "replay": {"BTC": str(replay)},
            }
        )


def test_the_clock_can_start_now() -> None:
    before = int(time.time() * 1000)
    start = load_scenario({"clock": {"start": "now"}}).clock.start
    after = int(time.time() * 1000)
    # To the millisecond: a bot on the wall clock must not see the exchange's quotes as old.
    assert before <= start <= after


def test_the_bot_and_the_simulator_map_ccxt_to_the_same_routes() -> None:
    for exchange_id in ("binance", "binanceusdm", "bitget"):
        assert bot_urls(exchange_id, "http://127.0.0.1:1") == sim_urls(
            exchange_id, "http://127.0.0.1:1"
        )
