"""The loop end to end against the simulator, through ccxt's real Binance classes.

What really traded is read from the simulator's ledger, never from the bot's own beliefs.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.app.wiring import open_app
from bot.audit.writer import read_records, verify
from bot.cli.main import main
from bot.config import check_live_allowed
from bot.core.domain import IntentState, Mode
from rebalance_sim.faults import FaultKind, FaultRule
from tests.integration.loop_support import SEED_SCENARIO, ledger_weights, load, write_config

D = Decimal
TARGETS = {"BTC": D("0.60"), "ETH": D("0.20")}
# The same suites on each venue's dialect, through ccxt's unmodified classes: Binance, a
# classic Bitget account (v2 API) and a unified one (UTA, v3 API: one wallet behind the spot
# and the swap account, counted once).
VENUES = ["binance", "bitget", "bitget-uta"]


def _records(data_dir: Path, event: str | None = None) -> list[dict]:
    found = [r.record for r in read_records(data_dir / "audit")]
    return [r for r in found if event is None or r["event"] == event]


@pytest.mark.parametrize("venue", VENUES)
def test_seed_example_plan_gives_the_seed_actions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], venue: str
) -> None:
    path = write_config(tmp_path, venue=venue)
    assert main(["plan", "--config", str(path), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert D(body["nav"]) == pytest.approx(D(100000), rel=D("0.002"))
    actions = {row["sleeve"]: row["action"] for row in body["rows"]}
    assert actions == {
        "bitcoin": "buy BTC",
        "ethereum": "no action",
        "altcoin-futures": "reduce futures positions",
        "btc-hedge": "close some hedging contracts",
    }
    legs = {leg["symbol"]: leg for leg in body["legs"]}
    assert set(legs) == {
        "BTC/USDT",
        "SOL/USDT:USDT",
        "XRP/USDT:USDT",
        "DOGE/USDT:USDT",
        "BTC/USDT:USDT",
    }
    # The seed's numbers: buy ~0.2 BTC (50 % → 60 %), halve the alt basket, hedge −0.4 → −0.3.
    assert D(legs["BTC/USDT"]["amount"]) == pytest.approx(D("0.2"), rel=D("0.01"))
    assert legs["BTC/USDT"]["side"] == "buy" and not legs["BTC/USDT"]["reduce_only"]
    for symbol, amount in (("SOL", "20"), ("XRP", "3000"), ("DOGE", "15000")):
        leg = legs[f"{symbol}/USDT:USDT"]
        assert leg["side"] == "sell" and leg["reduce_only"]
        assert D(leg["amount"]) == pytest.approx(D(amount), rel=D("0.01"))
    hedge = legs["BTC/USDT:USDT"]
    assert hedge["side"] == "buy" and hedge["reduce_only"]
    assert D(hedge["amount"]) == pytest.approx(D("0.1"), rel=D("0.02"))
    # Reductions are sent before the buy that they help fund.
    order = [leg["symbol"] for leg in body["legs"]]
    assert order.index("BTC/USDT") == len(order) - 1


@pytest.mark.parametrize("venue", VENUES)
async def test_live_cycle_rebalances_into_band_on_the_ledger(tmp_path: Path, venue: str) -> None:
    config = load(write_config(tmp_path, mode="live", venue=venue))
    mode = check_live_allowed(config, cli_live=True)
    async with open_app(config, mode) as app:
        sim = app.simulator
        result = await app.cycle.run()
        assert result.outcome == "traded", result.reason
        prices = {a: sim.admin.price(a) for a in ("BTC", "ETH", "SOL", "XRP", "DOGE")}
        ledger = ledger_weights(sim, "main", prices)
        nav = ledger["nav"]
        weights = {
            "bitcoin": ledger["values"]["spot:BTC"] / nav,
            "ethereum": ledger["values"]["spot:ETH"] / nav,
            "altcoin-futures": sum(
                (ledger["values"].get(f"perp:{b}", D(0)) for b in ("SOL", "XRP", "DOGE")), D(0)
            )
            / nav,
            "btc-hedge": ledger["values"]["perp:BTC"] / nav,
        }
        targets = {
            "bitcoin": D("0.60"),
            "ethereum": D("0.20"),
            "altcoin-futures": D("0.05"),
            "btc-hedge": D("-0.15"),
        }
        for sleeve, target in targets.items():
            assert abs(weights[sleeve] - target) <= D("0.05"), (sleeve, weights[sleeve])
            # to target: within fees and one lot of the target, far inside the band
            assert abs(weights[sleeve] - target) <= D("0.002"), (sleeve, weights[sleeve])
        # Minimum turnover to target: |Δ| of every sleeve, in quote currency.
        fills = sim.admin.fills("main")
        traded = sum((f.quote_amount for f in fills), D(0))
        assert traded == pytest.approx(D(20000), rel=D("0.01"))
        # No duplicate: one order per client order id, every one ours and filled.
        orders = sim.admin.orders("main")
        ids = [o.client_id for o in orders]
        assert len(ids) == len(set(ids)) == 5
        assert all(i.state is IntentState.FILLED for i in app.store.all_intents())
    count, problem = verify(tmp_path / "data" / "audit")
    assert problem is None and count > 0
    events = [r["event"] for r in _records(tmp_path / "data")]
    for needed in ("snapshot", "drift", "trigger", "plan", "risk_verdict", "order_intent"):
        assert needed in events
    assert events.count("order_filled") == 5
    assert "post_trade_drift" in events


VOLATILE = SEED_SCENARIO.replace("vol = 0.55", "vol = 1.6").replace("vol = 0.70", "vol = 1.8")


@pytest.mark.parametrize("venue", VENUES)
async def test_dry_run_fifty_cycles_sends_no_order_and_the_paper_ledger_tracks_prices(
    tmp_path: Path, venue: str
) -> None:
    config = load(
        write_config(
            tmp_path, scenario=VOLATILE, trigger='band = 0.02\ncooldown = "0s"', venue=venue
        )
    )
    async with open_app(config, Mode.DRY_RUN) as app:
        sim = app.simulator
        outcomes = []
        for _ in range(50):
            sim.admin.advance(timedelta(hours=6))
            result = await app.cycle.run()
            outcomes.append(result.outcome)
        assert sim.admin.orders() == []
        routes = sim.admin.request_counts()
        assert not any("order" in route.lower() for route in routes), routes
        assert "traded" in outcomes  # the volatile path did drift out of band
        # The paper ledger, valued at the simulator's prices, is the NAV the bot saw.
        ledger = app.executor.ledger.to_dict()
        prices = {a: sim.admin.price(a) for a in ("BTC", "ETH", "SOL", "XRP", "DOGE")}
        spot = ledger["accounts"]["spot"]["holdings"]
        nav = sum((D(v) * (D(1) if a == "USDT" else prices[a]) for a, v in spot.items()), D(0))
        futures = ledger["accounts"]["usdm"]
        nav += D(futures["wallet"])
        for symbol, position in futures["positions"].items():
            base = symbol.split("/")[0]
            nav += D(position["contracts"]) * (prices[base] - D(position["entry_price"]))
        last_drift = _records(tmp_path / "data", "drift")[-1]
        assert D(last_drift["nav"]) == pytest.approx(nav, rel=D("0.003"))
        fills = _records(tmp_path / "data", "paper_fill")
        assert fills and all(r["dry_run"] is True for r in fills)
        assert len(app.store.paper_fills()) == len(fills)


def _many_sleeves(count: int) -> tuple[str, str]:
    assets = [f"ALT{i:03d}" for i in range(1, count + 1)]
    scenario = SEED_SCENARIO.replace('quote = "USDT"', f'quote = "USDT"\nsynthetic = {count}')
    # Hold the synthetic assets as USDT-worth in cash: a huge band means nothing trades.
    sleeves = "\n".join(
        f'[[sleeves]]\nname = "s{a.lower()}"\nkind = "spot"\naccount = "spot"\nasset = "{a}"\n'
        f"target = 0.01\nband = 0.5\n"
        for a in assets
    )
    return scenario, sleeves


async def test_a_quiet_cycle_makes_the_same_few_requests_for_3_and_30_sleeves(
    tmp_path: Path,
) -> None:
    counts = {}
    for count in (3, 30):
        scenario, sleeves = _many_sleeves(count)
        where = tmp_path / str(count)
        where.mkdir()
        config = load(write_config(where, mode="live", scenario=scenario, sleeves=sleeves))
        async with open_app(config, Mode.LIVE) as app:
            # The first cycle of a process also reads open orders (per symbol) to reconcile.
            assert (await app.cycle.run()).outcome == "no-trade"
            app.simulator.admin.reset_request_counts()
            result = await app.cycle.run()
            assert result.outcome == "no-trade", result.reason
            counts[count] = sum(app.simulator.admin.request_counts().values())
    assert counts[3] == counts[30]
    # spot: balance + tickers; futures: balance, positions, tickers, premium index (marks)
    assert counts[3] <= 6, counts


@pytest.mark.parametrize("venue", VENUES)
async def test_a_lost_order_reply_is_resolved_by_client_id_without_a_duplicate(
    tmp_path: Path, venue: str
) -> None:
    config = load(
        write_config(
            tmp_path, mode="live", extra='[execution]\nlookup_window = "3s"\n', venue=venue
        )
    )
    async with open_app(config, Mode.LIVE) as app:
        sim = app.simulator
        # A unified Bitget account places every order through one route.
        route = "*uta.order.post" if venue == "bitget-uta" else "*spot.order.post"
        sim.admin.add_fault(FaultRule(FaultKind.LOST_RESPONSE, route, next=1))
        result = await app.cycle.run()
        assert result.outcome == "traded", result.reason
        orders = sim.admin.orders("main")
        ids = [o.client_id for o in orders]
        assert len(ids) == len(set(ids))
        spot_orders = [o for o in orders if o.instrument.kind.value == "spot"]
        assert len(spot_orders) == 1
        intent = app.store.get_intent(spot_orders[0].client_id)
        assert intent is not None and intent.state is IntentState.FILLED
    lookups = _records(tmp_path / "data", "order_lookup")
    assert any(r["result"] == "found" for r in lookups)
