"""Start-up: turn a validated config into a running portfolio (the imperative shell's wiring).

`open_app` builds, in order: the data directory, the state store (which refuses a second
process on the same portfolio), the portfolio's audit log (under the store's lock), the
embedded simulator when the config asks for it (its address left in the store, where `plan`
finds it), one ccxt client per account (pointed at the
simulator or the exchange, credentials from the config's secrets — or the simulator's keys,
read-only ones in dry-run; the exchange's test environment with `sandbox`), in live mode
each key's permissions (`bot.app.keycheck`: a key that can withdraw or lacks what the config
trades stops the start), the markets (loaded once; every sleeve instrument must exist),
then the reader and the executor for the mode, the risk engine (the trading state's one
owner) and the cycle. Dry-run gets the paper executor, which has no exchange object at all;
only live builds order gateways.

Everything is closed in reverse order when the block exits, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import SecretStr

from bot import config as cfg
from bot.app.control import ControlRequests
from bot.app.cycle import Cycle, Observer, TargetSource, TransferRunner
from bot.app.funding import FundingRecorder
from bot.app.funding_book import FundingRateBook, funding_keys
from bot.app.futures_setup import apply_futures_settings, wanted_settings
from bot.app.keycheck import check_keys
from bot.app.paper_funding import PaperFundingPass
from bot.app.risk_engine import RiskEngine
from bot.app.targets import StaticTargets, StrategyTargets, is_static
from bot.audit.layout import open_portfolio_audit
from bot.audit.writer import AuditLog, EventType
from bot.config import AccountConfig, BotConfig
from bot.core.domain import Instrument, InstrumentKey, MarketType, Mode, Sleeve, TradingState
from bot.core.errors import BotError, ConfigError, ExchangeUnavailable, StateError
from bot.core.pipeline import CollateralPolicy, Policy
from bot.core.risk import RiskState
from bot.exchange.account import ExchangeAccount
from bot.exchange.budget import RequestBudget
from bot.exchange.clients import make_client
from bot.exchange.earn import OutsideWallets
from bot.exchange.funding import funding_readable, rates_readable
from bot.exchange.orders import OrderGateway
from bot.exchange.portfolio import LiveReader, PaperReader
from bot.exchange.shared import SharedVenues, VenueKey
from bot.exchange.transfers import CcxtTransfers
from bot.exchange.venues import venue_limits, venue_of, weight_limit, weight_pool
from bot.execution.executor import ExecutionOptions, LiveExecutor
from bot.execution.ledger import PaperLedger
from bot.execution.paper import PaperCosts, PaperExecutor, PaperTransfers
from bot.execution.transfers import TransferExecutor
from bot.logs import redact
from bot.store.state import StateStore

if TYPE_CHECKING:  # the simulator's module is loaded by paper mode only
    from bot.simulator import SimulatorLink

log = structlog.get_logger("bot.app.wiring")

SIMULATOR_URL = "embedded_simulator_url"  # store key: the running daemon's simulator


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: SecretStr | None
    secret: SecretStr | None
    password: SecretStr | None = None


class KillSwitch:
    """Engaged while the kill-switch file exists or the kill-switch env variable is set."""

    def __init__(self, path: Any, env_name: str, env: Mapping[str, str]) -> None:
        self.path = path
        self.env_name = env_name
        self._env = env

    def __call__(self) -> str | None:
        if self.path.exists():
            return f"file {self.path} is present"
        value = self._env.get(self.env_name, "")
        if value.strip() not in ("", "0", "false", "no"):
            return f"environment variable {self.env_name} is set"
        return None


@dataclass
class App:
    config: BotConfig
    mode: Mode
    cycle: Cycle
    accounts: dict[str, ExchangeAccount]
    store: StateStore
    audit: AuditLog
    executor: LiveExecutor | PaperExecutor
    instruments: dict[InstrumentKey, Instrument]
    simulator: Any = None  # the embedded simulator's handle, when there is one


@dataclass(frozen=True, slots=True)
class Process:
    """What a portfolio shares with the other portfolios of its process."""

    venues: SharedVenues
    simulator: SimulatorLink | None = None
    targets: TargetSource | None = None  # a follower's: its model portfolio's target source


@dataclass(frozen=True, slots=True)
class WaitClock:
    """What the bot waits on between read retries, order polls and lookups: real time by
    default; a test passes simulated time, so its lookup windows and retries do not depend on
    how long requests take."""

    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    monotonic: Callable[[], float] = time.monotonic


def policy_of(config: BotConfig, instruments: Mapping[InstrumentKey, Instrument]) -> Policy:
    """What the portfolio's decisions follow: sleeves, trigger, planner, limits, and with
    `[collateral] enabled` the wallets funded from one another."""
    collateral = None
    if config.collateral.enabled:
        collateral = CollateralPolicy(
            tuple(cfg.wallet_pairs(config)), cfg.collateral_options(config)
        )
    return Policy(
        sleeves=cfg.to_sleeves(config),
        instruments=instruments,
        trigger=cfg.trigger_rule(config),
        planner=cfg.planner_options(config),
        limits=cfg.risk_limits(config),
        ignore_assets=frozenset(config.ignore_assets),
        collateral=collateral,
    )


def config_digest(config: BotConfig) -> str:
    """A short hash of the effective config (secrets excluded), recorded at start-up."""
    data = config.model_dump(mode="json")
    for account in data.get("accounts", {}).values():
        for name in cfg.SECRET_FIELDS:
            account.pop(name, None)
    data.pop("notifications", None)
    data.get("server", {}).pop("token", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _credentials(
    name: str, account: AccountConfig, sim: SimulatorLink | None, mode: Mode
) -> Credentials:
    if account.simulator:
        if sim is None:
            raise ConfigError(f"accounts.{name}: simulator = true needs [simulator] enabled")
        try:
            key = sim.credentials(account.sim_account, read_only=mode is not Mode.LIVE)
        except KeyError as exc:
            raise ConfigError(
                f"accounts.{name}: the simulator has no account {account.sim_account!r} "
                f"(sim_account): {exc}"
            ) from None
        return Credentials(key.api_key, key.secret, key.passphrase)
    return Credentials(account.api_key, account.secret, account.password)


def _share(budgets: dict[str, RequestBudget], name: str, rate: float) -> None:
    """The budget `name` at no more than `rate` calls a second: new, or an existing one
    lowered to it (whichever account of whichever portfolio was built first)."""
    if name in budgets:
        budgets[name].limit_to(rate)
    else:
        budgets[name] = RequestBudget(rate)


def build_accounts(
    config: BotConfig,
    mode: Mode,
    sim: SimulatorLink | None,
    waits: WaitClock | None = None,
    shared: SharedVenues | None = None,
) -> dict[str, ExchangeAccount]:
    """One ccxt client per account; simulator accounts get the simulator's keys (read-only
    ones unless live). With `shared`, the venues' markets, tickers and request budgets are the
    process's, shared with its other portfolios."""
    waits = waits or WaitClock()
    accounts: dict[str, ExchangeAccount] = {}
    budgets = shared.budgets if shared is not None else {}
    key_budgets = shared.key_budgets if shared is not None else {}
    for name, account_config in config.accounts.items():
        credentials = _credentials(name, account_config, sim, mode)
        pool = weight_pool(account_config.exchange, account_config.market)
        rate = (
            account_config.requests_per_second
            or venue_limits(account_config.exchange).calls_per_second
        )
        _share(budgets, pool, rate)
        key = _key_digest(venue_of(account_config.exchange), credentials)
        if key is not None:
            _share(key_budgets, key, rate)
        base_url = account_config.base_url
        if account_config.simulator and sim is not None:
            base_url = sim.base_url
        endpoint = base_url or ("sandbox" if account_config.sandbox else "exchange")
        venue_key = VenueKey(
            account_config.exchange,
            account_config.market,
            endpoint,
            json.dumps(account_config.options, sort_keys=True, default=str),
        )
        client = make_client(
            account_config.exchange,
            account_config.market,
            timeout_seconds=account_config.timeout.total_seconds(),
            extra_options=dict(account_config.options),
            api_key=credentials.api_key,
            secret=credentials.secret,
            password=credentials.password,
            base_url=base_url,
            sandbox=account_config.sandbox,
            pace_by_weight=account_config.pace_by_weight,
            session=None if shared is None else shared.session(venue_key),
            tls=None if shared is None else shared.tls,
        )
        accounts[name] = ExchangeAccount(
            name=name,
            exchange_id=account_config.exchange,
            market_type=account_config.market,
            client=client,
            budget=budgets[pool],
            quote_currency=config.quote_currency,
            weight_limit=(
                weight_limit(account_config.exchange, account_config.market)
                if account_config.pace_by_weight
                else None
            ),
            sleep=waits.sleep,
            venue=venue_key,
            shared=shared,
            key_budget=None if key is None else key_budgets[key],
        )
    return accounts


def outside_wallets(
    config: BotConfig, accounts: Mapping[str, ExchangeAccount], clock: Callable[[], datetime]
) -> dict[str, OutsideWallets]:
    """The spot accounts whose holdings outside the trading wallet are counted (`include_earn`),
    each read at its `earn_refresh` cadence."""
    return {
        name: OutsideWallets(accounts[name], account.earn_refresh, clock)
        for name, account in config.accounts.items()
        if account.reads_earn and name in accounts
    }


def _key_digest(venue: str, credentials: Credentials) -> str | None:
    """What tells an API key's budget apart: a digest of the venue and key (the key itself
    is a secret and stays out of every structure that might be printed)."""
    if credentials.api_key is None:
        return None
    raw = f"{venue}:{credentials.api_key.get_secret_value()}".encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _open_accounts(
    config: BotConfig,
    mode: Mode,
    sim: SimulatorLink | None,
    waits: WaitClock,
    connected: Mapping[str, ExchangeAccount] | None,
    stack: contextlib.AsyncExitStack,
    shared: SharedVenues | None = None,
) -> dict[str, ExchangeAccount]:
    """The caller's connections, or the config's accounts connected here and closed on exit."""
    if connected is not None:
        return dict(connected)
    accounts = build_accounts(config, mode, sim, waits, shared)
    for account in accounts.values():
        stack.push_async_callback(account.close)
    return accounts


async def load_instruments(
    config: BotConfig, accounts: Mapping[str, ExchangeAccount]
) -> dict[InstrumentKey, Instrument]:
    """Load every account's markets once; every sleeve instrument must exist."""
    names = list(accounts)
    loaded = await asyncio.gather(*(accounts[n].load_instruments() for n in names))
    known = {name: set(instruments) for name, instruments in zip(names, loaded, strict=True)}
    cfg.check_instruments(config, known)
    return {
        key: accounts[key.account].instruments[key.symbol] for key in cfg.instrument_keys(config)
    }


@contextlib.asynccontextmanager
async def open_app(
    config: BotConfig,
    mode: Mode,
    *,
    clock: Callable[[], datetime] | None = None,
    env: Mapping[str, str] | None = None,
    sim_port: int | None = None,
    waits: WaitClock | None = None,
    connected: Mapping[str, ExchangeAccount] | None = None,
    process: Process | None = None,
) -> AsyncIterator[App]:
    """Everything one portfolio needs, opened in order and closed in reverse.

    The bot's clock is wall time, except with the embedded simulator: then it is the
    simulator's time, so that cooldowns, windows and quote ages are measured on the same clock
    as the market (a rehearsal at 60× speed keeps its hour-long cooldown an hour of market).
    `waits` times read retries and the live executor's polls and lookups (default: real time).
    `connected`: account connections the caller opened and keeps (a test restarting the bot
    over one connection); by default each account is connected here and closed on exit.
    `process`: what a process of several portfolios shares (`bot.app.fleet`): its simulator,
    its venues' markets, tickers and budgets, and a model portfolio's targets.
    """
    waits = waits or WaitClock()
    sim_handle: list[Any] = []
    if clock is None:

        def clock() -> datetime:
            return sim_handle[0].now() if sim_handle else utc_now()

    environment = dict(os.environ if env is None else env)
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"data_dir {config.data_dir}: {exc.strerror}") from None
    async with contextlib.AsyncExitStack() as stack:
        store = stack.enter_context(StateStore.open(config.data_dir, config.portfolio, clock))
        audit = stack.enter_context(open_portfolio_audit(store, clock, redact=redact))
        start = stack.enter_context(_StartRecord(audit))
        sim = process.simulator if process is not None else None
        if sim is None and config.simulator.enabled:
            port = config.simulator.port if sim_port is None else sim_port
            from bot.simulator import embedded  # noqa: PLC0415 (paper mode only: never live)

            sim = await stack.enter_async_context(
                embedded(config.simulator.scenario, seed=config.simulator.seed, port=port)
            )
            log.info("simulator_started", base_url=sim.base_url)
        if sim is not None:
            sim_handle.append(sim)
            store.put(SIMULATOR_URL, sim.base_url)  # where `plan` finds this market
        shared = process.venues if process is not None else None
        accounts = _open_accounts(config, mode, sim, waits, connected, stack, shared)
        if mode is Mode.LIVE:
            wallets = (
                frozenset(n for pair in config.collateral.venues for n in (pair.spot, pair.futures))
                if config.collateral.enabled
                else frozenset()
            )
            await check_keys(config.accounts, accounts, wallets)
        instruments = await load_instruments(config, accounts)
        await apply_futures_settings(config, mode, accounts, audit)
        keys = cfg.instrument_keys(config)
        cash = frozenset(config.cash_assets)
        live_reader = LiveReader(
            accounts,
            keys,
            config.quote_currency,
            cash,
            clock,
            outside_wallets(config, accounts, clock),
        )
        executor, reader = await _execution(
            config, mode, accounts, instruments, store, audit, clock, live_reader, waits
        )
        saved_risk = store.load_risk_state()
        try:
            risk_state = RiskState.from_dict(saved_risk) if saved_risk else RiskState()
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"the saved risk state cannot be read: {exc}") from None
        target_source: TargetSource = _target_source(config, accounts, store, audit, clock)
        if process is not None and process.targets is not None:
            target_source = process.targets
        observers: list[Observer] = []  # the cycle's and the risk engine's: one list
        risk = RiskEngine(
            risk_state,
            store=store,
            audit=audit,
            kill_switch=KillSwitch(
                config.kill_switch_file, config.risk.kill_switch_env, environment
            ),
            clock=clock,
            listeners=observers,
            requests=ControlRequests(config.data_dir, config.portfolio),
        )
        cycle = Cycle(
            portfolio=config.portfolio,
            mode=mode,
            reader=reader,
            executor=executor,
            store=store,
            audit=audit,
            policy=policy_of(config, instruments),
            target_source=target_source,
            clock=clock,
            risk=risk,
            observers=observers,
            transfers=_transfers(config, mode, accounts, executor, store, audit, clock, waits),
            funding=_funding(config, mode, accounts, store, audit, clock),
            paper_funding=_paper_funding(config, accounts, executor, store, audit, clock),
            funding_rates=_funding_book(cfg.to_sleeves(config), accounts, store, audit, clock),
            wait=waits.sleep,
            confirm_delay=config.risk.price_confirm_delay.total_seconds(),
        )
        handle = getattr(sim, "handle", None)
        app = App(config, mode, cycle, accounts, store, audit, executor, instruments, handle)
        start.started(
            config, mode, risk_state.trading, static=isinstance(target_source, StaticTargets)
        )
        yield app


def _target_source(
    config: BotConfig,
    accounts: Mapping[str, ExchangeAccount],
    store: StateStore,
    audit: AuditLog,
    clock: Callable[[], datetime],
) -> StaticTargets | StrategyTargets:
    """The config's targets, or its strategy recomputed on its own schedule."""
    if is_static(config):
        return StaticTargets(cfg.targets(config))
    return StrategyTargets(
        config=config,
        sleeves=cfg.to_sleeves(config),
        accounts=accounts,
        store=store,
        audit=audit,
        clock=clock,
        cache_dir=config.data_dir / "ohlcv",
    )


async def _execution(
    config: BotConfig,
    mode: Mode,
    accounts: dict[str, ExchangeAccount],
    instruments: dict[InstrumentKey, Instrument],
    store: StateStore,
    audit: AuditLog,
    clock: Callable[[], datetime],
    live_reader: LiveReader,
    waits: WaitClock,
) -> tuple[LiveExecutor | PaperExecutor, LiveReader | PaperReader]:
    """Live: order gateways. Dry-run: the paper executor, which holds no exchange object."""
    keys = cfg.instrument_keys(config)
    cash = frozenset(config.cash_assets)
    executor: LiveExecutor | PaperExecutor
    if mode is Mode.LIVE:
        executor = LiveExecutor(
            portfolio=config.portfolio,
            gateways={n: OrderGateway(a, Mode.LIVE) for n, a in accounts.items()},
            instruments=instruments,
            store=store,
            audit=audit,
            options=ExecutionOptions(
                order_type=config.execution.order_type_enum,
                limit_timeout=config.execution.limit_timeout.total_seconds(),
                poll_interval=config.execution.poll_interval.total_seconds(),
                lookup_window=config.execution.lookup_window.total_seconds(),
                fill_timeout=config.execution.fill_timeout.total_seconds(),
                slicing=config.execution.slicing,
                recheck_not_placed=cfg.NOT_PLACED_RECHECK.total_seconds(),
                not_placed_hold=config.execution.not_placed_hold.total_seconds(),
                price_limits=cfg.risk_limits(config).price_limits(),
            ),
            clock=clock,
            sleep=waits.sleep,
            monotonic=waits.monotonic,
        )
        reader: LiveReader | PaperReader = live_reader
    else:
        ledger = await _paper_ledger(store, live_reader, audit)
        paper = config.execution.paper
        paper_executor = PaperExecutor(
            portfolio=config.portfolio,
            ledger=ledger,
            store=store,
            audit=audit,
            costs=PaperCosts(
                paper.spot_fee,
                paper.futures_fee,
                paper.slippage_bps,
                {n: a.leverage for n, a in config.accounts.items() if a.leverage is not None},
            ),
            clock=clock,
        )
        executor = paper_executor
        reader = PaperReader(
            accounts,
            keys,
            config.quote_currency,
            cash,
            clock,
            ledger=lambda: paper_executor.ledger,
        )
    return executor, reader


def _transfers(
    config: BotConfig,
    mode: Mode,
    accounts: Mapping[str, ExchangeAccount],
    executor: LiveExecutor | PaperExecutor,
    store: StateStore,
    audit: AuditLog,
    clock: Callable[[], datetime],
    waits: WaitClock,
) -> TransferRunner | None:
    """Transfers live, the paper ledger's moves in dry-run; None unless enabled. A live
    transfer's lookups wait on `waits`, like the order executor's."""
    if not config.collateral.enabled:
        return None
    venues = cfg.wallet_pairs(config)
    runner: TransferRunner
    if isinstance(executor, PaperExecutor):
        runner = PaperTransfers(config.portfolio, executor, store, audit, clock)
    else:
        assert mode is Mode.LIVE
        ports = {
            v.venue: CcxtTransfers(
                accounts[v.spot_account].client, v.exchange, gate=accounts[v.spot_account].call
            )
            for v in venues
        }
        runner = TransferExecutor(config.portfolio, ports, store, audit, clock, sleep=waits.sleep)
    log.info(
        "collateral_enabled",
        venues=[v.venue for v in venues],
        transfers="sent to the exchange" if mode is Mode.LIVE else "paper ledger only",
    )
    return runner


def _funding(
    config: BotConfig,
    mode: Mode,
    accounts: Mapping[str, ExchangeAccount],
    store: StateStore,
    audit: AuditLog,
    clock: Callable[[], datetime],
) -> FundingRecorder | None:
    """Live: the futures accounts' funding payments recorded in the audit log."""
    if mode is not Mode.LIVE:
        return None
    symbols = {
        w.account: w.symbols
        for w in wanted_settings(config)
        if w.symbols and funding_readable(accounts[w.account])
    }
    return FundingRecorder(accounts, symbols, store, audit, clock) if symbols else None


def _funding_book(
    sleeves: Sequence[Sleeve],
    accounts: Mapping[str, ExchangeAccount],
    store: StateStore,
    audit: AuditLog,
    clock: Callable[[], datetime],
) -> FundingRateBook | None:
    """The current rates of the futures sleeves' perpetuals whose venue serves them."""
    keys = funding_keys(sleeves, accounts)
    return FundingRateBook(accounts, keys, store, audit, clock) if keys else None


def _paper_funding(
    config: BotConfig,
    accounts: Mapping[str, ExchangeAccount],
    executor: LiveExecutor | PaperExecutor,
    store: StateStore,
    audit: AuditLog,
    clock: Callable[[], datetime],
) -> PaperFundingPass | None:
    """Dry-run: funding on the paper ledger, from the futures accounts' published rates."""
    if not isinstance(executor, PaperExecutor):
        return None
    futures = {
        n: accounts[n]
        for n, a in config.accounts.items()
        if a.market is MarketType.SWAP and rates_readable(accounts[n])
    }
    return PaperFundingPass(executor, futures, store, audit, clock) if futures else None


async def _paper_ledger(store: StateStore, reader: LiveReader, audit: AuditLog) -> PaperLedger:
    """The persisted paper ledger, or a new one seeded from the accounts as they are now."""
    saved = store.load_paper_ledger()
    if saved is not None:
        try:
            return PaperLedger.from_dict(saved)
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"the saved paper ledger cannot be read: {exc}") from None
    try:
        snapshot = await reader.snapshot()
    except ExchangeUnavailable as exc:
        raise ExchangeUnavailable(
            f"dry-run seeds its paper ledger from the accounts' balances, which could not be "
            f"read: {exc}"
        ) from None
    ledger = PaperLedger.from_snapshot(snapshot)
    store.commit_paper_trade(ledger.to_dict(), [])
    audit.append(EventType.RECONCILE, None, result="paper_ledger_seeded", ledger=ledger.to_dict())
    return ledger


class _StartRecord:
    """A start that fails once the audit log is open leaves an `error` record (step
    `startup`) saying why, as its one line on stderr does; a failure after the `startup`
    record is the cycles' to record."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self.done = False

    def __enter__(self) -> _StartRecord:
        return self

    def started(
        self, config: BotConfig, mode: Mode, trading: TradingState, *, static: bool
    ) -> None:
        """The `startup` record (and the config's targets when they are static): the start
        is done."""
        self.audit.append(
            EventType.STARTUP,
            None,
            sync=True,
            mode=mode.value,
            config_digest=config_digest(config),
            accounts={
                n: {"exchange": a.exchange, "market": a.market.value, "simulator": a.simulator}
                for n, a in config.accounts.items()
            },
            sleeves=[s.name for s in config.sleeves],
            trading_state=trading.value,
        )
        if static:
            self.audit.append(
                EventType.TARGETS,
                None,
                source="config",
                weights=cfg.targets(config),
                inputs={"strategy": "static"},
            )
        self.done = True

    def __exit__(self, kind: object, exc: BaseException | None, trace: object) -> None:
        if not self.done and isinstance(exc, BotError):
            self.audit.append(
                EventType.ERROR,
                None,
                sync=True,
                step="startup",
                error_class=type(exc).__name__,
                message=str(exc),
            )


@contextlib.asynccontextmanager
async def open_market_data(
    config: BotConfig, *, sim_port: int | None = None
) -> AsyncIterator[tuple[dict[str, ExchangeAccount], Callable[[], datetime]]]:
    """The config's accounts with read-only keys and their markets loaded, and the market's
    clock (the embedded simulator's, when the config runs one): for commands that only read
    public market data (`download`). No state store, audit log or executor is opened."""
    async with contextlib.AsyncExitStack() as stack:
        sim = None
        if config.simulator.enabled:
            port = config.simulator.port if sim_port is None else sim_port
            from bot.simulator import embedded  # noqa: PLC0415 (paper mode only: never live)

            sim = await stack.enter_async_context(
                embedded(config.simulator.scenario, seed=config.simulator.seed, port=port)
            )
        accounts = _open_accounts(config, Mode.DRY_RUN, sim, WaitClock(), None, stack)
        await load_instruments(config, accounts)
        yield accounts, (sim.now if sim is not None else utc_now)
