"""One decision code: a backtest over a simulated path trades what the dry-run daemon trades.

The daemon runs its own loop (`run_daemon`, dry-run, the embedded simulator through ccxt) on a
manual simulator clock that each of its sleeps moves one candle on; the backtest walks the same
scenario's path (`--simulated-years`) from the same portfolio. The fill rule that makes them
comparable: a simulated candle closes at the price the simulator quotes at its closing instant,
which is the next candle's open, so the backtest decides and fills at the price a dry-run cycle
at that instant reads and fills at. The scenario quotes without a spread (the paper fill takes
the touch, the backtest the price moved by the slippage) and pays no funding (the paper ledger
pays none). Compared: the steps that traded, every leg's amount and fill price (exact), the
NAV of every cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.app.daemon import RunHooks, RunOptions, Stopper, run_daemon
from bot.app.wiring import App
from bot.audit.writer import read_records
from bot.backtest import sources
from bot.backtest.engine import RunResult, run, starting_portfolio, step_close
from bot.backtest.runner import instruments_for, setup_of
from bot.config import BotConfig
from bot.core.domain import Mode
from bot.execution.ledger import PaperLedger
from tests.integration.loop_support import load, write_config

PERIOD_MS = 4 * 3_600_000
STEPS = 60  # ten days of 4-hour candles
YEAR_MS = 365 * 86_400_000

SCENARIO = """
history_days = 2
correlation = 0.3

[clock]
mode = "manual"
start = "2024-01-01T00:00:00Z"
step = "1m"

[assets.BTC]
price = 50000.0
vol = 1.2

[assets.ETH]
price = 2000.0
vol = 1.5

[assets.SOL]
price = 100.0
vol = 1.8

[assets.XRP]
price = 0.5
vol = 1.6

[markets]
quote = "USDT"

[book]
spread_bps = 0

[funding]
rate = 0

[rate_limits]
spot_weight_per_minute = 1000000
futures_weight_per_minute = 1000000
bitget_scale = 1000000.0

[[accounts]]
name = "main"
{account}
"""

SLEEVES = """
[[sleeves]]
name = "bitcoin"
kind = "spot"
account = "spot"
asset = "BTC"
target = 0.45

[[sleeves]]
name = "ethereum"
kind = "spot"
account = "spot"
asset = "ETH"
target = 0.25

[[sleeves]]
name = "altcoin-futures"
kind = "futures"
account = "usdm"
target = 0.10
instruments = [
  { symbol = "SOL/USDT:USDT", weight = 0.6 },
  { symbol = "XRP/USDT:USDT", weight = 0.4 },
]

[[sleeves]]
name = "btc-hedge"
kind = "futures"
account = "usdm"
symbol = "BTC/USDT:USDT"
target = -0.10
"""


def _config(tmp_path: Path, account: str) -> BotConfig:
    tmp_path.mkdir(exist_ok=True)
    return load(
        write_config(
            tmp_path,
            scenario=SCENARIO.format(account=account),
            sleeves=SLEEVES,
            trigger='band = 0.03\ncooldown = "0s"',
        )
    )


def _account(ledger: PaperLedger) -> str:
    """The backtest's starting portfolio as the scenario's account holds it."""
    spot, wallet, positions = {}, Decimal(0), []
    for account in ledger.accounts.values():
        spot.update(account.holdings)
        wallet += account.wallet
        for symbol, p in sorted(account.positions.items()):
            positions.append(
                f'[[accounts.positions]]\nasset = "{symbol.split("/")[0]}"\n'
                f'amount = "{p.contracts}"\nentry_price = "{p.entry_price}"\n'
            )
    balances = ", ".join(f'{asset} = "{amount}"' for asset, amount in sorted(spot.items()))
    return f'spot = {{ {balances} }}\nfutures_wallet = "{wallet}"\n\n' + "\n".join(positions)


def _backtest(tmp_path: Path) -> tuple[RunResult, str, Any]:
    config = _config(tmp_path / "backtest", 'spot = { USDT = "1" }')
    history, markets = sources.from_simulator(config, (STEPS + 0.5) * PERIOD_MS / YEAR_MS, "4h")
    assert history.steps == STEPS and history.period_ms == PERIOD_MS
    instruments, notes = instruments_for(config, markets)
    assert notes == []
    setup = setup_of(config, instruments, Decimal(100_000), history)
    return run(setup, history), _account(starting_portfolio(setup, history)), history


class _SimulatedSleep(Stopper):
    """The daemon's sleep between cycles moves the simulator's manual clock one candle on."""

    def __init__(self) -> None:
        super().__init__()
        self.app: App | None = None

    def ready(self, app: App) -> None:
        self.app = app
        app.simulator.admin.advance(PERIOD_MS)  # the first cycle decides at the first close

    async def sleep(self, seconds: float) -> None:
        assert self.app is not None
        self.app.simulator.admin.advance(PERIOD_MS)


@dataclass(frozen=True)
class _Cycle:
    at: datetime
    nav: Decimal
    legs: tuple[tuple[str, str, str, Decimal], ...]  # (account, symbol, side, amount)
    prices: tuple[Decimal, ...]  # each leg's fill price


async def _dry_run(tmp_path: Path, account: str) -> list[_Cycle]:
    config = _config(tmp_path / "daemon", account)
    sleep = _SimulatedSleep()
    with (tmp_path / "console.txt").open("w", encoding="utf-8") as console:
        options = RunOptions(max_cycles=STEPS - 1, out=console)
        code = await run_daemon(
            config, Mode.DRY_RUN, options, RunHooks(sleep, on_ready=sleep.ready)
        )
    assert code == 0
    records = [r.record for r in read_records(config.data_dir / "audit")]
    cycles: dict[str, _Cycle] = {}
    for record in records:
        cycle = record.get("cycle_id")
        if record["event"] in ("snapshot", "quiet_cycle"):
            at = datetime.fromisoformat(record["time"]).astimezone(UTC)
            cycles[cycle] = _Cycle(at, Decimal(str(record["nav"])), (), ())
        elif record["event"] == "paper_fill":
            leg = (record["account"], record["symbol"], record["side"], Decimal(record["amount"]))
            known = cycles[cycle]
            price = Decimal(record["price"])
            cycles[cycle] = _Cycle(known.at, known.nav, (*known.legs, leg), (*known.prices, price))
    return list(cycles.values())


async def test_a_backtest_over_a_simulated_path_trades_what_the_dry_run_daemon_trades(
    tmp_path: Path,
) -> None:
    result, account, history = _backtest(tmp_path)
    daemon = await _dry_run(tmp_path, account)
    assert len(daemon) == STEPS - 1  # one cycle per close but the last (nothing fills after it)
    assert [c.at for c in daemon] == [step_close(history, s) for s in range(STEPS - 1)]

    traded = {step: legs for step, legs in result.decisions}
    assert len(traded) >= 4, "the path should make the band trade several times"
    assert {s for s, c in enumerate(daemon) if c.legs} == set(traded)
    for step, legs in traded.items():
        expected = tuple(
            (leg.key.account, leg.key.symbol, leg.side.value, leg.amount) for leg in legs
        )
        assert daemon[step].legs == expected, step
        filled = [f for f in result.fills if f.step == step + 1]  # at the next candle's open
        assert [(f.key.account, f.key.symbol, f.side, f.amount) for f in filled] == list(expected)
        assert tuple(f.price for f in filled) == daemon[step].prices, step
    for step, cycle in enumerate(daemon):
        assert float(cycle.nav) == pytest.approx(result.nav[step], rel=1e-9, abs=0), step
