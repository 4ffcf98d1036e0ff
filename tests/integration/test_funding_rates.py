"""Each perpetual sleeve's current funding rate and a year of it at the target, against the
simulator through ccxt's real classes: `plan` reads the rates the simulator serves and prices a
year at the target (a short hedge receives a positive rate); the daemon's cycles read a rate
again only after the settlement the exchange announced with it, keep it across a restart, and
the status page shows it. On Binance and on a classic Bitget account.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.app.funding_book import FundingRateBook
from bot.app.wiring import open_app
from bot.cli.main import main
from bot.config import check_live_allowed
from bot.ops.operations import Operations
from tests.integration.loop_support import SEED_SCENARIO, load, write_config

D = Decimal
RATES = {"BTC": D("0.0003"), "SOL": D("-0.0002"), "XRP": D("0.0001"), "DOGE": D("0.0001")}
SCENARIO = SEED_SCENARIO + '\n[funding]\nrates = { BTC = "0.0003", SOL = "-0.0002" }\n'
# The route of the current rate, per venue.
RATE_ROUTES = {"binance": "fapi.premiumIndex", "bitget": "bitget.mix.funding.current"}
TARGETS = {"SOL": ("altcoin-futures", D("0.05") * D("0.4")), "BTC": ("btc-hedge", D("-0.15"))}


@pytest.mark.parametrize("venue", sorted(RATE_ROUTES))
def test_plan_shows_each_perpetuals_rate_and_a_year_of_it_at_the_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], venue: str
) -> None:
    config = write_config(tmp_path, scenario=SCENARIO, venue=venue)
    assert main(["plan", "--json", "--config", str(config)]) == 0
    body = json.loads(capsys.readouterr().out)
    lines = {line["symbol"].split("/")[0]: line for line in body["funding"]}
    assert set(lines) == set(RATES) and body["funding_unread"] is None
    nav = D(body["nav"])
    for base, (sleeve, target) in TARGETS.items():
        line = lines[base]
        assert line["sleeve"] == sleeve
        assert D(line["rate"]) == RATES[base]
        assert D(line["target_notional"]) == target * nav
        assert D(line["annual_cost"]) == RATES[base] * 3 * 365 * target * nav
    assert D(lines["BTC"]["annual_cost"]) < 0  # the short hedge receives a positive rate
    assert D(lines["SOL"]["annual_cost"]) < 0  # a long receives a negative one
    assert D(lines["XRP"]["annual_cost"]) > 0  # and pays a positive one
    assert main(["plan", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "receives" in out and "pays" in out and "paid by longs and received by shorts" in out


@pytest.mark.parametrize("venue", sorted(RATE_ROUTES))
async def test_cycles_read_a_rate_once_per_settlement_and_the_status_page_shows_it(
    tmp_path: Path, venue: str
) -> None:
    config = load(write_config(tmp_path, mode="live", scenario=SCENARIO, venue=venue))
    async with open_app(config, check_live_allowed(config, cli_live=True)) as app:
        sim = app.simulator
        ops = Operations(app)
        app.cycle.observers.append(ops)
        sim.admin.reset_request_counts()
        for _ in range(12):  # an hour apart: one or two settlements crossed
            sim.admin.advance(timedelta(hours=1))
            await app.cycle.run()
        reads = sim.admin.request_counts().get(RATE_ROUTES[venue], 0)
        status = ops.status_view()
        await ops.stop()
        book = app.cycle.funding_rates
        assert isinstance(book, FundingRateBook)
        # A restart keeps the rates: nothing is read again before the next settlement.
        restarted = FundingRateBook(
            app.accounts, list(book.rates()), app.store, app.audit, app.cycle.clock
        )
        assert await restarted.refresh("restart") == 0
        assert {k: r.rate for k, r in restarted.rates().items()} == {
            k: r.rate for k, r in book.rates().items()
        }
        assert sim.admin.request_counts().get(RATE_ROUTES[venue], 0) == reads
    # Four perpetuals: read at the first cycle and after each settlement the twelve hours
    # crossed, never once per cycle.
    assert 4 <= reads <= 12 < 12 * 4
    shown = {f.symbol.split("/")[0]: f for f in status.funding}
    assert {b: f.rate for b, f in shown.items()} == RATES
    assert shown["BTC"].annual_cost_text.startswith("receives ")
    assert shown["XRP"].annual_cost_text.startswith("pays ")
    assert status.nav is not None
    assert shown["BTC"].target_notional == D("-0.15") * status.nav
    assert shown["BTC"].annual_cost == D("0.0003") * 1095 * shown["BTC"].target_notional
