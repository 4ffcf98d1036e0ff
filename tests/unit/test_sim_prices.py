"""The simulator's price paths: determinism, laziness, statistics, klines, gaps and replay."""

from __future__ import annotations

import hashlib
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebalance_sim.errors import SimConfigError
from rebalance_sim.prices import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    WEEK_MS,
    AssetSpec,
    Kline,
    PathSpec,
    PathSpecError,
    PricePath,
    PriceRangeError,
    Regime,
    RegimeState,
    markov_regimes,
    read_replay_csv,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "replay"
# 2023-11-15 03:17 UTC: deliberately not a day boundary, so t0's chunk is split in two.
T0 = 19_676 * DAY_MS + 3 * HOUR_MS + 17 * MINUTE_MS
ASSETS = (AssetSpec("BTC", 37_000.0), AssetSpec("ETH", 2_050.5, vol=0.7), AssetSpec("SOL", 61.25))


def minute_spec(**changes: object) -> PathSpec:
    fields: dict[str, object] = {"assets": ASSETS, "t0_ms": T0, "history_days": 30}
    fields.update(changes)
    return PathSpec(**fields)  # type: ignore[arg-type]


def digest(path: PricePath, start_ms: int, days: int) -> str:
    """A hash of every asset's one-minute candles over `days` days from start_ms."""
    sha = hashlib.sha256()
    for asset in path.assets:
        candles = path.klines(asset, MINUTE_MS, start_ms, days * 1440)
        rows = [(k.open_ms, k.open, k.high, k.low, k.close, k.volume) for k in candles]
        sha.update(np.array(rows, dtype=np.float64).tobytes())
    return sha.hexdigest()


def daily_log_returns(path: PricePath, asset: str, start_ms: int, days: int) -> np.ndarray:
    closes = [k.close for k in path.klines(asset, DAY_MS, start_ms, days + 1)]
    assert len(closes) == days + 1
    return np.diff(np.log(closes))


def annualized_vol(returns: np.ndarray) -> float:
    return float(returns.std(ddof=1) * math.sqrt(365))


# --- determinism and laziness ------------------------------------------------------------------


def test_prices_at_t0_equal_the_configured_prices_exactly() -> None:
    path = PricePath(minute_spec(), seed=7)
    assert path.prices_at(T0) == {"BTC": 37_000.0, "ETH": 2_050.5, "SOL": 61.25}


def test_same_seed_gives_byte_identical_paths_and_another_seed_differs() -> None:
    start = T0 - 3 * DAY_MS
    first = digest(PricePath(minute_spec(), seed=7), start, 6)
    assert digest(PricePath(minute_spec(), seed=7), start, 6) == first
    assert digest(PricePath(minute_spec(), seed=8), start, 6) != first


def test_chunk_request_order_does_not_change_any_price() -> None:
    forward, backward = PricePath(minute_spec(), 7), PricePath(minute_spec(), 7)
    day = T0 // DAY_MS * DAY_MS
    for when in (day + 10 * DAY_MS, day - 3 * DAY_MS):
        forward.price_at("BTC", when)
    for when in (day - 3 * DAY_MS, day + 10 * DAY_MS):
        backward.price_at("ETH", when)
    for offset in (-3, 10):
        start = day + offset * DAY_MS
        assert digest(forward, start, 1) == digest(backward, start, 1)


def test_evicted_chunks_are_rebuilt_identically() -> None:
    roomy = PricePath(minute_spec(), 7)
    tight = PricePath(minute_spec(), 7, max_cached_chunks=1)
    start = T0 - 5 * DAY_MS
    assert digest(tight, start, 10) == digest(roomy, start, 10)
    assert digest(tight, start, 10) == digest(roomy, start, 10)  # after churning the one slot


def test_time_before_the_history_is_refused_and_the_far_future_is_generated() -> None:
    path = PricePath(minute_spec(), 7)
    assert path.history_start_ms == (T0 - 30 * DAY_MS) // DAY_MS * DAY_MS
    assert path.price_at("BTC", path.history_start_ms) > 0
    with pytest.raises(PriceRangeError, match="history starts at"):
        path.price_at("BTC", path.history_start_ms - 1)
    assert path.price_at("SOL", T0 + 90 * DAY_MS) > 0


def test_price_is_constant_within_a_step() -> None:
    path = PricePath(minute_spec(), 7)
    minute = T0 + 5 * MINUTE_MS
    assert path.price_at("ETH", minute) == path.price_at("ETH", minute + MINUTE_MS - 1)
    assert path.price_at("ETH", minute) != path.price_at("ETH", minute + MINUTE_MS)


def test_unknown_asset_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match=r"unknown asset 'DOGE' \(known: BTC, ETH, SOL\)"):
        PricePath(minute_spec(), 7).price_at("DOGE", T0)


# --- statistics --------------------------------------------------------------------------------
# Hourly steps keep long samples cheap; GBM increments are exact, so daily log returns are
# i.i.d. normal whatever the step. With N daily returns the standard error of a realized
# volatility is about vol / sqrt(2N) and that of a correlation (1 - rho^2) / sqrt(N); each
# tolerance below is about four standard errors, and the seeds are fixed.

LONG_DAYS = 3000
LONG_T0 = 20_000 * DAY_MS


def test_realized_volatility_and_correlation_of_daily_returns_match_the_spec() -> None:
    matrix = [[1.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 1.0]]
    spec = PathSpec(
        assets=(
            AssetSpec("A", 100.0, vol=0.8),
            AssetSpec("B", 50.0, vol=0.4),
            AssetSpec("C", 10.0),
        ),
        t0_ms=LONG_T0,
        step_ms=HOUR_MS,
        history_days=LONG_DAYS,
        correlation=matrix,
    )
    path = PricePath(spec, seed=11)
    start = path.history_start_ms
    returns = np.array([daily_log_returns(path, a, start, LONG_DAYS) for a in ("A", "B", "C")])
    for row, asset in zip(returns, spec.assets, strict=True):
        # SE = vol / sqrt(6000) = 1.3% of vol; 5% is ~4 SE.
        assert annualized_vol(row) == pytest.approx(asset.vol, rel=0.05)
    realized = np.corrcoef(returns)
    # SE <= 1 / sqrt(3000) = 0.018; 0.06 is over 3 SE for every pair.
    np.testing.assert_allclose(realized, np.array(matrix), atol=0.06)


def test_a_scalar_correlation_applies_to_every_pair() -> None:
    spec = PathSpec(
        assets=(AssetSpec("A", 1.0), AssetSpec("B", 1.0), AssetSpec("C", 1.0)),
        t0_ms=LONG_T0,
        step_ms=HOUR_MS,
        history_days=LONG_DAYS,
        correlation=0.5,
    )
    path = PricePath(spec, seed=5)
    start = path.history_start_ms
    returns = np.array([daily_log_returns(path, a, start, LONG_DAYS) for a in ("A", "B", "C")])
    off_diagonal = np.corrcoef(returns)[np.triu_indices(3, k=1)]
    # SE = 0.75 / sqrt(3000) = 0.014; 0.06 is ~4 SE.
    np.testing.assert_allclose(off_diagonal, 0.5, atol=0.06)


def test_drift_is_the_trend_of_log_price_without_a_volatility_correction() -> None:
    spec = PathSpec(
        assets=tuple(AssetSpec(name, 100.0, drift=0.0, vol=2.0) for name in "ABCD"),
        t0_ms=LONG_T0,
        step_ms=HOUR_MS,
        history_days=LONG_DAYS,
        correlation=0.0,
    )
    path = PricePath(spec, seed=12)
    start = path.history_start_ms
    trends = [
        daily_log_returns(path, name, start, LONG_DAYS).mean() * 365 for name in spec.asset_names
    ]
    # Each annualized mean has SE 2.0 / sqrt(3000 / 365) = 0.70, their average 0.35. Zero drift
    # of log price gives 0; a GBM drift of zero would give -vol^2 / 2 = -2.0. The bound 1.0 is
    # ~3 SE from both.
    assert abs(float(np.mean(trends))) < 1.0


def test_a_regime_with_vol_mult_three_triples_realized_volatility() -> None:
    half = 1000
    calm_start = LONG_T0 - 2 * half * DAY_MS
    storm = Regime("storm", calm_start + half * DAY_MS, None, vol_mult={"*": 3.0})
    spec = PathSpec(
        assets=(AssetSpec("A", 100.0, vol=0.3),),
        t0_ms=LONG_T0,
        step_ms=HOUR_MS,
        history_days=2 * half,
        regimes=(storm,),
    )
    path = PricePath(spec, seed=3)
    calm = annualized_vol(daily_log_returns(path, "A", calm_start, half))
    stormy = annualized_vol(daily_log_returns(path, "A", storm.start_ms, half))
    # Each estimate has SE ~ 1/sqrt(2000) = 2.2% relative; the ratio's is ~3.2% (0.1 absolute):
    # 2.6..3.4 allows about four SE.
    assert 2.6 < stormy / calm < 3.4
    assert calm == pytest.approx(0.3, rel=0.09)


def test_synthetic_volume_averages_the_daily_quote_volume_and_rises_with_volatility() -> None:
    days = 200
    start = LONG_T0 - 2 * days * DAY_MS
    storm = Regime("storm", start + days * DAY_MS, None, vol_mult={"*": 3.0})
    spec = PathSpec(
        assets=(AssetSpec("A", 100.0, vol=0.3, daily_volume=1e6),),
        t0_ms=LONG_T0,
        step_ms=HOUR_MS,
        history_days=2 * days,
        regimes=(storm,),
    )
    path = PricePath(spec, seed=3)

    def mean_quote_volume(first_ms: int) -> float:
        # Base volume times the hourly close approximates the quote volume of each hour.
        hours = path.klines("A", HOUR_MS, first_ms, days * 24)
        return sum(k.volume * k.close for k in hours) / days

    # Weight 0.5 + 0.5 * mult * |z| / E|z| has mean 1 (calm) and 2 (vol x3): over 4800 hours
    # its standard error is under 1%, so 5% is loose.
    assert mean_quote_volume(start) == pytest.approx(1e6, rel=0.05)
    assert mean_quote_volume(storm.start_ms) == pytest.approx(2e6, rel=0.05)


def test_a_long_bear_regime_drives_prices_down_and_the_base_drift_resumes_after_it() -> None:
    bear_start, bear_end = LONG_T0, LONG_T0 + 730 * DAY_MS
    bear = Regime("bear", bear_start, bear_end, drift={"A": -2.0})
    spec = PathSpec(
        assets=(AssetSpec("A", 100.0, drift=1.5, vol=0.6),),
        t0_ms=LONG_T0,
        step_ms=HOUR_MS,
        history_days=0,
        regimes=(bear,),
    )
    path = PricePath(spec, seed=4)
    # Drift is that of log price: over two years the log return is N(-2.0 * 2, 0.6 * sqrt(2)),
    # mean -4.0 and sd 0.85; it is negative with probability 1 - 2e-6.
    during = math.log(path.price_at("A", bear_end - 1) / path.price_at("A", bear_start))
    assert during == pytest.approx(-4.0, abs=4 * 0.85)
    assert during < 0
    # Afterwards: mean +1.5 * 2 = +3.0, same sd: positive by 3.5 sd.
    after = math.log(path.price_at("A", bear_end + 730 * DAY_MS) / path.price_at("A", bear_end))
    assert after > 0


def test_regime_applies_only_inside_its_window_and_only_to_its_assets() -> None:
    frozen = Regime("frozen", T0 + DAY_MS, T0 + 2 * DAY_MS, drift={"*": 0.0}, vol_mult={"BTC": 0})
    path = PricePath(minute_spec(regimes=(frozen,)), 7)
    btc = {t: path.price_at("BTC", t) for t in range(T0 + DAY_MS, T0 + 2 * DAY_MS, HOUR_MS)}
    assert len(set(btc.values())) == 1  # no drift, no volatility: a flat line
    eth = {path.price_at("ETH", t) for t in range(T0 + DAY_MS, T0 + 2 * DAY_MS, HOUR_MS)}
    assert len(eth) > 1
    assert path.price_at("BTC", T0 + 2 * DAY_MS + HOUR_MS) != btc[T0 + DAY_MS]


def test_markov_regimes_tile_the_range_deterministically_with_their_mean_durations() -> None:
    states = (
        RegimeState("bull", mean_days=30, drift={"*": 1.0}),
        RegimeState("bear", mean_days=10, drift={"*": -1.0}, vol_mult={"*": 2.0}),
    )
    start, end = LONG_T0, LONG_T0 + 20 * 365 * DAY_MS
    regimes = markov_regimes(states, start, end, seed=9)
    assert regimes == markov_regimes(states, start, end, seed=9)
    assert regimes != markov_regimes(states, start, end, seed=10)
    assert regimes[0].start_ms == start and regimes[-1].end_ms == end
    assert all(a.end_ms == b.start_ms for a, b in itertools.pairwise(regimes))
    assert all(a.name != b.name for a, b in itertools.pairwise(regimes))
    for name, mean in (("bull", 30), ("bear", 10)):
        # Every regime but the last, clipped one. About 180 regimes per state: the mean of
        # geometric durations has SE ~ mean / sqrt(180) = 7.5%; 25% is over 3 SE.
        days = [
            (b.start_ms - a.start_ms) / DAY_MS
            for a, b in itertools.pairwise(regimes)
            if a.name == name
        ]
        assert np.mean(days) == pytest.approx(mean, rel=0.25)
    # They are ordinary scheduled regimes: a path accepts them.
    PricePath(PathSpec((AssetSpec("A", 1.0),), start, regimes=regimes, history_days=0), 1)


# --- klines ------------------------------------------------------------------------------------

INTERVALS = [
    MINUTE_MS,
    5 * MINUTE_MS,
    7 * MINUTE_MS,
    15 * MINUTE_MS,
    HOUR_MS,
    4 * HOUR_MS,
    DAY_MS,
    36 * HOUR_MS,
    WEEK_MS,
]
KLINE_PATH = PricePath(minute_spec(history_days=40), seed=21)
GAPPED_PATH = PricePath(minute_spec(history_days=40), seed=21, max_cached_chunks=4)
for _asset, _at, _factor in (
    ("BTC", T0 - 12 * DAY_MS + 7 * HOUR_MS, 0.7),  # inside a day
    ("BTC", T0 // DAY_MS * DAY_MS + 3 * DAY_MS, 1.3),  # on a chunk boundary
    ("ETH", T0 + 5 * MINUTE_MS, 2.0),
    ("SOL", T0 - 20 * DAY_MS, 0.9),
):
    GAPPED_PATH.apply_gap(_asset, _at, _factor)
PATHS = st.sampled_from([KLINE_PATH, GAPPED_PATH])


@given(
    interval=st.sampled_from(INTERVALS),
    offset_ms=st.integers(-45 * DAY_MS, 20 * DAY_MS),
    first_page=st.integers(0, 60),
    second_page=st.integers(0, 60),
    asset=st.sampled_from(["BTC", "ETH"]),
    path=PATHS,
)
def test_two_kline_pages_tile_exactly_into_one_request(
    interval: int, offset_ms: int, first_page: int, second_page: int, asset: str, path: PricePath
) -> None:
    start = T0 + offset_ms
    whole = path.klines(asset, interval, start, first_page + second_page)
    page = path.klines(asset, interval, start, first_page)
    cursor = page[-1].open_ms + interval if page else start
    assert page + path.klines(asset, interval, cursor, second_page) == whole


@given(
    interval=st.sampled_from(INTERVALS),
    offset_ms=st.integers(-45 * DAY_MS, 20 * DAY_MS),
    limit=st.integers(1, 40),
    asset=st.sampled_from(["BTC", "SOL"]),
    path=PATHS,
)
def test_klines_are_consistent_aligned_and_made_of_step_prices(
    interval: int, offset_ms: int, limit: int, asset: str, path: PricePath
) -> None:
    start = T0 + offset_ms
    candles = path.klines(asset, interval, start, limit)
    assert len(candles) == limit
    assert candles[0].open_ms >= max(start, path.history_start_ms)
    assert candles[0].open_ms - start < interval or start < path.history_start_ms
    for candle, following in itertools.pairwise(candles):
        assert following.open_ms == candle.open_ms + interval
    for candle in candles:
        assert candle.low <= min(candle.open, candle.close)
        assert max(candle.open, candle.close) <= candle.high
        assert candle.volume > 0
        assert candle.open == path.price_at(asset, candle.open_ms)
        assert candle.close == path.price_at(asset, candle.open_ms + interval - 1)


def test_weekly_candles_open_on_monday_and_days_at_midnight_utc() -> None:
    weekly = KLINE_PATH.klines("BTC", WEEK_MS, T0 - 30 * DAY_MS, 3)
    assert all((k.open_ms // DAY_MS + 3) % 7 == 0 for k in weekly)  # day 0 was a Thursday
    daily = KLINE_PATH.klines("BTC", DAY_MS, T0, 2)
    assert daily[0].open_ms == T0 // DAY_MS * DAY_MS + DAY_MS


def test_a_daily_candle_aggregates_its_minutes() -> None:
    (day,) = KLINE_PATH.klines("ETH", DAY_MS, T0 - 5 * DAY_MS, 1)
    minutes = KLINE_PATH.klines("ETH", MINUTE_MS, day.open_ms, 1440)
    assert day.open == minutes[0].open and day.close == minutes[-1].close
    assert day.high == max(k.high for k in minutes)
    assert day.low == min(k.low for k in minutes)
    assert day.volume == pytest.approx(sum(k.volume for k in minutes), rel=1e-12)


def test_klines_start_at_the_history_when_asked_for_earlier() -> None:
    candles = KLINE_PATH.klines("BTC", DAY_MS, 0, 3)
    assert candles[0].open_ms == KLINE_PATH.history_start_ms


def test_end_ms_cuts_the_current_candle_at_the_current_price() -> None:
    now = T0 + 2 * HOUR_MS + 29 * MINUTE_MS + 13_000
    candles = KLINE_PATH.klines("BTC", HOUR_MS, T0 - HOUR_MS, 100, end_ms=now)
    last = candles[-1]
    assert last.open_ms == now // HOUR_MS * HOUR_MS
    assert last.close == KLINE_PATH.price_at("BTC", now)
    minutes = KLINE_PATH.klines("BTC", MINUTE_MS, last.open_ms, 1000, end_ms=now)
    assert len(minutes) == (now - last.open_ms) // MINUTE_MS + 1  # 05:00 through 05:46
    assert last.high == max(k.high for k in minutes)
    assert last.volume == pytest.approx(sum(k.volume for k in minutes), rel=1e-12)
    assert KLINE_PATH.klines("BTC", HOUR_MS, now + HOUR_MS, 10, end_ms=now) == []


def test_window_summarizes_an_arbitrary_range_of_steps() -> None:
    end = T0 + 7 * HOUR_MS + 30_000
    window = KLINE_PATH.window("ETH", end - DAY_MS, end)
    assert window.open_ms == (end - DAY_MS) // MINUTE_MS * MINUTE_MS  # the step containing it
    minutes = KLINE_PATH.klines("ETH", MINUTE_MS, window.open_ms, 2000, end_ms=end)
    assert (window.open, window.close) == (minutes[0].open, KLINE_PATH.price_at("ETH", end))
    assert (window.high, window.low) == (max(k.high for k in minutes), min(k.low for k in minutes))


@pytest.mark.parametrize(
    ("interval", "limit", "message"),
    [
        (90_000, 1, "not a multiple of the path's step"),
        (0, 1, "not a multiple"),
        (MINUTE_MS, -1, "limit -1"),
    ],
)
def test_bad_kline_requests_are_refused(interval: int, limit: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KLINE_PATH.klines("BTC", interval, T0, limit)


# --- gaps --------------------------------------------------------------------------------------


def test_a_gap_multiplies_the_path_from_its_step_on_and_not_before() -> None:
    plain, gapped = PricePath(minute_spec(), 7), PricePath(minute_spec(), 7)
    at = T0 + 3 * HOUR_MS + 30_000
    gapped.apply_gap("ETH", at, 0.8)
    assert gapped.price_at("ETH", at - MINUTE_MS) == plain.price_at("ETH", at - MINUTE_MS)
    assert gapped.price_at("ETH", at // MINUTE_MS * MINUTE_MS) == pytest.approx(
        0.8 * plain.price_at("ETH", at), rel=1e-15
    )
    later = at + 40 * DAY_MS
    assert gapped.price_at("ETH", later) == pytest.approx(0.8 * plain.price_at("ETH", later))
    assert gapped.price_at("BTC", later) == plain.price_at("BTC", later)


def test_gaps_compose_in_any_order() -> None:
    first, second = PricePath(minute_spec(), 7), PricePath(minute_spec(), 7)
    plain = PricePath(minute_spec(), 7)
    early, late = T0 + HOUR_MS, T0 + 5 * DAY_MS
    first.apply_gap("SOL", early, 2.0)
    first.apply_gap("SOL", late, 0.25)
    second.apply_gap("SOL", late, 0.25)
    second.apply_gap("SOL", early, 2.0)
    for t in (early, late - 1, late, late + DAY_MS):
        expected = plain.price_at("SOL", t) * (2.0 if t < late else 0.5)
        assert first.price_at("SOL", t) == pytest.approx(expected, rel=1e-14)
        assert second.price_at("SOL", t) == pytest.approx(expected, rel=1e-14)
    first.apply_gap("SOL", early, 3.0)  # a second gap at the same step multiplies again
    assert first.price_at("SOL", late) == pytest.approx(plain.price_at("SOL", late) * 1.5)


def test_set_price_is_exact_at_its_step_and_scales_later_gaps() -> None:
    path, plain = PricePath(minute_spec(), 7), PricePath(minute_spec(), 7)
    later = T0 + 2 * DAY_MS
    path.apply_gap("BTC", later, 1.1)
    factor = path.set_price("BTC", T0 + HOUR_MS, 50_000.01)
    assert path.price_at("BTC", T0 + HOUR_MS) == 50_000.01
    assert factor == pytest.approx(50_000.01 / plain.price_at("BTC", T0 + HOUR_MS))
    assert path.price_at("BTC", later) == pytest.approx(
        plain.price_at("BTC", later) * 1.1 * factor, rel=1e-14
    )


def test_klines_after_a_gap_reflect_it_including_the_day_it_falls_in() -> None:
    path, plain = PricePath(minute_spec(), 7), PricePath(minute_spec(), 7)
    day = T0 // DAY_MS * DAY_MS + DAY_MS
    at = day + 13 * HOUR_MS
    path.apply_gap("BTC", at, 0.5)
    gapped_days = path.klines("BTC", DAY_MS, day, 3)
    plain_days = plain.klines("BTC", DAY_MS, day, 3)
    assert gapped_days[0].open == plain_days[0].open
    assert gapped_days[0].close == path.price_at("BTC", day + DAY_MS - 1)
    minutes = path.klines("BTC", MINUTE_MS, day, 1440)
    assert gapped_days[0].low == min(k.low for k in minutes)
    assert gapped_days[0].high == max(k.high for k in minutes)
    for gapped, base in zip(gapped_days[1:], plain_days[1:], strict=True):
        for field in ("open", "high", "low", "close"):
            assert getattr(gapped, field) == pytest.approx(0.5 * getattr(base, field), rel=1e-14)
        assert gapped.volume == base.volume


@pytest.mark.parametrize("factor", [0.0, -1.0, math.inf, math.nan])
def test_a_gap_factor_must_be_positive_and_finite(factor: float) -> None:
    with pytest.raises(ValueError, match="gap factor"):
        PricePath(minute_spec(), 7).apply_gap("BTC", T0, factor)


# --- replay ------------------------------------------------------------------------------------

REPLAY_T0 = 1_704_067_200_000  # 2024-01-01T00:00Z, the fixture's first candle


def write_csv(tmp_path: Path, lines: list[str]) -> str:
    target = tmp_path / "replay.csv"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(target)


def hourly_rows(count: int, skip: frozenset[int] = frozenset()) -> list[str]:
    """Candle h: open 100+h, high 101+h+0.5, low 99+h, close 101+h, volume 10+h."""
    rows = ["timestamp_ms,open,high,low,close,volume"]
    for h in range(count):
        if h not in skip:
            t = REPLAY_T0 + h * HOUR_MS
            rows.append(f"{t},{100 + h},{101.5 + h},{99 + h},{101 + h},{10 + h}")
    return rows


def replay_path(csv_path: str) -> PricePath:
    spec = PathSpec(ASSETS, T0 + 60 * DAY_MS, replay={"BTC": csv_path}, history_days=90)
    return PricePath(spec, seed=7)


def test_replay_price_is_the_close_of_the_last_candle_at_or_before_t(tmp_path: Path) -> None:
    path = replay_path(write_csv(tmp_path, hourly_rows(6)))
    assert path.price_at("BTC", REPLAY_T0) == 101.0
    assert path.price_at("BTC", REPLAY_T0 + 2 * HOUR_MS + 59 * MINUTE_MS) == 103.0
    assert path.price_at("BTC", REPLAY_T0 + 400 * DAY_MS) == 106.0
    assert path.first_ms("BTC") == REPLAY_T0
    with pytest.raises(PriceRangeError, match="replay starts at 2024-01-01T00:00:00Z"):
        path.price_at("BTC", REPLAY_T0 - 1)
    assert path.price_at("ETH", T0) > 0  # the other assets are still generated


def test_replay_klines_resample_the_file_and_skip_empty_intervals(tmp_path: Path) -> None:
    path = replay_path(write_csv(tmp_path, hourly_rows(12, skip=frozenset({4, 5, 6, 7}))))
    hourly = path.klines("BTC", HOUR_MS, 0, 3)
    assert hourly[1] == Kline(REPLAY_T0 + HOUR_MS, 101.0, 102.5, 100.0, 102.0, 11.0)
    four_hourly = path.klines("BTC", 4 * HOUR_MS, 0, 10)
    assert [k.open_ms for k in four_hourly] == [REPLAY_T0, REPLAY_T0 + 8 * HOUR_MS]
    assert four_hourly[1] == Kline(REPLAY_T0 + 8 * HOUR_MS, 108.0, 112.5, 107.0, 112.0, 78.0)
    (daily,) = path.klines("BTC", DAY_MS, 0, 5)
    assert daily == Kline(REPLAY_T0, 100.0, 112.5, 99.0, 112.0, 10 + 11 + 12 + 13 + 78.0)
    assert path.klines("BTC", HOUR_MS, REPLAY_T0 + 2 * HOUR_MS, 2, end_ms=REPLAY_T0 + 2 * HOUR_MS)[
        -1
    ] == Kline(REPLAY_T0 + 2 * HOUR_MS, 102.0, 103.5, 101.0, 103.0, 12.0)
    pages = path.klines("BTC", HOUR_MS, 0, 3)
    pages += path.klines("BTC", HOUR_MS, pages[-1].open_ms + HOUR_MS, 100)
    assert pages == path.klines("BTC", HOUR_MS, 0, 100)
    with pytest.raises(ValueError, match="not a multiple of the replay file's candles of BTC"):
        path.klines("BTC", MINUTE_MS, 0, 5)


def test_gaps_apply_to_a_replayed_asset(tmp_path: Path) -> None:
    path = replay_path(write_csv(tmp_path, hourly_rows(6)))
    path.apply_gap("BTC", REPLAY_T0 + 2 * HOUR_MS + 5, 2.0)
    assert path.price_at("BTC", REPLAY_T0 + HOUR_MS) == 102.0
    assert path.price_at("BTC", REPLAY_T0 + 2 * HOUR_MS) == 206.0
    assert path.price_at("BTC", REPLAY_T0 + 5 * HOUR_MS) == pytest.approx(212.0)
    assert path.klines("BTC", HOUR_MS, REPLAY_T0 + 3 * HOUR_MS, 1) == [
        Kline(REPLAY_T0 + 3 * HOUR_MS, 206.0, 209.0, 204.0, 208.0, 13.0)
    ]


def test_the_example_replay_file_loads_with_iso_times() -> None:
    candles = read_replay_csv(FIXTURES / "btcusdt_1h_2024-01-01.csv")
    assert candles.times_ms[0] == REPLAY_T0
    assert candles.period_ms == HOUR_MS
    assert len(candles.times_ms) == 24


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "empty"),
        (["time,open,high,low,close"], "lacks column"),
        (["1704067200000,1,1,1,1,1", "1704070800000,1,1,1,1,1"], "lacks column"),
        (["timestamp_ms,open,high,low,close,volume", "1704067200000,1,1,1,1,1"], "at least two"),
        (
            ["time,open,high,low,close,volume", "yesterday,1,1,1,1,1", "today,1,1,1,1,1"],
            "line 2: time 'yesterday' is not a valid time",
        ),
        (
            ["timestamp_ms,open,high,low,close,volume", "0,1,1,1,1,1", "60000,1,x,1,1,1"],
            "line 3: high 'x' is not a number",
        ),
        (
            ["timestamp_ms,open,high,low,close,volume", "0,1,1,1,1,1", "60000,1,1.5,1,2,1"],
            "line 3: inconsistent candle",
        ),
        (
            ["timestamp_ms,open,high,low,close,volume", "0,1,1,1,1,1", "60000,0,1,0,1,1"],
            "line 3: prices must be positive",
        ),
        (
            ["timestamp_ms,open,high,low,close,volume", "0,1,1,1,1,1", "60000,1,1,1,1,-1"],
            "line 3: volume -1.0 is negative",
        ),
        (
            ["timestamp_ms,open,high,low,close,volume", "60000,1,1,1,1,1", "0,1,1,1,1,1"],
            "line 3: time 0 is not after the previous 60000",
        ),
        (
            [
                "timestamp_ms,open,high,low,close,volume",
                "0,1,1,1,1,1",
                "60000,1,1,1,1,1",
                "150000,1,1,1,1,1",
            ],
            "line 4: time 150000 is off the file's grid",
        ),
        (["timestamp_ms,open,high,low,close,volume", "0,1,1,1,1,1", "60000,1,1"], "3 fields"),
    ],
)
def test_a_bad_replay_file_is_refused_with_its_line(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    with pytest.raises(PathSpecError, match=message):
        read_replay_csv(write_csv(tmp_path, lines))


def test_a_missing_replay_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(SimConfigError, match="cannot be read"):
        replay_path(str(tmp_path / "absent.csv"))


# --- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"correlation": 1.0}, r"not positive definite .*must lie in \(-0\.5, 1\)"),
        ({"correlation": -0.6}, "not positive definite"),
        ({"correlation": 1.5}, r"outside \[-1, 1\]"),
        (
            {"correlation": [[1, 0.9, 0.9], [0.9, 1, -0.9], [0.9, -0.9, 1]]},
            r"not positive definite \(smallest eigenvalue -",
        ),
        ({"correlation": [[1, 0.5], [0.5, 1]]}, r"shape \(2, 2\), expected \(3, 3\)"),
        ({"correlation": [[1, 0.5, 0], [0.4, 1, 0], [0, 0, 1]]}, "not symmetric"),
        ({"correlation": [[2, 0, 0], [0, 1, 0], [0, 0, 1]]}, "ones on its diagonal"),
        ({"step_ms": 7 * MINUTE_MS}, "divide a day"),
        ({"history_days": -1}, "must not be negative"),
        ({"replay": {"DOGE": "x.csv"}}, "replay: unknown asset"),
        ({"assets": (*ASSETS, AssetSpec("BTC", 1.0))}, "duplicate names BTC"),
        ({"assets": ()}, "at least one asset"),
        (
            {"regimes": (Regime("a", 0, None), Regime("b", DAY_MS, 2 * DAY_MS))},
            "regimes 'a' and 'b' overlap",
        ),
        ({"regimes": (Regime("a", 0, DAY_MS, drift={"DOGE": 1.0}),)}, "unknown asset"),
    ],
)
def test_an_invalid_path_spec_is_refused_with_the_reason(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(PathSpecError, match=message):
        minute_spec(**changes)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: AssetSpec("BTC", 0.0), "BTC: price is 0.0"),
        (lambda: AssetSpec("BTC", 1.0, vol=-0.1), "BTC: vol is -0.1"),
        (lambda: AssetSpec("*", 1.0), "not allowed"),
        (lambda: Regime("r", DAY_MS, DAY_MS), "not after start_ms"),
        (lambda: Regime("r", 0, None, vol_mult={"*": -1.0}), "vol_mult"),
    ],
)
def test_invalid_assets_and_regimes_are_refused(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(PathSpecError, match=message):
        build()


def test_path_spec_errors_are_value_errors_and_config_errors() -> None:
    with pytest.raises(ValueError, match="positive definite"):
        minute_spec(correlation=1.0)
    assert issubclass(PathSpecError, SimConfigError)
