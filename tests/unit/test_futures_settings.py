"""The pure parts of the start-up futures settings: ccxt's replies parsed into what the exchange
reads, and the comparison with the config that decides a refusal."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.app.futures_setup import Wanted, mismatch
from bot.core.domain import MarginMode
from bot.exchange.futures_settings import SymbolSettings, parse_binance, parse_bitget

MODES = st.none() | st.sampled_from(MarginMode)
LEVERAGES = st.none() | st.integers(1, 125)


def test_binance_symbol_config_as_ccxt_parses_its_capture() -> None:
    # ccxt's capture of fetchMarginMode (linear): its parsed margin mode, the raw row as info.
    row = {
        "symbol": "BTCUSDT",
        "marginType": "CROSSED",
        "isAutoAddMargin": False,
        "leverage": "20",
        "maxNotionalValue": "100000000",
    }
    read = parse_binance("BTC/USDT:USDT", {"info": row, "marginMode": "cross"})
    assert read == SymbolSettings("BTC/USDT:USDT", 20, MarginMode.CROSS)


def test_bitget_single_account_carries_the_position_mode() -> None:
    info = {"marginMode": "isolated", "posMode": "hedge_mode", "isolatedLongLever": 5}
    reply = {"info": info, "marginMode": "isolated", "longLeverage": 5, "shortLeverage": 5}
    assert parse_bitget("SOL/USDT:USDT", reply) == SymbolSettings(
        "SOL/USDT:USDT", 5, MarginMode.ISOLATED, hedged=True
    )
    uneven = {**reply, "shortLeverage": 4, "info": {"posMode": "one_way_mode"}}
    read = parse_bitget("SOL/USDT:USDT", uneven)
    assert (read.leverage, read.hedged) == (None, False)  # two leverages are not the one wanted


@given(LEVERAGES, MODES, LEVERAGES, MODES)
def test_a_read_back_is_refused_exactly_when_it_differs_from_what_was_asked(
    want_lev: int | None, want_mode: MarginMode | None, lev: int | None, mode: MarginMode | None
) -> None:
    wanted = Wanted("usdm", ("SOL/USDT:USDT",), want_lev, want_mode)
    problem = mismatch(wanted, SymbolSettings("SOL/USDT:USDT", lev, mode))
    differs = (want_lev is not None and lev != want_lev) or (
        want_mode is not None and mode is not want_mode
    )
    assert (problem is not None) == differs
    if problem is not None:
        assert problem.startswith("SOL/USDT:USDT reads back ")
        assert (f"wanted {want_lev})" in problem) == (want_lev is not None and lev != want_lev)
