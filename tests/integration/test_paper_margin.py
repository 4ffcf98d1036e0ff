"""Paper mode refuses what the exchange refuses on futures: an increase whose initial margin is
more than the futures wallet has available is rejected on the paper ledger as the simulator
rejects the same order live (an `order_rejected` record, nothing filled), and an increase the
wallet can carry fills in both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.app.wiring import open_app
from bot.audit.writer import EventType, read_records
from bot.config import BotConfig, check_live_allowed
from bot.core.domain import Mode
from bot.execution.paper import PaperExecutor
from rebalance_sim.engine import MarketKind
from tests.integration.loop_support import load, write_config

SCENARIO = """
history_days = 30

[clock]
mode = "manual"
start = "now"
step = "1m"

[assets.BTC]
price = 50000.0
vol = 0.5

[markets]
quote = "USDT"

[rate_limits]
spot_weight_per_minute = 1000000
futures_weight_per_minute = 1000000

[[accounts]]
name = "main"
spot = {{ USDT = "100000" }}
futures_wallet = "{wallet}"
"""
SLEEVES = """
[[sleeves]]
name = "btc-long"
kind = "futures"
account = "usdm"
symbol = "BTC/USDT:USDT"
target = 0.20
"""
# 20 % of a NAV of about 100,000 is a 20,000 notional: 10,000 of initial margin at the
# configured 2x, which live sets on the exchange and paper applies to its ledger; the bot's own
# 3x leverage limit lets it through with a wallet of 8,000.


FILLS = (EventType.ORDER_FILLED, EventType.PAPER_FILL)


def _config(tmp_path: Path, mode: str, wallet: str) -> BotConfig:
    tmp_path.mkdir(exist_ok=True)
    path = write_config(
        tmp_path, mode=mode, scenario=SCENARIO.format(wallet=wallet), sleeves=SLEEVES
    )
    text = path.read_text(encoding="utf-8")
    swap = 'market = "swap"\n'
    path.write_text(text.replace(swap, swap + "leverage = 2\n"), encoding="utf-8")
    return load(path)


async def _run(tmp_path: Path, mode: str, wallet: str) -> dict[str, Any]:
    config = _config(tmp_path, mode, wallet)
    wanted = check_live_allowed(config, cli_live=True) if mode == "live" else Mode.DRY_RUN
    async with open_app(config, wanted) as app:
        result = await app.cycle.run()
        sim = app.simulator
        perp_fills = [f for f in sim.admin.fills("main") if f.instrument.kind is MarketKind.PERP]
        positions = {
            p.instrument.base: p.amount for p in sim.admin.account("main").futures.positions
        }
        paper = None
        if isinstance(app.executor, PaperExecutor):
            paper = {
                s: p.contracts for s, p in app.executor.ledger.accounts["usdm"].positions.items()
            }
    records = [r.record for r in read_records(tmp_path / "data" / "audit")]
    return {
        "result": result,
        "fills": perp_fills,
        "positions": positions,
        "paper": paper,
        "rejected": [r for r in records if r["event"] == EventType.ORDER_REJECTED],
        "filled": [
            r for r in records if r["event"] in (EventType.ORDER_FILLED, EventType.PAPER_FILL)
        ],
    }


async def test_an_increase_beyond_the_available_margin_is_refused_on_paper_as_live(
    tmp_path: Path,
) -> None:
    live = await _run(tmp_path, "live", wallet="8000")
    paper = await _run(tmp_path / "paper", "dry-run", wallet="8000")
    # Live: the simulator refused the order; nothing traded on its ledger.
    assert live["fills"] == [] and not live["positions"].get("BTC")
    assert len(live["rejected"]) == 1 and not live["filled"]
    assert live["rejected"][0]["reason"].startswith("InsufficientFunds:")
    # Paper: the same refusal, audited the same way, marked dry-run; the ledger did not move.
    assert len(paper["rejected"]) == 1 and not paper["filled"]
    [refusal] = paper["rejected"]
    assert refusal["dry_run"] is True
    assert refusal["reason"].startswith("InsufficientFunds: Margin is insufficient")
    assert paper["paper"] == {}
    assert paper["fills"] == []  # and dry-run sent nothing to the exchange


async def test_an_increase_the_wallet_can_carry_fills_on_paper_as_live(tmp_path: Path) -> None:
    live = await _run(tmp_path, "live", wallet="12000")
    paper = await _run(tmp_path / "paper", "dry-run", wallet="12000")
    assert len(live["fills"]) >= 1 and live["positions"]["BTC"] > 0 and not live["rejected"]
    assert paper["paper"] and not paper["rejected"] and len(paper["filled"]) == 1
