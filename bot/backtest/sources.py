"""Where a backtest's history comes from: the download cache, a CSV directory, the simulator.

Each returns a `History` on one grid with the perpetuals' funding: events from the cache when
`download` fetched them, else the given constant rate per funding interval (the simulator's
own rates for a simulated path).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from bot import config as cfg
from bot.app.download import cache_dirs
from bot.app.funding_rates import cached_funding
from bot.app.marketdata import Candle, cached_candles, timeframe_ms
from bot.backtest.history import (
    PERP_SUFFIX,
    Funding,
    History,
    MarginTier,
    align,
    period_of,
    read_csv_dir,
)
from bot.config import BotConfig
from bot.core.domain import Instrument, InstrumentKey, MarketType
from bot.core.errors import DataError

FUNDING_INTERVAL_MS = 8 * 3_600_000


def _bases(keys: frozenset[InstrumentKey]) -> dict[str, bool]:
    """Each base asset the config trades, and whether as a perpetual."""
    perps: dict[str, bool] = {}
    for key in keys:
        base = key.symbol.split("/")[0]
        perps[base] = perps.get(base, False) or ":" in key.symbol
    return perps


def _constant(keys: frozenset[InstrumentKey], rate: float) -> dict[str, Funding]:
    return {
        base: Funding(constant_rate=rate, interval_ms=FUNDING_INTERVAL_MS)
        for base, perp in _bases(keys).items()
        if perp
    }


def from_prices_dir(config: BotConfig, directory: Path, funding_rate: float) -> History:
    """One CSV per base asset (`BTC.csv`), a perpetual's own as `BTC-PERP.csv`."""
    keys = cfg.instrument_keys(config)
    series, notes = read_csv_dir(directory)
    wanted = {name: series[name] for name in _wanted_names(keys, series)}
    history = align(wanted, period_of(wanted), notes)
    history.require(keys)
    return _with_funding(history, _constant(keys, funding_rate))


def _wanted_names(keys: frozenset[InstrumentKey], series: Mapping[str, object]) -> list[str]:
    names = set()
    for key in keys:
        base = key.symbol.split("/")[0]
        own = base + PERP_SUFFIX
        name = own if ":" in key.symbol and own in series else base
        if name not in series:
            raise DataError(f"--prices: no {base}.csv for {key}")
        names.add(name)
    return sorted(names)


def from_cache(config: BotConfig, timeframe: str, funding_rate: float) -> History:
    """The candles `download` cached for every instrument (spot by base, perps as BASE-PERP)."""
    keys = cfg.instrument_keys(config)
    ohlcv_dir, funding_dir = cache_dirs(config.data_dir)
    series: dict[str, tuple[Candle, ...]] = {}
    funding = _constant(keys, funding_rate)
    notes: list[str] = []
    for key in sorted(keys):
        exchange = config.accounts[key.account].exchange
        candles, issues = cached_candles(ohlcv_dir, exchange, key.symbol, timeframe)
        notes.extend(issues)
        if not candles:
            raise DataError(
                f"no cached {timeframe} candles for {key}: run `rebalance-bot download "
                f"--config FILE --timeframe {timeframe}` first, or use --prices DIR"
            )
        base = key.symbol.split("/")[0]
        perp = ":" in key.symbol
        series[base + PERP_SUFFIX if perp else base] = candles
        if perp:
            events = cached_funding(funding_dir, exchange, key.symbol).events
            if events:
                funding[base] = Funding(events=events)
            else:
                notes.append(f"{key}: no cached funding history, constant {funding_rate} / 8 h")
    history = align(series, timeframe_ms(timeframe), notes)
    history.require(keys)
    return _with_funding(history, funding)


def from_simulator(
    config: BotConfig, years: float, timeframe: str
) -> tuple[History, dict[InstrumentKey, Instrument]]:
    """A path of the config's simulator scenario and seed, from the scenario's clock start,
    and the simulated venue's lot sizes and minimums for the config's instruments. Each
    market's series is what the simulator quotes for it (its own tick), and a candle closes at
    the next one's open (`bot.simulator.SimulatedPath`); a perpetual's maintenance margin
    follows the simulated venue's leverage brackets."""
    from bot.simulator import simulated_path  # noqa: PLC0415 (only --simulated-years loads it)

    keys = cfg.instrument_keys(config)
    period = timeframe_ms(timeframe)
    path = simulated_path(
        config.simulator.scenario, seed=config.simulator.seed, years=years, interval_ms=period
    )
    names = {key.symbol.split("/")[0] + (PERP_SUFFIX if ":" in key.symbol else "") for key in keys}
    series = {
        name: tuple(
            Candle(t, o, max(o, c), min(o, c), c, 0.0)
            for t, o, c in zip(path.open_ms, path.opens[name], path.closes[name], strict=True)
        )
        for name in sorted(names)
        if name in path.opens
    }
    if not series:
        raise DataError("the simulator's scenario prices none of the config's assets")
    history = align(series, period, (f"simulated path: seed {config.simulator.seed}",))
    history.require(keys)
    funding = {
        base: Funding(
            constant_rate=path.funding_rates.get(base, 0.0), interval_ms=path.funding_interval_ms
        )
        for base, perp in _bases(keys).items()
        if perp
    }
    tiers = {
        base: tuple(MarginTier(*tier) for tier in lot.margin_tiers)
        for base, perp in _bases(keys).items()
        if perp and (lot := path.lots.get(base + PERP_SUFFIX)) is not None and lot.margin_tiers
    }
    instruments = {}
    for key in keys:
        base, _, rest = key.symbol.partition("/")
        quote, _, settle = rest.partition(":")
        lot = path.lots.get(base + PERP_SUFFIX if settle else base)
        if lot is None:
            continue
        instruments[key] = Instrument(
            key=key,
            market_type=MarketType.SWAP if settle else MarketType.SPOT,
            base=base,
            quote=quote,
            settle=settle or None,
            amount_step=lot.amount_step,
            price_tick=lot.price_tick,
            min_amount=lot.min_amount,
            min_notional=lot.min_notional,
        )
    return replace(history, funding=funding, margin_tiers=tiers), instruments


def _with_funding(history: History, funding: dict[str, Funding]) -> History:
    return replace(history, funding=funding)
