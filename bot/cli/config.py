"""`rebalance-bot check-config FILE`: validate a config without touching any exchange."""

from __future__ import annotations

import argparse
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot import config as cfg
from bot.config import BotConfig, load_config
from bot.core import human
from bot.core.domain import ZERO, Group, SleeveKind
from bot.core.errors import ConfigError, UsageError
from bot.core.policy.strategies.core_satellite import GroupedSleeve, core_satellite
from bot.core.policy.strategies.errors import StrategyError


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="validate a config file and print what it says (no network)",
        description=(
            "Validate a config file (and the REBALANCE_* environment overrides) without "
            "contacting any exchange. Exit 0 if valid, 2 with a one-line reason if not."
        ),
    )
    parser.add_argument("file", nargs="?", type=Path, help="config file (or use --config)")
    parser.add_argument("--config", dest="config_opt", type=Path, help="config file")
    parser.add_argument("--data-dir", type=Path, help="override data_dir")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = args.file or args.config_opt
    if path is None:
        raise UsageError("check-config needs a config file (check-config FILE or --config FILE)")
    config = load_config(path, data_dir=args.data_dir)
    print(summary(config))
    return 0


def resulting_targets(config: BotConfig) -> dict[str, Decimal] | None:
    """Each sleeve's target as a share of NAV, as the bot will trade it; None when a strategy
    computes them from prices (risk parity). An overlay's hedge starts at 0 (bullish)."""
    strategy = config.strategy
    hedge = strategy.overlay.hedge_sleeve if strategy.overlay is not None else None
    if strategy.kind == "risk-parity":
        return None
    if strategy.kind == "static":
        targets = cfg.targets(config)
    else:
        grouped = [
            GroupedSleeve(s.name, s.group or Group.CORE, s.kind, s.target)
            for s in config.sleeves
            if s.name != hedge
        ]
        try:
            targets = dict(core_satellite(strategy.groups, grouped).targets)
        except StrategyError as exc:
            raise ConfigError(f"strategy core-satellite: {exc}") from None
    if hedge is not None:
        targets[hedge] = ZERO
    return targets


def sleeve_lines(config: BotConfig) -> list[str]:
    """The sleeves with the targets the bot trades (shares of NAV) and the cash they leave."""
    targets = resulting_targets(config)
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
