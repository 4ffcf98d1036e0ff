"""The simulator's market filters are the venues' real ones: each built-in row marked `capture`
equals ccxt's captured exchange data; a coin without real data is refused when a scenario names
it for a venue it trades on, never given invented filters."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.cli.main import main
from rebalance_sim.engine import InstrumentId, MarketKind
from rebalance_sim.reference import BINANCE_PERP, BINANCE_SPOT, BITGET_PERP, BITGET_SPOT
from rebalance_sim.scenario import ScenarioError
from rebalance_sim.server import build_simulator

D = Decimal
FIXTURES = Path(__file__).parents[1] / "fixtures" / "ccxt-static"
BINANCE = json.loads((FIXTURES / "markets-binance.json").read_text())
BITGET = json.loads((FIXTURES / "markets-bitget.json").read_text())
# Binance raised these minimum notionals after the capture (which shows 5 USDT).
RAISED_SINCE_CAPTURE = {"BTC": D(100), "ETH": D(20)}


def _binance_filters(symbol: str) -> dict[str, dict[str, Any]]:
    return {f["filterType"]: f for f in BINANCE[symbol]["info"]["filters"]}


def test_every_captured_binance_coin_is_built_in_and_every_capture_row_matches() -> None:
    for table, suffix in ((BINANCE_SPOT, ""), (BINANCE_PERP, ":USDT")):
        captured = {s.split("/")[0] for s in BINANCE if s.endswith(f"/USDT{suffix}")}
        assert {a for a, row in table.items() if row.source == "capture"} == captured
        for asset in captured:
            filters = _binance_filters(f"{asset}/USDT{suffix}")
            notional = filters.get("NOTIONAL") or filters["MIN_NOTIONAL"]
            real = (
                D(filters["PRICE_FILTER"]["tickSize"]),
                D(filters["LOT_SIZE"]["stepSize"]),
                D(filters["LOT_SIZE"]["minQty"]),
                D(filters["LOT_SIZE"]["maxQty"]),
                D(notional.get("minNotional") or notional["notional"]),
            )
            row = table[asset]
            ours = (row.tick, row.step, row.min_qty, row.max_qty, row.min_notional)
            if suffix and asset in RAISED_SINCE_CAPTURE:
                real = (*real[:4], RAISED_SINCE_CAPTURE[asset])
            assert ours == real, asset


def test_every_captured_bitget_coin_is_built_in_and_every_capture_row_matches() -> None:
    spot = {m["info"]["baseCoin"]: m["info"] for m in BITGET.values() if m["type"] == "spot"}
    perp = {m["info"]["baseCoin"]: m["info"] for m in BITGET.values() if m["type"] == "swap"}
    assert {a for a, row in BITGET_SPOT.items() if row.source == "capture"} == set(spot)
    assert {a for a, row in BITGET_PERP.items() if row.source == "capture"} == set(perp)
    for asset, info in spot.items():
        row = BITGET_SPOT[asset]
        assert (row.price_places, row.qty_places, row.max_qty, row.min_notional) == (
            int(info["pricePrecision"]),
            int(info["quantityPrecision"]),
            D(info["maxTradeAmount"]),
            D(info["minTradeUSDT"]),
        ), asset
    for asset, info in perp.items():
        row = BITGET_PERP[asset]
        assert info["priceEndStep"] == "1"
        assert (row.price_places, row.qty_places, row.min_qty, row.max_leverage) == (
            int(info["pricePlace"]),
            int(info["volumePlace"]),
            D(info["minTradeNum"]),
            int(info["maxLever"]),
        ), asset
        assert row.min_notional == D(info["minTradeUSDT"])


def _bitget_scenario(**markets: Any) -> dict[str, Any]:
    return {
        "assets": {"BTC": {"price": 60000.0}, "LTC": {"price": 80.0}, "LINK": {"price": 15.0}},
        "markets": markets,
        "accounts": [{"name": "bg", "venue": "bitget"}],
    }


def test_ltc_on_bitget_has_bitgets_own_places_not_invented_ones() -> None:
    sim = build_simulator(_bitget_scenario(spot=["BTC", "LTC"], perp=["BTC", "LTC"]), seed=7)
    markets = sim.engine.markets_of("bitget")
    spot = markets[InstrumentId(MarketKind.SPOT, "LTC", "USDT")].rules
    perp = markets[InstrumentId(MarketKind.PERP, "LTC", "USDT")].rules
    assert (spot.tick_size, spot.step_size, spot.min_notional) == (D("0.01"), D("0.0001"), D(1))
    assert (perp.tick_size, perp.step_size, perp.min_qty) == (D("0.01"), D("0.1"), D("0.1"))
    assert perp.max_leverage == 50


@pytest.mark.parametrize(
    ("markets", "kind"),
    [({}, "spot"), ({"spot": ["BTC"]}, "perp"), ({"spot": ["BTC"], "perp": ["LINK"]}, "perp")],
)
def test_a_named_coin_without_bitget_data_refuses_the_scenario(
    markets: dict[str, Any], kind: str
) -> None:
    with pytest.raises(ScenarioError) as refused:
        build_simulator(_bitget_scenario(**markets), seed=7)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"scenario: LINK: the simulator knows no real Bitget {kind} filters")
    assert f"markets.{kind}_overrides.LINK.tick_size" in message


def test_a_coin_unknown_to_binance_refuses_a_binance_scenario() -> None:
    scenario = {"assets": {"BTC": {"price": 60000.0}, "PEPE": {"price": 0.00001}}}
    with pytest.raises(ScenarioError, match="PEPE: the simulator knows no real Binance spot"):
        build_simulator(scenario, seed=7)


def test_a_coin_is_refused_only_on_a_venue_the_scenario_trades_on() -> None:
    binance_only = {"assets": {"BTC": {"price": 60000.0}, "LINK": {"price": 15.0}}}
    sim = build_simulator(binance_only, seed=7)
    assert InstrumentId(MarketKind.PERP, "LINK", "USDT") in sim.engine.markets
    assert InstrumentId(MarketKind.PERP, "LINK", "USDT") not in sim.engine.markets_of("bitget")


def test_given_tick_and_step_sizes_list_a_coin_the_simulator_does_not_know() -> None:
    overrides = {"LINK": {"tick_size": "0.001", "step_size": "0.01"}}
    scenario = _bitget_scenario(spot_overrides=overrides, perp_overrides=overrides)
    rules = build_simulator(scenario, seed=7).engine.markets_of("bitget")
    link = rules[InstrumentId(MarketKind.PERP, "LINK", "USDT")].rules
    assert (link.tick_size, link.step_size) == (D("0.001"), D("0.01"))


def test_the_sim_command_refuses_an_unknown_coin_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "pepe.toml"
    scenario.write_text("[assets.PEPE]\nprice = 0.00001\n")
    assert main(["sim", "--scenario", str(scenario)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("rebalance-bot: invalid configuration: scenario: PEPE:")
