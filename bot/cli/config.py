"""`rebalance-bot check-config FILE`: validate a config without touching any exchange."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bot.config import BotConfig, load_config
from bot.core.domain import SleeveKind
from bot.core.errors import UsageError


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


def _pct(value: Any) -> str:
    return f"{value * 100:+.2f} %"


def summary(config: BotConfig) -> str:
    lines = [
        f"portfolio   {config.portfolio}",
        f"mode        {config.mode} (live also needs --live)",
        f"data dir    {config.data_dir}",
        f"interval    {config.interval.total_seconds():g} s",
        "accounts",
    ]
    for name, account in config.accounts.items():
        where = "embedded simulator" if account.simulator else account.base_url or "exchange"
        if account.simulator:
            keys = "simulator keys"
        else:
            keys = "keys set" if account.has_credentials else "no keys"
        lines.append(f"  {name:<12} {account.exchange} {account.market}  {where}  {keys}")
    lines.append("sleeves")
    spot_total = sum(s.target for s in config.sleeves if s.kind is SleeveKind.SPOT)
    for sleeve in config.sleeves:
        what = ", ".join(
            f"{c.key.symbol}" + (f" ×{c.weight}" if c.weight != 1 else "")
            for c in sleeve.components(config.quote_currency)
        )
        group = f" [{sleeve.group}]" if sleeve.group else ""
        lines.append(
            f"  {sleeve.name:<16} {sleeve.kind:<8} {_pct(sleeve.target):>9}  {what}{group}"
        )
    strategy = config.strategy
    if strategy.kind == "static":
        lines.append(f"  {'cash':<16} {'spot':<8} {_pct(1 - spot_total):>9}  (remainder)")
    else:
        groups = ", ".join(f"{g} {w}" for g, w in strategy.groups.items()) or "none"
        lines.append(
            f"strategy    {strategy.kind} (groups: {groups}), recomputed every "
            f"{strategy.recompute_every.total_seconds():g} s from {strategy.timeframe} candles"
        )
    if strategy.overlay is not None:
        o = strategy.overlay
        signals = []
        if o.bearish_months or o.bullish_months:
            signals.append(f"bearish months {o.bearish_months}")
        if o.trend_window:
            signals.append(f"{o.trend_window}-candle average")
        lines.append(
            f"overlay     {o.hedge_sleeve} shorts {o.fraction} of {', '.join(o.hedged_sleeves)} "
            f"when bearish ({' / '.join(signals)}, combine {o.combine})"
        )
    t = config.trigger
    rule = f"{t.kind}, band ±{t.band * 100:.2f} pp"
    if t.relative_band is not None:
        rule += f", relative ±{t.relative_band * 100:.1f} % of target"
    if t.interval is not None:
        rule += f", every {t.interval.total_seconds():g} s"
    if t.cron is not None:
        rule += f", cron {t.cron!r}"
    lines.append(f"trigger     {rule}, cooldown {t.cooldown.total_seconds():g} s")
    lines.append(f"planner     to {config.planner.to}")
    r = config.risk
    lines.append(
        "risk        "
        + ", ".join(
            f"{name} {value}"
            for name, value in (
                ("max order", r.max_order_notional),
                ("max turnover/cycle", r.max_turnover_cycle),
                ("max turnover/day", r.max_turnover_day),
                ("max leverage", r.max_leverage),
                ("max drawdown", r.max_drawdown),
            )
        )
    )
    lines.append(f"kill switch file {config.kill_switch_file} or env {r.kill_switch_env}")
    return "\n".join(lines)
