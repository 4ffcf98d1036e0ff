"""Margin watch in the cycle, against the simulator through ccxt's real classes: the bot reads
each position's liquidation price and maintenance margin as the exchange reports them; an
account closer to liquidation than `risk.min_liquidation_distance` gets no increase, and with
collateral management a cycle without trades tops its futures wallet up from the spot wallet.
Figures come from the simulator's ledger.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.app.wiring import open_app
from bot.audit.writer import read_records
from bot.config import check_live_allowed, load_config
from bot.ops.operations import Operations
from rebalance_sim.engine import TransferKind
from tests.integration.loop_support import scenario_toml, sleeves_toml, write_config

D = Decimal

# NAV about 102,000: 59 % BTC, 20 % ETH, 20 % USDT on spot; a −15 % BTC hedge held on a futures
# wallet of only 2,000 USDT: it is about 13 % from liquidation.
SCENARIO = scenario_toml(
    {"BTC": ("50000.0", "0.02"), "ETH": ("2000.0", "0.02")},
    spot={"USDT": "20000", "BTC": "1.2", "ETH": "10"},
    futures_wallet="2000",
    positions=[("BTC", "-0.3", "50000")],
    correlation=None,
)

RISK = """
[risk]
max_leverage = 20
{watch}
"""

COLLATERAL = """
[collateral]
enabled = true
leverage = 3
min_liquidation_distance = 0.5

[[collateral.venues]]
spot = "spot"
futures = "usdm"
"""


async def _cycle(
    tmp_path: Path,
    *,
    hedge: str,
    watch: bool,
    collateral: bool,
    venue: str = "binance",
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    risk = RISK.format(watch="min_liquidation_distance = 0.3" if watch else "")
    extra = risk + (COLLATERAL if collateral else "")
    path = write_config(
        tmp_path,
        mode="live",
        scenario=SCENARIO,
        sleeves=sleeves_toml(altcoins=False, hedge=hedge),
        extra=extra,
        venue=venue,
    )
    config = load_config(path, env=env or {})
    async with open_app(config, check_live_allowed(config, cli_live=True)) as app:
        sim = app.simulator
        ops = Operations(app)
        app.cycle.observers.append(ops)
        result = await app.cycle.run()
        await ops.stop()
        [hedge_view] = [p for p in sim.admin.account("main").futures.positions if p.amount]
        return {
            "result": result,
            "transfers": sim.admin.transfers("main"),
            "perp_orders": [
                o for o in sim.admin.orders("main") if o.instrument.kind.value == "perp"
            ],
            "distance": abs(hedge_view.liquidation_price - hedge_view.mark_price)
            / hedge_view.mark_price,
            "audit": [r.record for r in read_records(tmp_path / "data" / "audit")],
        }


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A notification endpoint on 127.0.0.1 (apprise's json:// posts one JSON per message)."""
    received: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append(json.loads(await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"json://127.0.0.1:{runner.addresses[0][1]}/hook", received
    await runner.cleanup()


@pytest.mark.parametrize("venue", ["binance", "bitget"])
async def test_an_account_near_liquidation_gets_no_increase(
    tmp_path: Path, venue: str, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    for name in ("watched", "unwatched"):
        (tmp_path / name).mkdir()
    url, received = webhook
    env = {"REBALANCE_NOTIFICATIONS__URLS": json.dumps([url])}
    # The hedge's target is 10 pp beyond its weight: the plan sells more BTC perpetual.
    watched = await _cycle(
        tmp_path / "watched", hedge="-0.25", watch=True, collateral=False, venue=venue, env=env
    )
    unwatched = await _cycle(
        tmp_path / "unwatched", hedge="-0.25", watch=False, collateral=False, venue=venue
    )
    assert watched["perp_orders"] == []
    assert unwatched["perp_orders"], unwatched["result"].reason  # without the watch it is sent
    verdicts = [r for r in watched["audit"] if r["event"] == "risk_verdict"]
    denied = [leg for r in verdicts for leg in r["legs"] if leg.get("check") == "margin"]
    assert denied and "from liquidation (minimum 30%)" in denied[0]["reason"]
    [watch] = [r for r in watched["audit"] if r["event"] == "margin_watch"]
    [account] = watch["accounts"]
    assert (account["account"], account["level"]) == ("usdm", "critical")  # 13 %, under 15 %
    # Critically close: trading goes to REDUCING (an operator resumes it), audited and notified.
    [change] = [r for r in watched["audit"] if r["event"] == "state_change"]
    assert (change["from"], change["to"], change["source"]) == ("ACTIVE", "REDUCING", "margin")
    [alert] = [m for m in received if m["title"].endswith("trading REDUCING: margin critical")]
    assert alert["message"] == change["reason"] and alert["type"] == "warning"
    assert abs(D(account["nearest_liquidation_distance"]) - watched["distance"]) < D("0.001")


async def test_a_quiet_cycle_tops_the_futures_wallet_up_from_spot(tmp_path: Path) -> None:
    # Every sleeve in band: no trade; the hedge is too close to liquidation.
    result = await _cycle(tmp_path, hedge="-0.15", watch=True, collateral=True)
    assert result["result"].outcome == "no-trade"
    assert result["perp_orders"] == []
    [transfer] = result["transfers"]
    assert transfer.kind is TransferKind.SPOT_TO_FUTURES
    assert transfer.amount > D(5000)
    # On the simulator's own figures the hedge is now beyond the configured minimum.
    assert result["distance"] > D("0.3")
    plans = [r for r in result["audit"] if r["event"] == "collateral_plan"]
    assert plans[-1]["reason"] == "margin"


async def test_without_the_watch_a_quiet_cycle_moves_nothing(tmp_path: Path) -> None:
    result = await _cycle(tmp_path, hedge="-0.15", watch=False, collateral=True)
    assert result["result"].outcome == "no-trade"
    assert result["transfers"] == []
    assert result["distance"] < D("0.3")


# The hedge about 26 % from liquidation: in breach of a 30 % minimum, not critical (under 15 %).
BREACH_SCENARIO = scenario_toml(
    {"BTC": ("50000.0", "0.02"), "ETH": ("2000.0", "0.02")},
    spot={"USDT": "20000", "BTC": "1.2", "ETH": "10"},
    futures_wallet="4000",
    positions=[("BTC", "-0.3", "50000")],
    correlation=None,
)


async def _cycles(
    tmp_path: Path, *, ethereum: str, hedge: str, cycles: int
) -> list[dict[str, Any]]:
    """Cycles on the breach scenario with the watch at 30 % and collateral management; what the
    simulator's ledger shows after each."""
    sleeves = sleeves_toml(altcoins=False, hedge=hedge).replace(
        "target = 0.20", f"target = {ethereum}"
    )
    path = write_config(
        tmp_path,
        mode="live",
        scenario=BREACH_SCENARIO,
        sleeves=sleeves,
        extra=RISK.format(watch="min_liquidation_distance = 0.3") + COLLATERAL,
        planner='to = "band-edge"',  # only the sleeves out of band trade
    )
    config = load_config(path, env={})
    seen = []
    async with open_app(config, check_live_allowed(config, cli_live=True)) as app:
        sim = app.simulator
        for _ in range(cycles):
            result = await app.cycle.run()
            [hedge_view] = [
                p for p in sim.admin.account("main").futures.positions if p.instrument.base == "BTC"
            ]
            seen.append(
                {
                    "result": result,
                    "transfers": sim.admin.transfers("main"),
                    "orders": sim.admin.orders("main"),
                    "distance": abs(hedge_view.liquidation_price - hedge_view.mark_price)
                    / hedge_view.mark_price,
                    "hedge": hedge_view.amount,
                }
            )
    return seen


async def test_a_plan_that_trades_tops_the_futures_wallet_up_in_its_own_transfers(
    tmp_path: Path,
) -> None:
    """In breach, with a plan that trades (ethereum 20 % → 30 %: a spot buy): the top-up is
    one of the plan's own transfers, in this very cycle, beside the buy."""
    [first] = await _cycles(tmp_path, ethereum="0.30", hedge="-0.15", cycles=1)
    assert first["result"].outcome == "traded", first["result"].reason
    assert [(o.instrument.base, o.side.value) for o in first["orders"]] == [("ETH", "buy")]
    [transfer] = first["transfers"]
    assert transfer.kind is TransferKind.SPOT_TO_FUTURES
    assert first["distance"] > D("0.3")


async def test_a_plan_whose_every_leg_is_denied_tops_the_futures_wallet_up_this_cycle(
    tmp_path: Path,
) -> None:
    """In breach, with a plan whose only leg increases the hedge (−14 % → −25 %): the margin
    watch denies it, so the plan sends nothing, and the same cycle tops the futures wallet up;
    the next cycle, the margin restored, sends the increase."""
    first, second = await _cycles(tmp_path, ethereum="0.20", hedge="-0.25", cycles=2)
    assert first["result"].outcome == "blocked", first["result"].reason
    assert first["orders"] == []
    [transfer] = first["transfers"]
    assert transfer.kind is TransferKind.SPOT_TO_FUTURES
    assert first["distance"] > D("0.3")
    assert second["result"].outcome == "traded", second["result"].reason
    perps = [o for o in second["orders"] if o.instrument.kind.value == "perp"]
    assert [(o.instrument.base, o.side.value) for o in perps] == [("BTC", "sell")]
    assert second["hedge"] < first["hedge"]
    assert second["distance"] > D("0.3")
