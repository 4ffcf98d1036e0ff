"""`check-config --online`: the config against the venues' own markets, before the first run.

Every account's markets and tickers are read from the exchange's public endpoints (no keys are
sent, none are needed; accounts on the embedded simulator ask a simulator started for the
check). Each sleeve instrument must be listed as a market of its account's kind (spot, or a
USDⓈ-margined perpetual), with the closest listed name when it is not; the planned sizes are
checked against the markets' minimums (`bot.core.policy.sizes`), and the config's leverage cap
against the most a market allows where the exchange publishes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot import config as cfg
from bot.config import BotConfig
from bot.core import human, symbols
from bot.core.domain import Instrument, InstrumentKey, MarketType
from bot.core.policy.sizes import PlannedSize, SizeFinding, check_sizes
from bot.exchange.account import ExchangeAccount, to_decimal
from bot.exchange.budget import RequestBudget
from bot.exchange.clients import make_client
from bot.exchange.venues import venue_limits


@dataclass
class OnlineReport:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def _public_accounts(config: BotConfig) -> AsyncIterator[dict[str, ExchangeAccount]]:
    """One client per account with no credentials, pointed where the bot would point it."""
    async with contextlib.AsyncExitStack() as stack:
        sim_url: str | None = None
        if any(a.simulator for a in config.accounts.values()):
            from bot.simulator import embedded  # noqa: PLC0415 (paper configs only)

            sim = await stack.enter_async_context(
                embedded(config.simulator.scenario, seed=config.simulator.seed, port=0)
            )
            sim_url = sim.base_url
        accounts = {}
        for name, account in config.accounts.items():
            client = make_client(
                account.exchange,
                account.market,
                timeout_seconds=account.timeout.total_seconds(),
                extra_options=dict(account.options),
                api_key=None,
                secret=None,
                base_url=sim_url if account.simulator else account.base_url,
                pace_by_weight=account.pace_by_weight,
            )
            rate = account.requests_per_second or venue_limits(account.exchange).calls_per_second
            accounts[name] = ExchangeAccount(
                name=name,
                exchange_id=account.exchange,
                market_type=account.market,
                client=client,
                budget=RequestBudget(rate),
                quote_currency=config.quote_currency,
            )
            stack.push_async_callback(accounts[name].close)
        yield accounts


async def check_online(config: BotConfig, nav: Decimal | None) -> OnlineReport:
    report = OnlineReport()
    async with _public_accounts(config) as accounts:
        for account in accounts.values():
            await account.load_instruments()
        listed = _listed(config, accounts, report)
        prices: dict[InstrumentKey, Decimal] = {}
        for name, account in accounts.items():
            wanted = [k.symbol for k in listed if k.account == name]
            quotes, issues = await account.fetch_quotes(wanted)
            prices.update({k: q.valuation_price for k, q in quotes.items()})
            report.warnings += issues
        _leverage(config, accounts, listed, report)
    findings = check_sizes(_planned(config), listed, prices, nav, config.quote_currency)
    _sizes(findings, nav, config.quote_currency, report)
    return report


def _listed(
    config: BotConfig, accounts: Mapping[str, ExchangeAccount], report: OnlineReport
) -> dict[InstrumentKey, Instrument]:
    """The sleeve instruments each account lists; a problem (with a suggestion) for the rest."""
    found: dict[InstrumentKey, Instrument] = {}
    for key in sorted(cfg.instrument_keys(config)):
        account = accounts[key.account]
        kind = "spot market" if account.market_type is MarketType.SPOT else "linear perpetual"
        where = f"{account.exchange_id} ({key.account})"
        instrument = account.instruments.get(key.symbol)
        if instrument is not None:
            found[key] = instrument
            market = account.client.markets.get(key.symbol) or {}
            if market.get("active") is False:
                report.warnings.append(f"{key.symbol} on {where} is listed but not trading now")
            continue
        if key.symbol in (account.client.markets or {}):
            report.problems.append(f"{key.symbol} on {where} is listed, but not as a {kind}")
            continue
        guess = symbols.closest(key.symbol, account.instruments)
        hint = f": did you mean {guess}?" if guess else ""
        report.problems.append(f"{key.symbol} is not a {kind} on {where}{hint}")
    report.lines.append(
        f"markets     {len(found)} of {len(cfg.instrument_keys(config))} sleeve instruments "
        "listed by their venues (public endpoints, no keys)"
    )
    return found


def _planned(config: BotConfig) -> list[PlannedSize]:
    """Each instrument's target position and smallest rebalance, in shares of NAV (risk-parity
    targets come from prices: the configured starting weights stand in for them)."""
    targets = cfg.nav_targets(config) or cfg.targets(config)
    planned = []
    for sleeve in cfg.to_sleeves(config):
        target = targets[sleeve.name]
        band = sleeve.band.width(target)
        for component in sleeve.components:
            planned.append(
                PlannedSize(
                    sleeve=sleeve.name,
                    key=component.key,
                    position=abs(target) * component.weight,
                    rebalance=band * component.weight,
                )
            )
    return planned


def _sizes(
    findings: list[SizeFinding], nav: Decimal | None, quote: str, report: OnlineReport
) -> None:
    for finding in findings:
        need = (
            f", a band-sized rebalance clears it from a NAV of "
            f"{human.money(finding.needed_nav, quote)}"
            if finding.needed_nav is not None
            else ""
        )
        report.lines.append(
            f"  {finding.key.account:<8} {finding.key.symbol:<18} minimum order "
            f"{human.money(finding.minimum, quote)}{need}"
        )
        if finding.problem is not None:
            report.problems.append(finding.problem)
    if nav is None:
        report.lines.append(
            f"sizes       give --nav AMOUNT (the portfolio's value in {quote}) to check them"
        )


def _leverage(
    config: BotConfig,
    accounts: Mapping[str, ExchangeAccount],
    listed: Mapping[InstrumentKey, Instrument],
    report: OnlineReport,
) -> None:
    """The config's leverage cap and each futures account's leverage against the most each
    perpetual allows, where it is public: an account's leverage above it is a problem (the
    exchange would refuse it at start-up), the cap only a warning."""
    cap = config.risk.max_leverage
    for key in listed:
        market: Mapping[str, Any] = accounts[key.account].client.markets.get(key.symbol) or {}
        limits = (market.get("limits") or {}).get("leverage") or {}
        most = to_decimal(limits.get("max"), "leverage", allow_none=True)
        if not market.get("swap") or most is None or most <= 0:
            continue
        wanted = config.accounts[key.account].leverage
        if wanted is not None and wanted > most:
            report.problems.append(
                f"accounts.{key.account}.leverage {wanted} is more than the "
                f"{human.number(most)}× {key.symbol} allows"
            )
        if cap is not None and cap > most:
            report.warnings.append(
                f"{key.symbol}: risk.max_leverage {human.number(cap)} is more than the "
                f"{human.number(most)}× the market allows (the market's limit applies)"
            )
