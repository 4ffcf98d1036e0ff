"""Requests a process of 50 portfolios on two venues makes, counted by the simulator: the
markets once per venue, one public ticker batch per venue per interval serving every
portfolio on it, and otherwise only each account's own reads."""

from __future__ import annotations

import math
import time
from pathlib import Path

from tests.integration.fleet_support import run, write_fleet

PORTFOLIOS = 50
CYCLES = 3
INTERVAL = 1.0  # the fleet config's
MARKETS = {"spot.exchangeInfo", "bitget.spot.symbols", "bitget.margin.currencies"}


def _scenario_account(name: str, venue: str) -> str:
    venue_line = f'venue = "{venue}"\n' if venue != "binance" else ""
    # Already at its target (half BTC at 50,000): every cycle is a quiet one.
    return (
        f'[[accounts]]\nname = "{name}"\n{venue_line}spot = {{ USDT = "10000", BTC = "0.2" }}\n\n'
    )


def _portfolio(name: str, exchange: str) -> str:
    return (
        f'\n[[portfolios]]\nportfolio = "{name}"\n'
        f'[portfolios.accounts.spot]\nexchange = "{exchange}"\nmarket = "spot"\n'
        f'simulator = true\nsim_account = "{name}"\nrequests_per_second = 1000\n'
        "pace_by_weight = false\n"
        '[[portfolios.sleeves]]\nname = "btc"\nkind = "spot"\naccount = "spot"\nasset = "BTC"\n'
        "target = 0.5\n"
    )


async def test_fifty_portfolios_make_one_ticker_batch_per_venue_per_interval(
    tmp_path: Path,
) -> None:
    names = [(f"p{i:02d}", "binance" if i % 2 else "bitget") for i in range(PORTFOLIOS)]
    path = write_fleet(
        tmp_path,
        "".join(_scenario_account(n, v) for n, v in names),
        "".join(_portfolio(n, v) for n, v in names),
    )
    started = time.monotonic()
    fleet = await run(path, cycles=CYCLES)
    intervals = math.ceil((time.monotonic() - started) / INTERVAL)
    assert all(slot.cycles == CYCLES for slot in fleet.slots.values())
    admin = fleet.process.simulator.handle.admin
    # Public requests: each venue's markets once, then its ticker batches, one per interval.
    public = admin.request_counts(None)
    assert public["spot.exchangeInfo"] == 1 and public["bitget.spot.symbols"] == 1
    for route in ("spot.ticker.24hr", "bitget.spot.tickers"):
        assert 1 <= public[route] <= intervals, (route, public[route], intervals)
    assert set(public) <= {*MARKETS, "spot.ticker.24hr", "bitget.spot.tickers"}, public
    # Each account: its key checked and its orders reconciled at start, then one balance
    # read per cycle, its Earn holdings read once (flexible and fixed savings on Bitget: two
    # requests), and never a ticker or a market list of its own.
    for name, venue in names:
        own = admin.request_counts(name)
        balance = "spot.account" if venue == "binance" else "bitget.spot.assets"
        assert own.pop(balance) == CYCLES, (name, own)
        if venue == "bitget":
            assert own.pop("bitget.earn.savings.assets") == 2, (name, own)
        assert all(count == 1 for count in own.values()), (name, own)
        assert not any("ticker" in route or route in MARKETS for route in own), (name, own)
