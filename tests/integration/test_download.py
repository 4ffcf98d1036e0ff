"""`rebalance-bot download` against the simulator: paging, resuming, progress, nothing twice."""

from __future__ import annotations

import io
import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from bot.app.funding_rates import FundingCache
from bot.app.marketdata import OhlcvCache
from bot.app.wiring import open_market_data
from bot.cli.download import progress_bars
from bot.cli.main import main
from tests.integration.loop_support import load, write_config

HOUR_MS = 3_600_000
START = datetime(2024, 3, 1, tzinfo=UTC)
HISTORY_DAYS = 60  # 1,440 hourly candles: more than one page of 1,000

SCENARIO = f"""
history_days = {HISTORY_DAYS}

[clock]
mode = "manual"
start = 2024-03-01T00:00:00Z
step = "1h"

[assets.BTC]
price = 40000.0

[assets.ETH]
price = 2000.0

[funding]
interval = "8h"
rate = 0.0001

[markets]
quote = "USDT"

[rate_limits]
spot_weight_per_minute = 1000000
futures_weight_per_minute = 1000000

[[accounts]]
name = "main"
spot = {{ USDT = "40000" }}
futures_wallet = "20000"
"""

SLEEVES = """
[[sleeves]]
name = "bitcoin"
kind = "spot"
account = "spot"
asset = "BTC"
target = 0.5

[[sleeves]]
name = "hedge"
kind = "futures"
account = "usdm"
symbol = "ETH/USDT:USDT"
target = -0.1
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path, scenario=SCENARIO, sleeves=SLEEVES)


def _cached(tmp_path: Path, *parts: str) -> dict[str, Any]:
    path = tmp_path / "data" / Path(*parts)
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


@pytest.mark.parametrize("venue", ["binance", "bitget"])
def test_download_pages_through_history_and_a_second_run_fetches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], venue: str
) -> None:
    config_path = write_config(tmp_path, scenario=SCENARIO, sleeves=SLEEVES, venue=venue)
    swap = "binanceusdm" if venue == "binance" else "bitget"
    argv = ["download", "--config", str(config_path), "--since", "2024-01-01", "--timeframe", "1h"]
    assert main(argv) == 0
    first = capsys.readouterr().out.splitlines()
    candles = _cached(tmp_path, "ohlcv", venue, "BTC%2FUSDT", "1h.json")["candles"]
    times = [row[0] for row in candles]
    # Every closed hour from the first of January until the simulator's now, once each, in order.
    assert times[0] == int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert len(times) == HISTORY_DAYS * 24 - 1  # the hour ending at "now" has not settled
    assert times == sorted(set(times))
    assert all(b - a == HOUR_MS for a, b in itertools.pairwise(times))
    funding = _cached(tmp_path, "funding", swap, "ETH%2FUSDT%3AUSDT.json")["events"]
    assert len(funding) == HISTORY_DAYS * 3 + 1  # every 8 h, both ends included
    assert {rate for _, rate in funding} == {0.0001}
    markets = _cached(tmp_path, "markets.json")["instruments"]
    assert set(markets) == {"spot:BTC/USDT", "usdm:ETH/USDT:USDT"}
    assert "spot BTC/USDT 1h: 1439 rows" in first[0]
    assert "fetched" in first[0] and "gaps" not in first[0]

    assert main(argv) == 0
    again = capsys.readouterr().out.splitlines()
    assert all(line.endswith(", 0 fetched") for line in again), again


async def test_an_interrupted_download_resumes_after_its_last_page(
    tmp_path: Path, config_path: Path
) -> None:
    config = load(config_path)
    since = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
    async with open_market_data(config) as (accounts, clock):
        account = accounts["spot"]
        calls: list[int] = []

        async def cut_after_two_pages(
            symbol: str, timeframe: str, since_ms: int, limit: int
        ) -> list[list[float]]:
            if len(calls) == 2:
                raise ConnectionError("the line dropped")
            calls.append(since_ms)
            return await account.fetch_ohlcv(symbol, timeframe, since_ms, limit)

        def now_ms() -> int:
            return int(clock().timestamp() * 1000)

        cut = OhlcvCache(
            tmp_path / "cache", "binance", cut_after_two_pages, page_limit=500,
            clock_ms=now_ms, checkpoint=True,
        )  # fmt: skip
        with pytest.raises(ConnectionError):
            await cut.load("BTC/USDT", "1h", since)
        resumed_from: list[int] = []

        async def remember(
            symbol: str, timeframe: str, since_ms: int, limit: int
        ) -> list[list[float]]:
            resumed_from.append(since_ms)
            return await account.fetch_ohlcv(symbol, timeframe, since_ms, limit)

        whole = OhlcvCache(tmp_path / "cache", "binance", remember, page_limit=500, clock_ms=now_ms)
        series = await whole.load("BTC/USDT", "1h", since)
    assert calls == [since, since + 500 * HOUR_MS]
    assert resumed_from[0] == since + 1000 * HOUR_MS  # after the two saved pages, not again
    assert series.fetched == HISTORY_DAYS * 24 - 1000 + 1  # with the candle still forming
    times = [c.timestamp_ms for c in series.candles]
    assert times == list(range(since, since + len(times) * HOUR_MS, HOUR_MS))
    assert len(times) == HISTORY_DAYS * 24 - 1


def test_progress_is_drawn_on_a_terminal_and_not_elsewhere() -> None:
    screen = io.StringIO()
    with progress_bars(Console(file=screen, force_terminal=True, width=100)) as factory:
        assert factory is not None
        hear = factory("spot BTC/USDT 1h", 0, 1000)
        hear(500)
        hear(1000)
    assert "spot BTC/USDT 1h" in screen.getvalue()
    with progress_bars(Console(file=io.StringIO(), force_terminal=False)) as none:
        assert none is None


def test_download_refuses_a_bad_timeframe_in_one_line(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["download", "--config", str(config_path), "--timeframe", "1M"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--timeframe" in err[0]


async def test_funding_asked_from_an_earlier_day_fetches_the_head_it_lacks(
    tmp_path: Path, config_path: Path
) -> None:
    config = load(config_path)
    day = 86_400_000
    later = int(datetime(2024, 2, 1, tzinfo=UTC).timestamp() * 1000)
    async with open_market_data(config) as (accounts, clock):
        account = accounts["usdm"]

        def now_ms() -> int:
            return int(clock().timestamp() * 1000)

        cache = FundingCache(
            tmp_path / "funding", "binanceusdm", account.fetch_funding_history, clock_ms=now_ms
        )
        first = await cache.load("ETH/USDT:USDT", later)
        earlier = await cache.load("ETH/USDT:USDT", later - 10 * day)
        again = await cache.load("ETH/USDT:USDT", later - 10 * day)
    assert first.events[0][0] == later
    assert earlier.events[0][0] == later - 10 * day
    assert len(earlier.events) == len(first.events) + 30  # ten days of 8-hour events
    assert again.fetched == 0 and again.events == earlier.events


@pytest.fixture
def sim_server(tmp_path: Path) -> Iterator[str]:
    """`rebalance-bot sim` in its own process (realtime clock), its base URL."""
    scenario = tmp_path / "served.toml"
    scenario.write_text(
        SCENARIO.replace(
            'mode = "manual"\nstart = 2024-03-01T00:00:00Z', 'mode = "realtime"\nstart = "now"'
        ),
        encoding="utf-8",
    )
    root = Path(__file__).parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "sim", "--port", "0", "--scenario", str(scenario)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        listening = json.loads(process.stdout.readline())
        assert listening["event"] == "sim_listening"
        yield str(listening["base_url"])
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)


def test_download_by_exchange_and_symbols_against_the_sim_command(
    tmp_path: Path, sim_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["download", "--exchange", "binance", "--symbols", "BTC/USDT,ETH/USDT"]
    argv += ["--base-url", sim_server, "--data-dir", str(tmp_path / "cache"), "--timeframe", "1h"]
    since = (datetime.now(UTC) - timedelta(days=50)).date().isoformat()
    assert main([*argv, "--since", since]) == 0
    first = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in first] == [
        "binance BTC/USDT 1h",
        "binance ETH/USDT 1h",
    ]
    rows = int(first[0].split(": ")[1].split()[0])
    assert 50 * 24 <= rows <= 51 * 24  # from midnight 50 days ago: past one page of 1,000
    assert main([*argv, "--since", since]) == 0
    again = capsys.readouterr().out.splitlines()
    assert all(", 0 fetched" in line or ", 1 fetched" in line for line in again), again
    assert main([*argv[:4], "BTC/USDT,SOL/USDT", *argv[5:]]) == 2
    assert "--symbols: SOL/USDT not a market of binance" in capsys.readouterr().err


def test_a_live_config_downloads_history_without_its_trading_keys(
    tmp_path: Path,
    sim_server: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Candles are public: a live config without its keys (they live on the trading host)
    downloads its instruments' history; trading with it is still refused for want of them."""
    for name in [n for n in os.environ if n.upper().startswith("REBALANCE_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "live.toml"
    config.write_text(
        f'portfolio = "live"\nmode = "live"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[accounts.spot]\nexchange = "binance"\nmarket = "spot"\nbase_url = "{sim_server}"\n'
        '[[sleeves]]\nname = "btc"\nkind = "spot"\naccount = "spot"\nasset = "BTC"\n'
        "target = 0.5\n",
        encoding="utf-8",
    )
    since = (datetime.now(UTC) - timedelta(days=5)).date().isoformat()
    argv = ["download", "--config", str(config), "--since", since, "--timeframe", "1h"]
    assert main(argv) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith("spot BTC/USDT 1h: ")
    assert main(["plan", "--config", str(config)]) == 2
    assert "mode is live but accounts.spot has no api_key/secret" in capsys.readouterr().err
