"""`rebalance-bot check-config FILE`: validate a config and print the targets it sets, offline;
with `--online`, also against the venues' markets (`bot.app.preflight`)."""

from __future__ import annotations

import argparse
import asyncio
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bot import config as cfg
from bot.config import BotConfig
from bot.core import human
from bot.core.domain import ZERO, SleeveKind
from bot.core.errors import ConfigError, UsageError
from bot.portfolios import load_portfolios


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="validate a config file and print what it says (--online: against the markets)",
        description=(
            "Validate a config file (and the REBALANCE_* environment overrides) and print the "
            "targets it sets, without contacting any exchange. With --online, also read the "
            "venues' markets and prices from their public endpoints (no keys): every symbol "
            "listed, the planned sizes against the minimum orders. Exit 0 if valid, 2 with "
            "every problem on one line if not."
        ),
    )
    parser.add_argument("file", nargs="?", type=Path, help="config file (or use --config)")
    parser.add_argument("--config", dest="config_opt", type=Path, help="config file")
    parser.add_argument("--data-dir", type=Path, help="override the config's data_dir")
    parser.add_argument(
        "--portfolio",
        metavar="NAME",
        help="of a config of several portfolios, check only this one (default: all)",
    )
    parser.add_argument(
        "--online",
        action="store_true",
        help="also check the symbols and minimum order sizes against the venues' markets "
        "(public endpoints, no keys)",
    )
    parser.add_argument(
        "--nav",
        type=_amount,
        metavar="AMOUNT",
        help="with --online: the portfolio's value in its quote currency, to check that the "
        "target positions and band-sized rebalances clear the minimum orders",
    )
    parser.set_defaults(run=run)


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the NAV must be more than 0")
    return value


def run(args: argparse.Namespace) -> int:
    path = args.file or args.config_opt
    if path is None:
        raise UsageError("check-config needs a config file (check-config FILE or --config FILE)")
    if args.nav is not None and not args.online:
        raise UsageError("--nav is used with --online (it sizes orders against the markets)")
    portfolios = load_portfolios(path, data_dir=args.data_dir, only=args.portfolio)
    for config in portfolios.configs:
        model = portfolios.follows.get(config.portfolio)
        print(summary(config) + (f"\nfollows     {model} (its targets)" if model else ""))
    if args.online:
        if len(portfolios.configs) > 1:
            raise UsageError("--online checks one portfolio: name it with --portfolio")
        config = portfolios.configs[0]
        from bot.app.preflight import check_online  # noqa: PLC0415 (ccxt loads only for it)

        report = asyncio.run(check_online(config, args.nav))
        for line in report.lines:
            print(line)
        for warning in report.warnings:
            print(f"warning     {warning}")
        if report.problems:
            count = len(report.problems)
            raise ConfigError(
                f"{count} problem{'s' if count > 1 else ''} against the markets: "
                + "; ".join(f"({n}) {p}" for n, p in enumerate(report.problems, 1))
            )
        print("online      ok")
    return 0


def sleeve_lines(config: BotConfig) -> list[str]:
    """The sleeves with the targets the bot trades (shares of NAV) and the cash they leave."""
    targets = cfg.nav_targets(config)
    strategy = config.strategy
    overlay = strategy.overlay
    lines = ["sleeves     targets as shares of NAV"]
    for sleeve in config.sleeves:
        what = ", ".join(
            f"{c.key.symbol}" + (f" ×{c.weight}" if c.weight != 1 else "")
            for c in sleeve.components(config.quote_currency)
        )
        notes = []
        if overlay is not None and sleeve.name == overlay.hedge_sleeve:
            hedged = sum((targets or {}).get(n, ZERO) for n in overlay.hedged_sleeves)
            bearish = f" (= {human.percent(-overlay.fraction * hedged)} of NAV)" if targets else ""
            notes.append(
                f"set by the overlay: 0 while bullish, -{human.percent(overlay.fraction)} of "
                f"{', '.join(overlay.hedged_sleeves)} while bearish{bearish}"
            )
        elif strategy.kind == "core-satellite" and sleeve.group is not None:
            weight = strategy.groups[sleeve.group]
            notes.append(
                f"{human.percent(sleeve.target)} of {sleeve.group} {human.percent(weight)}"
            )
        elif strategy.kind == "risk-parity":
            notes.append(f"by risk, {sleeve.group or 'all sleeves'}")
        elif sleeve.group is not None:
            notes.append(str(sleeve.group))
        share = "computed" if targets is None else human.percent(targets[sleeve.name])
        tail = f" [{'; '.join(notes)}]" if notes else ""
        lines.append(f"  {sleeve.name:<16} {sleeve.kind:<8} {share:>9}  {what}{tail}")
    if targets is not None:
        spot = sum((targets[s.name] for s in config.sleeves if s.kind is SleeveKind.SPOT), ZERO)
        lines.append(
            f"  {'cash':<16} {'':<8} {human.percent(1 - spot):>9}  what the spot targets "
            f"leave ({', '.join(config.cash_assets)}; futures margin)"
        )
    return lines


def summary(config: BotConfig) -> str:
    lines = [
        f"portfolio   {config.portfolio}",
        f"mode        {config.mode} (live also needs --live)",
        f"data dir    {config.data_dir}",
        f"interval    {human.duration(config.interval)}",
        "accounts",
    ]
    for name, account in config.accounts.items():
        where = "embedded simulator" if account.simulator else account.base_url or "exchange"
        if account.simulator:
            keys = "simulator keys"
        else:
            keys = "keys set" if account.has_credentials else "no keys"
        lines.append(f"  {name:<12} {account.exchange} {account.market}  {where}  {keys}")
    lines += sleeve_lines(config)
    strategy = config.strategy
    if strategy.kind != "static":
        groups = ", ".join(f"{g} {human.percent(w)}" for g, w in strategy.groups.items()) or "none"
        lines.append(
            f"strategy    {strategy.kind} (groups: {groups}), recomputed every "
            f"{human.duration(strategy.recompute_every)} from {strategy.timeframe} candles"
        )
    if strategy.overlay is not None:
        o = strategy.overlay
        signals = []
        if o.bearish_months or o.bullish_months:
            signals.append(f"bearish months {o.bearish_months}")
        if o.trend_window:
            signals.append(f"{o.trend_window}-candle average")
        lines.append(
            f"overlay     {o.hedge_sleeve} shorts {human.percent(o.fraction)} of "
            f"{', '.join(o.hedged_sleeves)} "
            f"when bearish ({' / '.join(signals)}, combine {o.combine})"
        )
    t = config.trigger
    rule = f"{t.kind}, band ±{human.points(t.band).lstrip('+')}"
    if t.relative_band is not None:
        rule += f", relative ±{human.percent(t.relative_band)} of target"
    if t.interval is not None:
        rule += f", every {human.duration(t.interval)}"
    if t.cron is not None:
        rule += f", cron {t.cron!r}"
    lines.append(f"trigger     {rule}, cooldown {human.duration(t.cooldown)}")
    lines.append(f"planner     to {config.planner.to}")
    r = config.risk
    q = config.quote_currency
    limits = (
        ("max order", r.max_order_notional, lambda v: human.money(v, q)),
        ("max turnover/cycle", r.max_turnover_cycle, human.percent),
        ("max turnover/day", r.max_turnover_day, human.percent),
        ("max leverage", r.max_leverage, lambda v: f"{human.number(v)}×"),
        ("max drawdown", r.max_drawdown, human.percent),
    )
    lines.append(
        "risk        "
        + ", ".join(
            f"{name} {'none' if value is None else show(value)}" for name, value, show in limits
        )
    )
    lines.append(f"kill switch file {config.kill_switch_file} or env {r.kill_switch_env}")
    return "\n".join(lines)
