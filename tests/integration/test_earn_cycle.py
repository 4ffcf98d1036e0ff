"""Holdings outside the trading wallets through a whole cycle against the simulator.

A BTC sleeve held half in Simple Earn (Binance) or flexible savings (Bitget): the live cycle
counts it in NAV and in the sleeve's weight, plans no BTC buy, and leaves the Earn position as
it was — read from the simulator's ledger. The same portfolio with `include_earn = false` buys
BTC (the difference the feature makes). A dry-run carries the Earn holding on its paper ledger.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.app.wiring import open_app
from bot.cli.main import main
from bot.core.domain import Mode, OutsideWallet
from bot.exchange.earn import read_outside
from rebalance_sim.admin import Wallet
from rebalance_sim.faults import FaultKind, FaultRule
from tests.integration.loop_support import SEED_SCENARIO, SEED_SLEEVES, load, write_config

D = Decimal
# The seed portfolio at NAV 100,000 with 1.2 BTC (60 %, on target) of which 0.6 sits in Earn and
# only 5,000 USDT of spot cash; the futures sleeves are out of band, so the cycle trades.
EARN_SCENARIO = SEED_SCENARIO.replace(
    'spot = { USDT = "15000", BTC = "1", ETH = "10" }',
    'spot = { USDT = "5000", BTC = "0.6", ETH = "10" }\nearn_flexible = { BTC = "0.6" }',
)
ASSETS = ("BTC", "ETH", "SOL", "XRP", "DOGE")


def _config(
    tmp_path: Path, *, mode: str, venue: str, include_earn: bool = True, ignore: str = ""
) -> Path:
    path = write_config(
        tmp_path,
        mode=mode,
        scenario=EARN_SCENARIO,
        sleeves=SEED_SLEEVES,
        venue=venue,
        trigger='kind = "band"\nband = 0.03\ncooldown = "0s"',
    )
    path.write_text(
        path.read_text()
        .replace('to = "target"', 'to = "band-edge"')
        .replace(
            'market = "spot"\nsimulator = true\n',
            f'market = "spot"\nsimulator = true\ninclude_earn = {str(include_earn).lower()}\n',
        )
        .replace('interval = "1s"\n', f'interval = "1s"\nignore_assets = [{ignore}]\n')
    )
    return path


def _records(data_dir: Path, event: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted(data_dir.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("event") == event:
                found.append(record)
    return found


def _ledger_nav(admin: Any) -> Decimal:
    """NAV from the simulator's own ledger: spot, Earn and the futures wallet's equity."""
    prices = {a: admin.price(a) for a in ASSETS}
    view = admin.account("main")
    held: dict[str, Decimal] = {a: b.total for a, b in view.spot.items()}
    for wallet in admin.outside_wallets("main").values():
        for asset, amount in wallet.items():
            held[asset] = held.get(asset, D(0)) + amount
    nav = sum((v * (D(1) if a == "USDT" else prices[a]) for a, v in held.items()), D(0))
    wallet_balance = D(0) if view.unified else view.futures.wallet_balance
    return nav + wallet_balance + view.futures.unrealized_pnl


def _btc_spot_buys(admin: Any) -> list[Any]:
    return [
        o
        for o in admin.orders("main")
        if o.instrument.kind.value == "spot" and o.instrument.base == "BTC" and o.side == "buy"
    ]


@pytest.mark.parametrize("venue", ["binance", "bitget"])
async def test_a_sleeve_held_half_in_earn_counts_whole_and_no_btc_is_bought(
    tmp_path: Path, venue: str
) -> None:
    config = load(_config(tmp_path, mode="live", venue=venue))
    async with open_app(config, Mode.LIVE) as app:
        admin = app.simulator.admin
        nav = _ledger_nav(admin)
        result = await app.cycle.run()
        assert result.outcome == "traded", result.reason  # the futures sleeves were out of band
        assert result.drift is not None
        assert result.drift.nav == pytest.approx(nav, rel=D("0.002"))
        bitcoin = result.drift.by_name()["bitcoin"]
        assert bitcoin.current == pytest.approx(D("0.60"), abs=D("0.005"))
        assert _btc_spot_buys(admin) == []
        assert [o for o in admin.orders("main") if o.instrument.kind.value == "perp"]
        assert admin.outside_wallets("main") == {"earn-flexible": {"BTC": D("0.6")}}
    snapshot = _records(tmp_path / "data", "snapshot")[0]
    btc = snapshot["accounts"]["spot"]["holdings"]["BTC"]
    assert D(btc["free"]) == D("0.6") and D(btc["total"]) == D("1.2")
    assert {k: D(v) for k, v in btc["outside"].items()} == {"earn-flexible": D("0.6")}
    # Binance's LDBTC mirror of the flexible position is the same coins: not counted twice.
    assert "LDBTC" not in snapshot["accounts"]["spot"]["holdings"]
    assert not [issue for issue in snapshot["issues"] if "LDBTC" in issue]


async def test_without_include_earn_the_same_sleeve_looks_underweight_and_is_bought(
    tmp_path: Path,
) -> None:
    # Binance mirrors the flexible position as an LDBTC spot balance without a market: left
    # out of NAV by ignore_assets, as a user without include_earn has to.
    path = _config(tmp_path, mode="live", venue="binance", include_earn=False, ignore='"LDBTC"')
    config = load(path)
    async with open_app(config, Mode.LIVE) as app:
        admin = app.simulator.admin
        result = await app.cycle.run()
        assert result.drift is not None
        assert result.drift.nav == pytest.approx(D("70000"), rel=D("0.002"))  # 30,000 left out
        assert result.drift.by_name()["bitcoin"].current < D("0.45")
        assert _btc_spot_buys(admin), admin.orders("main")
        counts = admin.request_counts("main")
        assert not any(route.startswith("sapi.earn") for route in counts), counts


async def test_a_dry_run_carries_the_earn_holding_on_its_paper_ledger(tmp_path: Path) -> None:
    config = load(_config(tmp_path, mode="dry-run", venue="binance"))
    async with open_app(config, Mode.DRY_RUN) as app:
        admin = app.simulator.admin
        result = await app.cycle.run()
        assert result.outcome == "traded", result.reason
        assert admin.orders() == []
        ledger = app.executor.ledger.to_dict()["accounts"]["spot"]
        outside = {a: {w: D(v) for w, v in ws.items()} for a, ws in ledger["outside"].items()}
        assert outside == {"BTC": {"earn-flexible": D("0.6")}}
        assert D(ledger["holdings"]["BTC"]) == D("0.6")  # no paper BTC bought
        fills = _records(tmp_path / "data", "paper_fill")
        assert fills and not [f for f in fills if f.get("symbol") == "BTC/USDT"]
        second = await app.cycle.run()
        assert second.drift is not None
        assert second.drift.by_name()["bitcoin"].current == pytest.approx(D("0.60"), abs=D("0.01"))


async def test_earn_is_read_on_the_first_cycle_then_once_per_refresh(tmp_path: Path) -> None:
    config = load(_config(tmp_path, mode="live", venue="binance"))
    async with open_app(config, Mode.LIVE) as app:
        admin = app.simulator.admin

        def earn_reads() -> list[int]:
            counts = admin.request_counts("main")
            routes = ("sapi.asset.fundingAsset", "sapi.earn.flexible", "sapi.earn.locked")
            return [counts.get(route, 0) for route in routes]

        await app.cycle.run()
        assert earn_reads() == [1, 1, 1]
        for _ in range(3):  # quiet cycles within earn_refresh (15 min): no Earn request
            admin.advance(timedelta(minutes=4))
            await app.cycle.run()
        assert earn_reads() == [1, 1, 1]
        admin.fund("main", "BTC", "0.2", wallet=Wallet.EARN_LOCKED)
        admin.advance(timedelta(minutes=4))
        result = await app.cycle.run()
        assert earn_reads() == [2, 2, 2]
        snapshot = _records(tmp_path / "data", "snapshot")[-1]
        btc = snapshot["accounts"]["spot"]["holdings"]["BTC"]["outside"]
        assert {k: D(v) for k, v in btc.items()} == {
            "earn-flexible": D("0.6"),
            "earn-locked": D("0.2"),
        }, result.reason


@pytest.mark.parametrize("venue", ["binance", "bitget"])
async def test_every_page_of_earn_positions_is_read(tmp_path: Path, venue: str) -> None:
    config = load(_config(tmp_path, mode="live", venue=venue))
    async with open_app(config, Mode.LIVE) as app:
        admin = app.simulator.admin
        for _ in range(150):
            admin.fund("main", "ETH", "0.01", wallet=Wallet.EARN_LOCKED)
        admin.reset_request_counts()
        held = await read_outside(app.accounts["spot"])
        assert held["ETH"] == {OutsideWallet.EARN_LOCKED: D("1.50")}
        assert held["BTC"] == {OutsideWallet.EARN_FLEXIBLE: D("0.6")}
        counts = admin.request_counts("main")
        route = "sapi.earn.locked" if venue == "binance" else "bitget.earn.savings.assets"
        assert counts[route] == (2 if venue == "binance" else 3)  # Bitget: 1 flexible + 2 fixed


def test_plan_lists_the_holdings_outside_the_trading_wallets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, mode="live", venue="binance")
    assert main(["plan", "--config", str(path), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [
        (o["account"], o["asset"], o["wallet"], D(o["amount"])) for o in body["outside_wallets"]
    ] == [("spot", "BTC", "earn-flexible", D("0.6"))]
    bitcoin = next(row for row in body["rows"] if row["sleeve"] == "bitcoin")
    assert D(bitcoin["current"]) == pytest.approx(D("0.60"), abs=D("0.005"))
    assert bitcoin["action"] == "no action"
    assert main(["plan", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        "outside the trading wallet (counted, never traded): spot 0.6 BTC in earn-flexible" in out
    )


async def test_an_overweight_sleeve_mostly_in_earn_sells_only_the_spot_wallet(
    tmp_path: Path,
) -> None:
    # 2.1 BTC (72 % of NAV 145,000), of which only 0.1 is in the spot wallet.
    scenario = EARN_SCENARIO.replace(
        'spot = { USDT = "5000", BTC = "0.6", ETH = "10" }\nearn_flexible = { BTC = "0.6" }',
        'spot = { USDT = "5000", BTC = "0.1", ETH = "10" }\nearn_locked = { BTC = "2.0" }',
    )
    path = _config(tmp_path, mode="live", venue="binance")
    (tmp_path / "scenario.toml").write_text(scenario, encoding="utf-8")
    async with open_app(load(path), Mode.LIVE) as app:
        admin = app.simulator.admin
        result = await app.cycle.run()
        assert result.outcome == "traded", result.reason
        btc = [o for o in admin.orders("main") if o.instrument.kind.value == "spot"]
        assert [(o.side, o.filled) for o in btc if o.instrument.base == "BTC"] == [
            ("sell", D("0.1"))
        ]
        assert admin.account("main").spot["BTC"].total == 0
        assert admin.outside_wallets("main") == {"earn-locked": {"BTC": D("2.0")}}
    plan = _records(tmp_path / "data", "plan")[0]
    assert any(
        "cut to the free 0.1" in note and "in earn-locked, which the bot never trades" in note
        for note in plan["notes"]
    ), plan["notes"]


async def test_an_earn_reading_that_fails_skips_the_cycle_and_is_tried_again(
    tmp_path: Path,
) -> None:
    """Without the Earn figures the sleeve would look underweight: nothing is planned on that
    picture; the next cycle reads them again."""
    config = load(_config(tmp_path, mode="live", venue="binance"))
    async with open_app(config, Mode.LIVE) as app:
        admin = app.simulator.admin
        admin.set_faults([FaultRule(FaultKind.HTTP_503, "sapi.earn.flexible", probability=1.0)])
        result = await app.cycle.run()
        assert result.outcome == "skipped", result.reason
        assert admin.orders("main") == []
        admin.clear_faults()
        result = await app.cycle.run()
        assert result.outcome == "traded", result.reason
        assert _btc_spot_buys(admin) == []
