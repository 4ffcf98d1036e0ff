"""OHLCV cache: paging, the on-disk cache across restarts, forming candles, gaps, duplicates."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.app.marketdata import OhlcvCache, parse_row, timeframe_ms
from bot.core.errors import DataError
from bot.core.policy.strategies.stats import Gap, ReturnKind

DAY = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
SYMBOL = "BTC/USDT:USDT"


@dataclass
class FakeExchange:
    """Serves daily candles like Binance's klines: rows at or after `since`, at most `limit`,
    the candle still forming included (its close is the last price so far)."""

    now_ms: int
    max_rows: int = 1000  # what the exchange sends at most, whatever the limit asked
    missing: set[int] = field(default_factory=set)  # day indexes the exchange never had
    repeat: set[int] = field(default_factory=set)  # day indexes sent twice, second copy newer
    broken: set[int] = field(default_factory=set)  # day indexes with a NaN close
    calls: list[tuple[str, str, int, int]] = field(default_factory=list)

    def close(self, day: int) -> float:
        if day in self.broken:
            return math.nan
        started = T0 + day * DAY
        if started + DAY > self.now_ms:  # forming: the close so far depends on the time
            return 100.0 + day + (self.now_ms - started) / DAY
        return 100.0 + day + 1

    def row(self, day: int) -> list[Any]:
        close = self.close(day)
        return [T0 + day * DAY, 100.0 + day, 102.0 + day, 99.0 + day, close, 10.0]

    async def fetch(self, symbol: str, timeframe: str, since: int, limit: int) -> list[list[Any]]:
        self.calls.append((symbol, timeframe, since, limit))
        first = max(0, -(-(since - T0) // DAY))
        rows: list[list[Any]] = []
        day = first
        while len(rows) < min(limit, self.max_rows) and T0 + day * DAY <= self.now_ms:
            if day not in self.missing:
                rows.append(self.row(day))
                if day in self.repeat:
                    newer = self.row(day)
                    newer[4] += 0.5
                    rows.append(newer)
            day += 1
        return rows


def at(day: int, hours: float = 0) -> int:
    return T0 + day * DAY + int(hours * 3_600_000)


def cache_for(tmp_path: Path, exchange: FakeExchange, limit: int = 7) -> OhlcvCache:
    return OhlcvCache(
        tmp_path, "binanceusdm", exchange.fetch, page_limit=limit, clock_ms=lambda: exchange.now_ms
    )


async def test_first_load_pages_through_history_and_keeps_the_forming_candle_apart(
    tmp_path: Path,
) -> None:
    exchange = FakeExchange(now_ms=at(30, hours=12))
    series = await cache_for(tmp_path, exchange).load(SYMBOL, "1d", since_ms=T0)
    assert [since for _, _, since, _ in exchange.calls] == [at(0), at(7), at(14), at(21), at(28)]
    assert [c.timestamp_ms for c in series.candles] == [at(d) for d in range(30)]
    assert series.partial is not None and series.partial.timestamp_ms == at(30)
    assert series.fetched == 31 and series.duplicates == 0 and series.gaps == ()


async def test_restart_fetches_only_the_missing_tail(tmp_path: Path) -> None:
    exchange = FakeExchange(now_ms=at(30, hours=12))
    await cache_for(tmp_path, exchange).load(SYMBOL, "1d", since_ms=T0)
    exchange.calls.clear()
    exchange.now_ms = at(33, hours=1)

    restarted = cache_for(tmp_path, exchange)  # a new process: nothing in memory
    series = await restarted.load(SYMBOL, "1d", since_ms=T0)
    assert [since for _, _, since, _ in exchange.calls] == [at(30)]
    assert [c.timestamp_ms for c in series.candles] == [at(d) for d in range(33)]


async def test_restart_before_the_next_candle_closes_fetches_nothing(tmp_path: Path) -> None:
    exchange = FakeExchange(now_ms=at(30, hours=12))
    first = await cache_for(tmp_path, exchange).load(SYMBOL, "1d", since_ms=T0)
    exchange.calls.clear()
    exchange.now_ms = at(30, hours=20)
    again = await cache_for(tmp_path, exchange).load(SYMBOL, "1d", since_ms=T0)
    assert exchange.calls == []
    assert again.candles == first.candles


async def test_the_forming_candle_is_never_cached_as_final(tmp_path: Path) -> None:
    exchange = FakeExchange(now_ms=at(30, hours=12))
    cache = cache_for(tmp_path, exchange)
    first = await cache.load(SYMBOL, "1d", since_ms=T0)
    assert first.partial is not None and first.partial.close == pytest.approx(130.5)
    stored = json.loads(cache.path(SYMBOL, "1d").read_text())
    assert max(row[0] for row in stored["candles"]) == at(29)

    exchange.now_ms = at(31, hours=2)
    later = await cache_for(tmp_path, exchange).load(SYMBOL, "1d", since_ms=T0)
    assert later.candles[-1].timestamp_ms == at(30)
    assert later.candles[-1].close == 131.0  # the final close, not the one seen mid-day


async def test_a_candle_is_final_only_after_the_settle_margin(tmp_path: Path) -> None:
    exchange = FakeExchange(now_ms=at(10) + 30_000)  # 30 s after day 9 closed
    cache = OhlcvCache(
        tmp_path, "binance", exchange.fetch, settle_ms=60_000, clock_ms=lambda: exchange.now_ms
    )
    series = await cache.load("BTC/USDT", "1d", since_ms=T0)
    assert series.candles[-1].timestamp_ms == at(8)
    assert series.partial is not None and series.partial.timestamp_ms == at(10)


async def test_a_longer_history_fetches_only_the_missing_head(tmp_path: Path) -> None:
    exchange = FakeExchange(now_ms=at(30, hours=12))
    await cache_for(tmp_path, exchange).load(SYMBOL, "1d", since_ms=at(20))
    exchange.calls.clear()
    series = await cache_for(tmp_path, exchange).load(SYMBOL, "1d", since_ms=at(5))
    assert [since for _, _, since, _ in exchange.calls] == [at(5), at(12), at(19)]
    assert [c.timestamp_ms for c in series.candles] == [at(d) for d in range(5, 30)]
    exchange.calls.clear()
    await cache_for(tmp_path, exchange).load(SYMBOL, "1d", since_ms=at(5))
    assert exchange.calls == []


async def test_an_exchange_sending_fewer_rows_than_asked_is_paged_on(tmp_path: Path) -> None:
    exchange = FakeExchange(now_ms=at(12, hours=1), max_rows=5)
    series = await cache_for(tmp_path, exchange, limit=1000).load(SYMBOL, "1d", since_ms=T0)
    assert [since for _, _, since, _ in exchange.calls] == [at(0), at(5), at(10)]
    assert len(series.candles) == 12


async def test_duplicated_rows_keep_the_later_copy_and_are_counted(tmp_path: Path) -> None:
    exchange = FakeExchange(now_ms=at(10, hours=1), repeat={3})
    series = await cache_for(tmp_path, exchange).load(SYMBOL, "1d", since_ms=T0)
    assert series.duplicates == 1
    assert [c.timestamp_ms for c in series.candles] == [at(d) for d in range(10)]
    assert series.candles[3].close == 104.5


async def test_missing_candles_are_flagged_and_no_return_spans_them(tmp_path: Path) -> None:
    exchange = FakeExchange(now_ms=at(10, hours=1), missing={4, 5})
    series = await cache_for(tmp_path, exchange).load(SYMBOL, "1d", since_ms=T0)
    assert series.gaps == (Gap(after_ms=at(3), before_ms=at(6), missing=2),)
    returns = series.returns(ReturnKind.SIMPLE)
    assert returns.timestamps_ms == tuple(at(d) for d in (1, 2, 3, 7, 8, 9))
    assert returns.values[0] == pytest.approx(102 / 101 - 1)


async def test_a_nan_price_is_refused_and_nothing_of_that_load_is_cached(tmp_path: Path) -> None:
    exchange = FakeExchange(now_ms=at(10, hours=1), broken={8})
    cache = cache_for(tmp_path, exchange)
    with pytest.raises(DataError, match="close nan of candle") as raised:
        await cache.load(SYMBOL, "1d", since_ms=T0)
    assert "\n" not in str(raised.value)
    assert not cache.path(SYMBOL, "1d").exists()

    exchange.broken.clear()
    exchange.calls.clear()
    series = await cache.load(SYMBOL, "1d", since_ms=T0)
    assert exchange.calls[0][2] == at(0)
    assert len(series.candles) == 10


async def test_a_corrupt_cache_is_reported_and_refetched(tmp_path: Path) -> None:
    exchange = FakeExchange(now_ms=at(10, hours=1))
    cache = cache_for(tmp_path, exchange)
    cache.path(SYMBOL, "1d").parent.mkdir(parents=True)
    cache.path(SYMBOL, "1d").write_text('{"version": 1, "candles": [[')
    series = await cache.load(SYMBOL, "1d", since_ms=T0)
    assert len(series.issues) == 1 and "discarded" in series.issues[0]
    assert len(series.candles) == 10
    assert json.loads(cache.path(SYMBOL, "1d").read_text())["version"] == 1


async def test_a_cache_file_of_another_series_is_not_trusted(tmp_path: Path) -> None:
    exchange = FakeExchange(now_ms=at(10, hours=1))
    cache = cache_for(tmp_path, exchange)
    await cache.load(SYMBOL, "1d", since_ms=T0)
    other = cache.path("ETH/USDT:USDT", "1d")
    other.parent.mkdir(parents=True)
    other.write_bytes(cache.path(SYMBOL, "1d").read_bytes())
    series = await cache.load("ETH/USDT:USDT", "1d", since_ms=T0)
    assert series.issues == (
        "cache for ETH/USDT:USDT 1d discarded (it belongs to another series): refetching",
    )


async def test_a_failed_write_leaves_the_previous_cache_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exchange = FakeExchange(now_ms=at(10, hours=1))
    cache = cache_for(tmp_path, exchange)
    await cache.load(SYMBOL, "1d", since_ms=T0)
    before = cache.path(SYMBOL, "1d").read_bytes()

    def crash(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("bot.app.marketdata.os.replace", crash)
    exchange.now_ms = at(12, hours=1)
    with pytest.raises(OSError, match="No space left"):
        await cache.load(SYMBOL, "1d", since_ms=T0)
    assert cache.path(SYMBOL, "1d").read_bytes() == before
    assert [p.name for p in cache.path(SYMBOL, "1d").parent.iterdir()] == ["1d.json"]


def test_cache_paths_keep_each_symbol_in_one_directory(tmp_path: Path) -> None:
    cache = OhlcvCache(tmp_path, "binanceusdm", FakeExchange(0).fetch)
    path = cache.path("BTC/USDT:USDT", "1d")
    assert path == tmp_path / "binanceusdm" / "BTC%2FUSDT%3AUSDT" / "1d.json"
    assert cache.path("BTC/USDT", "1d") != cache.path("BTC-USDT", "1d")


@pytest.mark.parametrize(("timeframe", "ms"), [("1m", 60_000), ("4h", 14_400_000), ("1d", DAY)])
def test_timeframes_have_fixed_lengths(timeframe: str, ms: int) -> None:
    assert timeframe_ms(timeframe) == ms


@pytest.mark.parametrize("timeframe", ["1M", "1y", "0d", "d", "1 d"])
def test_timeframes_without_a_fixed_length_are_refused(timeframe: str) -> None:
    with pytest.raises(ValueError, match="unsupported timeframe"):
        timeframe_ms(timeframe)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([T0, 1.0, 1.0, 1.0], "malformed OHLCV row"),
        (["x", 1.0, 1.0, 1.0, 1.0, 1.0], "timestamp 'x' is not a number"),
        ([T0, 1.0, 1.0, 1.0, 0.0, 1.0], "close 0.0 of candle"),
        ([T0, 1.0, -1.0, 1.0, 1.0, 1.0], "high -1.0 of candle"),
        ([T0, 1.0, 1.0, 1.0, 1.0, -3.0], "volume -3.0 of candle"),
    ],
)
def test_bad_rows_are_refused_with_one_line(row: list[Any], message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_row(row, SYMBOL)


def test_missing_volume_counts_as_zero() -> None:
    assert parse_row([T0, 1.0, 2.0, 0.5, 1.5, None], SYMBOL).volume == 0.0
