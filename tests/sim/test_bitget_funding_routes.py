"""Bitget's current funding rate and mark-price candles on the simulator, as Bitget documents
them (ccxt's captured replies were not checked: see docs/simulator.md): the current-fund-rate row
has Bitget's fields, all strings, and ccxt's `fetch_funding_rate` reads the rate, the next
settlement and the interval from it; a mark-price candle, from either route, opens at the mark
the simulator charged a settlement at, and the bot's adapter gives each settlement that mark.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from bot.core.domain import MarketType
from bot.exchange.funding import fetch_rate_history, fetch_settlements, rates_readable
from rebalance_sim.engine import IncomeKind
from rebalance_sim.server import SimHandle
from tests.sim.conftest import Connect, Open
from tests.sim.test_bitget_fidelity import S, fields, json_type, shape

D = Decimal
HOUR_MS = 3_600_000
CURRENT_FUND_RATE = fields(
    "symbol",
    "fundingRate",
    "fundingRateInterval",
    "nextUpdate",
    "minFundingRate",
    "maxFundingRate",
)


async def test_current_fund_rate_has_bitgets_fields_and_ccxt_reads_the_next_settlement(
    sim: SimHandle, connect: Connect
) -> None:
    client = await connect("classic", "swap")
    client.enableLastJsonResponse = True
    sim.admin.advance(timedelta(hours=3))
    parsed = await client.fetch_funding_rate("BTC/USDT:USDT")
    (row,) = client.last_json_response["data"]
    assert shape(row) == CURRENT_FUND_RATE
    now = sim.admin.now_ms()
    assert parsed["fundingTimestamp"] == (now // (8 * HOUR_MS) + 1) * 8 * HOUR_MS
    assert parsed["interval"] == "8h"
    assert D(row["fundingRate"]) == D(str(parsed["fundingRate"])) != 0


async def test_a_mark_candle_opens_at_the_mark_a_settlement_was_charged_at(
    sim: SimHandle, connect: Connect, open_account: Open
) -> None:
    sim.admin.set_position("classic", "BTC", "-0.01", "59000")
    sim.admin.advance(timedelta(hours=9))  # one settlement: 08:00
    (charged,) = [r for r in sim.admin.income("classic") if r.kind is IncomeKind.FUNDING_FEE]
    client = await connect("classic", "swap")
    client.enableLastJsonResponse = True
    settled = charged.time_ms
    rate = D(str((await client.fetch_funding_rate("BTC/USDT:USDT"))["fundingRate"]))
    # The recent route (kLineType=MARK) and the history route ccxt takes for an old candle.
    request = {"symbol": "BTCUSDT", "productType": "USDT-FUTURES", "granularity": "1m"}
    window = {"startTime": settled, "endTime": settled + 60_000, "limit": 1}
    recent = await client.publicMixGetV2MixMarketCandles({**request, **window, "kLineType": "MARK"})
    history = await client.publicMixGetV2MixMarketHistoryMarkCandles({**request, **window})
    for reply in (recent, history):
        (row,) = reply["data"]
        assert [json_type(v) for v in row] == [S] * 7 and row[5:] == ["0", "0"]
        assert int(row[0]) == settled
        assert (D("0.01") * D(row[1]) * rate).quantize(D("1e-8")) == charged.amount
    account = await open_account("classic", MarketType.SWAP)
    assert rates_readable(account)
    (event,) = await fetch_settlements(account, "BTC/USDT:USDT", settled)
    assert (event.time_ms, event.mark) == (settled, D(history["data"][0][1]))


async def test_settlements_older_than_a_page_of_rate_history_are_all_read(
    sim: SimHandle, open_account: Open
) -> None:
    since = sim.admin.now_ms()
    sim.admin.advance(timedelta(days=40))  # 120 settlements: Bitget pages 100 at a time
    account = await open_account("classic", MarketType.SWAP)
    events = await fetch_rate_history(account, "BTC/USDT:USDT", since)
    expected = list(
        range(-(-since // (8 * HOUR_MS)) * 8 * HOUR_MS, sim.admin.now_ms() + 1, 8 * HOUR_MS)
    )
    assert [e.time_ms for e in events] == expected and len(expected) > 100
    assert all(e.rate != 0 and e.mark is None for e in events)  # marks: a candle read each
    assert sim.admin.request_counts().get("bitget.mix.funding.history") == 2
