"""A read-only view of a portfolio, for `plan`: what its next cycle would read, written nowhere.

`open_read_only` takes no lock and writes no audit record and no state: the daemon's targets,
trading state, price references and paper ledger are read from its store opened read-only
(`bot.store.state.open_state_view`), so it runs beside a running daemon. Its accounts are read
with read-only keys where there are any (the simulator's), never with an order path.

Prices in paper mode: beside a running daemon it reads the daemon's own embedded simulator
(the daemon leaves its address in the store), so the plan sees the daemon's market at the
daemon's clock. When no daemon runs, or its simulator does not answer, it starts an embedded
simulator of its own on a free port (the same scenario and seed, as a restarted daemon would).
A dry-run portfolio is valued from its stored paper ledger (one never started: from the
accounts as they are, as its first cycle would seed it); a live one from the exchanges. The
only file it may write is the OHLCV cache of public candles a strategy reads.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from bot import config as cfg
from bot.app.targets import StaticTargets, StrategyTargets, is_static
from bot.app.wiring import (
    SIMULATOR_URL,
    KillSwitch,
    build_accounts,
    load_instruments,
    outside_wallets,
    policy_of,
    utc_now,
)
from bot.config import BotConfig
from bot.core.domain import Mode
from bot.core.errors import StateError
from bot.core.pipeline import Policy
from bot.core.risk import RiskState
from bot.exchange.account import ExchangeAccount
from bot.exchange.portfolio import LiveReader, PaperReader
from bot.execution.ledger import PaperLedger
from bot.store.state import StateView, open_state_view, running_pid

if TYPE_CHECKING:  # the simulator's module is loaded by paper mode only
    from bot.simulator import SimulatorLink

log = structlog.get_logger("bot.app.readonly")


@dataclass(frozen=True, slots=True)
class ReadOnlyPortfolio:
    """Everything `plan` needs to run the cycle's decision once, and nothing that writes."""

    config: BotConfig
    daemon_pid: int | None  # the process running this portfolio now, if any
    market: str  # where the prices come from, in words
    reader: LiveReader | PaperReader
    targets: StaticTargets | StrategyTargets
    policy: Policy
    risk_state: RiskState
    kill_switch: KillSwitch
    clock: Callable[[], datetime]
    accounts: Mapping[str, ExchangeAccount]  # read-only connections (`plan` reads funding rates)


@contextlib.asynccontextmanager
async def open_read_only(config: BotConfig) -> AsyncIterator[ReadOnlyPortfolio]:
    """The portfolio as its next cycle would read it; everything is closed at the end."""
    async with contextlib.AsyncExitStack() as stack:
        view = open_state_view(config.data_dir, config.portfolio)
        stack.callback(view.close)
        pid = running_pid(config.data_dir, config.portfolio)
        sim, market = await _market(config, view, pid, stack)
        clock: Callable[[], datetime] = sim.now if sim is not None else utc_now
        accounts = build_accounts(config, Mode.DRY_RUN, sim)
        for account in accounts.values():
            stack.push_async_callback(account.close)
        instruments = await load_instruments(config, accounts)
        keys = cfg.instrument_keys(config)
        cash = frozenset(config.cash_assets)
        outside = outside_wallets(config, accounts, clock)
        live = LiveReader(accounts, keys, config.quote_currency, cash, clock, outside)
        reader: LiveReader | PaperReader = live
        if config.mode is not Mode.LIVE:
            ledger = await _paper_ledger(view, live)
            reader = PaperReader(
                accounts, keys, config.quote_currency, cash, clock, ledger=lambda: ledger
            )
        targets: StaticTargets | StrategyTargets
        if is_static(config):
            targets = StaticTargets(cfg.targets(config))
        else:
            targets = StrategyTargets(
                config=config,
                sleeves=cfg.to_sleeves(config),
                accounts=accounts,
                store=view,
                audit=None,
                clock=clock,
                cache_dir=config.data_dir / "ohlcv",
            )
        yield ReadOnlyPortfolio(
            config=config,
            daemon_pid=pid,
            market=market,
            reader=reader,
            targets=targets,
            policy=policy_of(config, instruments),
            risk_state=_risk_state(view),
            kill_switch=KillSwitch(
                config.kill_switch_file, config.risk.kill_switch_env, dict(os.environ)
            ),
            clock=clock,
            accounts=accounts,
        )


async def _market(
    config: BotConfig, view: StateView, pid: int | None, stack: contextlib.AsyncExitStack
) -> tuple[SimulatorLink | None, str]:
    """The simulator to read prices from (None: the exchanges), and where that is, in words."""
    if not config.simulator.enabled:
        return None, "the exchanges"
    from bot.simulator import embedded, reach  # noqa: PLC0415 (paper mode only: never live)

    scenario, seed = config.simulator.scenario, config.simulator.seed
    url = view.get(SIMULATOR_URL) if pid is not None else None
    if isinstance(url, str):
        remote = await reach(url, scenario, seed=seed)
        if remote is not None:
            return remote, f"the running daemon's simulator at {url}"
        log.warning("daemon_simulator_unreachable", base_url=url)
    own = await stack.enter_async_context(embedded(scenario, seed=seed, port=0))
    return own, f"an embedded simulator of its own at {own.base_url}"


async def _paper_ledger(view: StateView, reader: LiveReader) -> PaperLedger:
    saved = view.load_paper_ledger()
    if saved is None:
        return PaperLedger.from_snapshot(await reader.snapshot())
    try:
        return PaperLedger.from_dict(saved)
    except (ValueError, KeyError, TypeError) as exc:
        raise StateError(f"the saved paper ledger cannot be read: {exc}") from None


def _risk_state(view: StateView) -> RiskState:
    saved = view.load_risk_state()
    try:
        return RiskState.from_dict(saved) if saved else RiskState()
    except (ValueError, KeyError, TypeError) as exc:
        raise StateError(f"the saved risk state cannot be read: {exc}") from None
