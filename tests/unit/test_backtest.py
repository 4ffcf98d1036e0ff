"""The backtest against hand-made price files: known answers, the decision code, bad input."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot import config as cfg
from bot.app.cycle import Cycle
from bot.app.download import load_markets, save_markets
from bot.app.risk_engine import RiskEngine
from bot.app.targets import StaticTargets
from bot.audit.layout import open_portfolio_audit
from bot.backtest import sources
from bot.backtest.engine import Setup, run
from bot.backtest.history import History
from bot.backtest.runner import buy_and_hold, instruments_for, setup_of, warmup_ms
from bot.backtest.strategy import HistoryFeed, _Clock
from bot.cli.main import main
from bot.config import BotConfig, load_config
from bot.core.domain import Instrument, InstrumentKey, Leg, MarketType, Mode, Quote, Snapshot
from bot.core.errors import DataError
from bot.core.ids import cycle_id_at
from bot.core.pipeline import Schedule
from bot.core.risk import RiskState
from bot.execution.executor import ExecutionReport, Reconciliation
from bot.store.state import StateStore

DAY_MS = 86_400_000
START_MS = 1_704_067_200_000  # 2024-01-01 UTC
CAPITAL = 10_000.0

CONFIG = """
portfolio = "bt"
data_dir = "{data}"

[accounts.spot]
exchange = "binance"
market = "spot"

[[sleeves]]
name = "bitcoin"
kind = "spot"
account = "spot"
asset = "BTC"
target = 0.5

[[sleeves]]
name = "ether"
kind = "spot"
account = "spot"
asset = "ETH"
target = 0.5

[trigger]
{trigger}

[planner]
to = "target"
buy_fee_buffer = 0

[execution.paper]
spot_fee = 0
slippage_bps = 0

[risk]
min_cash_reserve = 0
max_order_fraction = 1
max_order_notional = 1000000
max_turnover_cycle = 2
max_turnover_day = 10
max_price_jump = 0.5
max_drawdown = 0.9
"""
CALENDAR = 'kind = "calendar"\ninterval = "30d"\ncooldown = "0s"\nmin_drift = 0'
BAND = 'kind = "band"\nband = 0.05\ncooldown = "0s"'


def _paths(days: int, seed: int = 5) -> dict[str, np.ndarray]:
    """Daily closes of two assets; each candle opens at the previous close (no gaps)."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, [[0.04], [0.06]], size=(2, days))
    start = np.array([[40_000.0], [2_000.0]])
    closes = start * np.exp(np.cumsum(steps, axis=1))
    return {"BTC": closes[0], "ETH": closes[1]}


def _write_prices(
    directory: Path, closes: dict[str, np.ndarray], first_open: dict[str, float]
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, close in closes.items():
        opens = np.concatenate(([first_open[name]], close[:-1]))
        lines = ["timestamp,open,high,low,close,volume"]
        for i, (o, c) in enumerate(zip(opens.tolist(), close.tolist(), strict=True)):
            lines.append(f"{START_MS + i * DAY_MS},{o!r},{max(o, c)!r},{min(o, c)!r},{c!r},1")
        (directory / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _fine_markets(data_dir: Path) -> None:
    """Lots far finer than a cent, so rounding stays below the references' tolerance."""
    save_markets(
        data_dir,
        {
            InstrumentKey("spot", f"{base}/USDT"): Instrument(
                key=InstrumentKey("spot", f"{base}/USDT"),
                market_type=MarketType.SPOT,
                base=base,
                quote="USDT",
                settle=None,
                amount_step=Decimal("1e-18"),
                price_tick=Decimal("1e-8"),
            )
            for base in ("BTC", "ETH")
        },
    )


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    closes = _paths(400)
    prices = tmp_path / "prices"
    _write_prices(prices, closes, {"BTC": 40_000.0, "ETH": 2_000.0})
    _fine_markets(tmp_path / "data")
    return tmp_path, prices, closes


def _config(tmp_path: Path, trigger: str) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(CONFIG.format(data=tmp_path / "data", trigger=trigger), encoding="utf-8")
    return path


def _reference(closes: dict[str, np.ndarray], every: int) -> tuple[float, float]:
    """Final NAV of 50/50 rebalanced at the close of step 0, every, 2·every … (filled at the next
    open, which is that close), and of buy-and-hold; zero fees. Independent of the bot's code."""
    btc, eth = closes["BTC"], closes["ETH"]
    n = len(btc)
    a = np.array([CAPITAL / 2 / 40_000.0, CAPITAL / 2 / 2_000.0])
    hold = a.copy()
    for t in range(n - 1):
        if t % every == 0:
            nav = a[0] * btc[t] + a[1] * eth[t]
            a = np.array([nav / 2 / btc[t], nav / 2 / eth[t]])
    final = a[0] * btc[-1] + a[1] * eth[-1]
    held = hold[0] * btc[-1] + hold[1] * eth[-1]
    return float(final), float(held)


def test_calendar_rebalancing_to_50_50_matches_an_independent_reference(
    world: tuple[Path, Path, dict[str, np.ndarray]],
) -> None:
    tmp_path, prices, closes = world
    config = load_config(_config(tmp_path, CALENDAR), env={})
    history = sources.from_prices_dir(config, prices, 0.0)
    instruments, notes = instruments_for(config, load_markets(config.data_dir))
    assert notes == []
    setup = setup_of(config, instruments, Decimal(str(CAPITAL)), history)
    result = run(setup, history)
    expected, held = _reference(closes, every=30)
    assert float(result.nav[-1]) == pytest.approx(expected, rel=1e-9)
    assert len(result.decisions) == len(range(0, len(closes["BTC"]) - 1, 30))
    hold = buy_and_hold(setup, history)
    assert float(hold.nav[-1]) == pytest.approx(held, rel=1e-9)
    assert expected != pytest.approx(held, rel=1e-3)  # the rebalancing made a difference


def _backtest(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["backtest", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_is_byte_identical_for_the_same_inputs_and_covers_every_run(
    world: tuple[Path, Path, dict[str, np.ndarray]], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, prices, _ = world
    argv = ["--config", str(_config(tmp_path, BAND)), "--prices", str(prices), "--json"]
    argv += ["--compare", "band=0.02,0.10", "--compare", "to=target,band-edge"]
    code, first, err = _backtest(argv, capsys)
    assert code == 0, err
    _, second, _ = _backtest(argv, capsys)
    assert first == second
    rows = [json.loads(line) for line in first.splitlines()]
    assert [r["run"] for r in rows] == [
        "band=0.02, to=target",
        "band=0.02, to=band-edge",
        "band=0.10, to=target",
        "band=0.10, to=band-edge",
        "buy-and-hold",
        "calendar-30d",
    ]
    keys = {"final_nav", "total_return", "cagr", "volatility", "sharpe", "max_drawdown"}
    keys |= {"turnover", "fees", "funding", "rebalances", "steps", "parameters"}
    assert all(keys <= set(r) for r in rows)
    by_run = {r["run"]: r for r in rows}
    # A narrower band trades more often; band-edge trades less than going back to target.
    narrow, wide = by_run["band=0.02, to=target"], by_run["band=0.10, to=target"]
    assert narrow["rebalances"] > wide["rebalances"] > 0
    assert by_run["band=0.02, to=band-edge"]["turnover"] < narrow["turnover"]
    assert by_run["buy-and-hold"]["rebalances"] == 0
    assert all(r["steps"] == 400 for r in rows)


def _edit_btc(prices: Path, edit: str) -> None:
    """Change BTC.csv: drop a row (gap), repeat one, swap two, or spoil a price."""
    path = prices / "BTC.csv"
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    if edit == "gap":
        del rows[10:13]
    elif edit == "duplicate":
        rows.insert(20, rows[20])
    elif edit == "unsorted":
        rows[30], rows[31] = rows[31], rows[30]
    else:
        fields = rows[40].split(",")
        fields[4] = edit
        rows[40] = ",".join(fields)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("edit", "note"),
    [
        ("gap", "BTC: 3 missing candle(s) filled forward from the last close"),
        ("duplicate", "BTC.csv: 1 repeated timestamp(s), kept the last"),
        ("unsorted", "BTC.csv: rows out of order, sorted by timestamp"),
    ],
)
def test_recoverable_bad_rows_are_repaired_and_said(
    world: tuple[Path, Path, dict[str, np.ndarray]],
    capsys: pytest.CaptureFixture[str],
    edit: str,
    note: str,
) -> None:
    tmp_path, prices, _ = world
    _edit_btc(prices, edit)
    code, out, err = _backtest(
        ["--config", str(_config(tmp_path, BAND)), "--prices", str(prices)], capsys
    )
    assert code == 0, err
    assert f"note: {note}" in out
    assert "400 steps" in out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("nan", "BTC.csv line 42: close nan of candle"),
        ("0", "BTC.csv line 42: close 0.0 of candle"),
        ("-3", "BTC.csv line 42: close -3.0 of candle"),
        ("abc", "BTC.csv line 42: not six numbers"),
    ],
)
def test_a_price_that_cannot_be_true_refuses_the_file_in_one_line(
    world: tuple[Path, Path, dict[str, np.ndarray]],
    capsys: pytest.CaptureFixture[str],
    edit: str,
    message: str,
) -> None:
    tmp_path, prices, _ = world
    _edit_btc(prices, edit)
    code, out, err = _backtest(
        ["--config", str(_config(tmp_path, BAND)), "--prices", str(prices)], capsys
    )
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--compare", "bands=0.1"], "--compare bands: not a config field"),
        (["--compare", "band=wide"], "--compare band=wide:"),
        (["--compare", "band"], "use KEY=V1,V2"),
        (["--compare", "to=sideways"], "--compare to=sideways:"),
        (["--capital", "-5"], "--capital must be a positive amount"),
        (["--capital", "lots"], "--capital 'lots' is not a number"),
        (["--timeframe", "1M"], "--timeframe: unsupported timeframe"),
        (["--simulated-years", "3"], "--simulated-years needs a config with [simulator]"),
        (["--from", "2030-01-01"], "fewer than two candles between --from and --to"),
    ],
)
def test_bad_command_lines_exit_2_with_one_line(
    world: tuple[Path, Path, dict[str, np.ndarray]],
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    tmp_path, prices, _ = world
    argv = ["--config", str(_config(tmp_path, BAND))]
    if "--simulated-years" not in extra:
        argv += ["--prices", str(prices)]
    code, _out, err = _backtest([*argv, *extra], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


def test_a_live_config_backtests_without_its_trading_keys(
    world: tuple[Path, Path, dict[str, np.ndarray]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A backtest reads history, never an account: the config it studies may be live and
    its keys elsewhere. Running that config still asks for them."""
    for name in [n for n in os.environ if n.upper().startswith("REBALANCE_")]:
        monkeypatch.delenv(name)
    tmp_path, prices, _ = world
    config = _config(tmp_path, BAND)
    config.write_text('mode = "live"\n' + config.read_text(), encoding="utf-8")
    code, out, err = _backtest(["--config", str(config), "--prices", str(prices), "--json"], capsys)
    assert code == 0, err
    assert "buy-and-hold" in out
    assert main(["plan", "--config", str(config)]) == 2
    assert "mode is live but accounts.spot has no api_key/secret" in capsys.readouterr().err


def test_without_a_download_the_cache_source_says_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _backtest(["--config", str(_config(tmp_path, BAND))], capsys)
    assert code == 2
    assert "no cached 1d candles for spot:BTC/USDT: run `rebalance-bot download" in err


def test_the_report_is_one_self_contained_page_with_every_run(
    world: tuple[Path, Path, dict[str, np.ndarray]], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, prices, _ = world
    report = tmp_path / "report.html"
    argv = ["--config", str(_config(tmp_path, BAND)), "--prices", str(prices)]
    code, _, err = _backtest(
        [*argv, "--compare", "to=target,band-edge", "--report", str(report)], capsys
    )
    assert code == 0, err
    page = report.read_text(encoding="utf-8")
    for name in ("to=target", "to=band-edge", "buy-and-hold", "calendar-30d"):
        assert f"<th>{name}</th>" in page
    assert page.count("data:image/png;base64,") == 5  # equity, drawdown, turnover, 2 weights
    assert 'src="http' not in page and "<script" not in page


class _SnapshotReader:
    """The daemon's reader port, answering with the snapshot the backtest decided on."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot_value = snapshot

    async def snapshot(self) -> Snapshot:
        return self.snapshot_value

    async def not_trading(self, keys: Iterable[InstrumentKey]) -> Mapping[InstrumentKey, str]:
        return {}


class _RecordingExecutor:
    """The daemon's executor port: records the legs the cycle would send, sends nothing."""

    def __init__(self) -> None:
        self.sent: list[tuple[Leg, ...]] = []

    async def reconcile(self, cycle_id: str) -> Reconciliation:
        return Reconciliation()

    async def execute(
        self,
        legs: Sequence[Leg],
        cycle_id: str,
        quotes: Mapping[InstrumentKey, Quote],
        *,
        halted: Callable[[], str | None] = lambda: None,
    ) -> ExecutionReport:
        self.sent.append(tuple(legs))
        return ExecutionReport()

    def stop(self) -> None:
        return None


async def test_the_daemons_cycle_sends_the_legs_the_backtest_traded_on_the_same_snapshots(
    world: tuple[Path, Path, dict[str, np.ndarray]],
) -> None:
    """At every step the backtest traded, the daemon's own `Cycle` (reader, risk engine, store
    and audit log as the daemon wires them; only the exchange ports replaced) is given the same
    snapshot, risk state and schedule, and sends exactly the backtest's legs."""
    tmp_path, prices, _ = world
    config = load_config(_config(tmp_path, 'band = 0.05\ncooldown = "3d"'), env={})
    history = sources.from_prices_dir(config, prices, 0.0)
    instruments, _ = instruments_for(config, load_markets(config.data_dir))
    setup = setup_of(config, instruments, Decimal(str(CAPITAL)), history)
    seen: dict[int, tuple[Snapshot, RiskState, Schedule]] = {}

    def watch(step: int, snapshot: Snapshot, risk: RiskState, schedule: Schedule, _: Any) -> None:
        seen[step] = (snapshot, risk, schedule)

    result = run(setup, history, watch=watch)
    assert len(result.decisions) >= 3
    for step, legs in result.decisions:
        snapshot, risk, schedule = seen[step]
        sent = await _daemon_cycle(
            tmp_path / f"daemon-{step}", config, setup, snapshot, risk, schedule
        )
        assert sent == [legs], step


async def _daemon_cycle(
    directory: Path,
    config: BotConfig,
    setup: Setup,
    snapshot: Snapshot,
    risk: RiskState,
    schedule: Schedule,
) -> list[tuple[Leg, ...]]:
    def clock() -> datetime:
        return snapshot.time

    executor = _RecordingExecutor()
    with StateStore.open(directory, config.portfolio, clock) as store:
        if schedule.last_rebalance is not None:
            at = schedule.last_rebalance
            store.record_cycle(cycle_id_at(at), at, at, "traded", True)
        with open_portfolio_audit(store, clock) as audit:
            cycle = Cycle(
                portfolio=config.portfolio,
                mode=Mode.DRY_RUN,
                reader=_SnapshotReader(snapshot),
                executor=executor,
                store=store,
                audit=audit,
                policy=setup.policy,
                target_source=StaticTargets(cfg.targets(config)),
                clock=clock,
                risk=RiskEngine(
                    risk, store=store, audit=audit, kill_switch=lambda: None, clock=clock
                ),
            )
            await cycle.run()
    return executor.sent


async def test_the_strategy_feed_resamples_and_never_shows_a_candle_from_the_future() -> None:
    hours = 24 * 5
    opens = np.arange(hours, dtype=np.float64) + 100.0
    closes = opens + 0.5
    times = START_MS + np.arange(hours, dtype=np.int64) * 3_600_000
    history = History(times, 3_600_000, {"BTC": opens}, {"BTC": closes})
    clock = _Clock()
    feed = HistoryFeed("binance", "spot", history, clock)
    clock.now = datetime.fromtimestamp((START_MS + 2 * DAY_MS + 5 * 3_600_000) / 1000, UTC)
    rows = await feed.fetch_ohlcv("BTC/USDT", "1d", START_MS, 1000)
    # Two whole days, then the day in progress: its first five hours, closing at the latest close.
    assert [r[0] for r in rows] == [START_MS, START_MS + DAY_MS, START_MS + 2 * DAY_MS]
    assert rows[0][1:5] == [100.0, 123.5, 100.0, 123.5]
    assert rows[1][1:5] == [124.0, 147.5, 124.0, 147.5]
    assert rows[2][1:5] == [148.0, 152.5, 148.0, 152.5]
    assert await feed.fetch_ohlcv("BTC/USDT", "1d", START_MS + DAY_MS, 1) == [rows[1]]
    with pytest.raises(DataError, match="not whole"):
        await feed.fetch_ohlcv("BTC/USDT", "30m", START_MS, 10)


def test_risk_parity_targets_follow_the_volatilities_the_walk_has_seen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ERC over two sleeves is inverse volatility: BTC calm then wild, ETH steady. The
    daemon's strategy code, fed by the backtest, must shift weight away from BTC once its
    returns turn wild, and not before (no look-ahead)."""
    rng = np.random.default_rng(9)
    days = 240
    btc_vol = np.where(np.arange(days) < 150, 0.01, 0.06)
    btc = 40_000.0 * np.exp(np.cumsum(rng.normal(0.0, btc_vol)))
    eth = 2_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, days)))
    prices = tmp_path / "prices"
    _write_prices(prices, {"BTC": btc, "ETH": eth}, {"BTC": 40_000.0, "ETH": 2_000.0})
    _fine_markets(tmp_path / "data")
    strategy = (
        '[strategy]\nkind = "risk-parity"\nrecompute_every = "1d"\ntimeframe = "1d"\n'
        'lookback = 30\n[strategy.risk_parity]\nweighting = "erc"\nscope = "all"\n'
    )
    path = _config(tmp_path, BAND)
    path.write_text(path.read_text(encoding="utf-8") + strategy, encoding="utf-8")
    config = load_config(path, env={})
    full = sources.from_prices_dir(config, prices, 0.0)
    history = full.window(int(full.open_ms[0]) + warmup_ms(config), None)
    instruments, _ = instruments_for(config, load_markets(config.data_dir))
    setup = setup_of(config, instruments, Decimal(str(CAPITAL)), full)
    targets: dict[int, Mapping[str, Decimal]] = {}

    def watch(step: int, snapshot: Snapshot, risk: RiskState, schedule: Schedule, _: Any) -> None:
        targets[step] = setup.targets(snapshot.time, snapshot)

    run(setup, history, watch=watch)
    share = {step: float(t["bitcoin"] / (t["bitcoin"] + t["ether"])) for step, t in targets.items()}
    wild_from = 150 - (days - history.steps)  # the step whose candle is BTC's first wild one
    before = [share[s] for s in range(wild_from + 1)]  # its own close: not settled, unseen
    after = [share[s] for s in range(history.steps - 20, history.steps)]
    assert min(before) > 0.6  # calm BTC carries more weight than ETH
    assert share[wild_from + 3] < share[wild_from]  # seen once its candle has closed
    assert float(np.mean(after)) < 0.45  # once its returns are wild, less


def test_a_short_perpetual_receives_funding_at_every_event_it_is_held_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Flat prices, half the capital long spot BTC and half short the BTC perpetual: nothing to
    rebalance, and every 8-hour event pays the short 0.01 % of its notional."""
    days = 30
    flat = {"BTC": np.full(days, 40_000.0)}
    prices = tmp_path / "prices"
    _write_prices(prices, flat, {"BTC": 40_000.0})
    hedge = (
        '\n[accounts.usdm]\nexchange = "binanceusdm"\nmarket = "swap"\n\n'
        '[[sleeves]]\nname = "hedge"\nkind = "futures"\naccount = "usdm"\n'
        'symbol = "BTC/USDT:USDT"\ntarget = -0.5\n'
    )
    text = CONFIG.format(data=tmp_path / "data", trigger=BAND)
    text = text.replace('name = "ether"', 'name = "unused"').replace(
        '[[sleeves]]\nname = "unused"\nkind = "spot"\naccount = "spot"\nasset = "ETH"\n'
        "target = 0.5\n",
        hedge,
    )
    path = tmp_path / "bot.toml"
    path.write_text(text, encoding="utf-8")
    argv = ["--config", str(path), "--prices", str(prices), "--funding-rate", "0.0001", "--json"]
    code, out, err = _backtest(argv, capsys)
    assert code == 0, err
    run_row = json.loads(out.splitlines()[0])
    events = 3 * days  # 08:00, 16:00 and the next midnight of every day walked
    assert run_row["rebalances"] == 0
    assert run_row["funding"] == pytest.approx(-0.5 * events, rel=1e-12)  # received
    assert run_row["final_nav"] == pytest.approx(CAPITAL + 0.5 * events, rel=1e-12)


def test_a_drawdown_halt_stops_the_run_trading_as_it_stops_the_daemon_and_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    days = 60
    btc = np.full(days, 40_000.0)
    btc[20:] = 24_000.0  # a 40 % fall in one day: half the portfolio, a 20 % NAV drawdown
    eth = np.full(days, 2_000.0)
    eth[40:] = 3_000.0  # later, far out of band: a running bot would rebalance
    prices = tmp_path / "prices"
    _write_prices(prices, {"BTC": btc, "ETH": eth}, {"BTC": 40_000.0, "ETH": 2_000.0})
    path = _config(tmp_path, BAND)
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "max_drawdown = 0.9", 'max_drawdown = 0.15\ndrawdown_window = "3d"'
        ),
        encoding="utf-8",
    )
    code, out, err = _backtest(["--config", str(path), "--prices", str(prices)], capsys)
    assert code == 0, err
    assert "note: config: 2024-01-22 00:00 ACTIVE → HALTED: drawdown: NAV" in out
    run_row = next(line for line in out.splitlines() if line.startswith("│ config"))
    assert run_row.split("│")[11].strip() == "0"  # no rebalance once halted


def _hedge(tmp_path: Path, leverage: str, band: str = "0.9") -> Path:
    """Half the capital long spot BTC, half short the BTC perpetual (a futures account with
    `leverage`), by default a band too wide to ever trade."""
    hedge = (
        f'\n[accounts.usdm]\nexchange = "binanceusdm"\nmarket = "swap"\n{leverage}\n\n'
        '[[sleeves]]\nname = "hedge"\nkind = "futures"\naccount = "usdm"\n'
        'symbol = "BTC/USDT:USDT"\ntarget = -0.5\n'
    )
    text = CONFIG.format(data=tmp_path / "data", trigger=f'band = {band}\ncooldown = "0s"')
    text = text.replace(
        '[[sleeves]]\nname = "ether"\nkind = "spot"\naccount = "spot"\nasset = "ETH"\n'
        "target = 0.5\n",
        hedge,
    )
    path = tmp_path / "bot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_over_levered_hedge_is_liquidated_where_its_margin_meets_maintenance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """BTC rises 0.2 % a day; the short's futures wallet holds 1/10 of its notional (leverage
    10). Where the wallet plus the short's loss falls to 0.5 % of its notional the exchange
    closes it, and the wallet's rest goes in the clearance fee: the run holds spot only."""
    days = 80
    btc = 40_000.0 * 1.002 ** np.arange(1, days + 1)
    prices = tmp_path / "prices"
    _write_prices(prices, {"BTC": btc}, {"BTC": 40_000.0})
    config = load_config(_hedge(tmp_path, "leverage = 10"), env={})
    history = sources.from_prices_dir(config, prices, 0.0)
    instruments, _ = instruments_for(config, load_markets(config.data_dir))
    setup = setup_of(config, instruments, Decimal(str(CAPITAL)), history)

    short, wallet, cash = 0.125, 500.0, 4_500.0  # 5,000 of each side at 40,000; 5,000 / 10
    balance = wallet - short * (btc - 40_000.0)
    first = int(np.flatnonzero(balance <= 0.005 * short * btc)[0])
    assert 30 < first < days - 10
    expected = short * btc + cash + np.where(np.arange(days) < first, balance, 0.0)

    result = run(setup, history)
    assert result.decisions == ()
    (liquidation,) = result.liquidations
    assert (liquidation.step, liquidation.account) == (first, "usdm")
    assert liquidation.symbols == ("BTC/USDT:USDT",)
    assert liquidation.cleared > 0  # the clearance fee took more than the wallet had left
    assert np.max(np.abs(result.nav / expected - 1.0)) < 1e-9
    dense = run(setup, history, dense=True)
    assert dense.liquidations == result.liquidations
    assert np.max(np.abs(dense.nav / result.nav - 1.0)) < 1e-12
    hold = buy_and_hold(setup, history)
    assert hold.metrics.liquidations == 1
    assert np.max(np.abs(hold.nav / expected - 1.0)) < 1e-9

    argv = ["--config", str(tmp_path / "bot.toml"), "--prices", str(prices), "--funding-rate", "0"]
    code, out, err = _backtest([*argv, "--json"], capsys)
    assert code == 0, err
    rows = {r["run"]: r for r in map(json.loads, out.splitlines())}
    assert rows["config"]["liquidations"] == rows["buy-and-hold"]["liquidations"] == 1
    code, out, err = _backtest(argv, capsys)
    assert code == 0, err
    assert "note: config: 2024-02-16 00:00 usdm liquidated: BTC/USDT:USDT" in out


def test_the_same_hedge_with_its_whole_notional_as_margin_is_not_liquidated(
    tmp_path: Path,
) -> None:
    days = 80
    btc = 40_000.0 * 1.002 ** np.arange(1, days + 1)
    prices = tmp_path / "prices"
    _write_prices(prices, {"BTC": btc}, {"BTC": 40_000.0})
    config = load_config(_hedge(tmp_path, ""), env={})
    history = sources.from_prices_dir(config, prices, 0.0)
    instruments, _ = instruments_for(config, load_markets(config.data_dir))
    result = run(setup_of(config, instruments, Decimal(str(CAPITAL)), history), history)
    assert result.liquidations == ()
    expected = 0.125 * btc + 5_000.0 - 0.125 * (btc - 40_000.0)  # the hedge holds NAV flat
    assert np.max(np.abs(result.nav / expected - 1.0)) < 1e-9


def test_a_liquidated_hedge_is_not_opened_again_without_margin(tmp_path: Path) -> None:
    """The same hedge with a 5 % band: after the liquidation the trigger wants the short back,
    and the daemon's risk limits do not open it on an empty wallet: the run trades spot only."""
    days = 80
    btc = 40_000.0 * 1.002 ** np.arange(1, days + 1)
    prices = tmp_path / "prices"
    _write_prices(prices, {"BTC": btc}, {"BTC": 40_000.0})
    config = load_config(_hedge(tmp_path, "leverage = 10", band="0.05"), env={})
    history = sources.from_prices_dir(config, prices, 0.0)
    instruments, _ = instruments_for(config, load_markets(config.data_dir))
    result = run(setup_of(config, instruments, Decimal(str(CAPITAL)), history), history)
    (liquidation,) = result.liquidations
    after = [f for f in result.fills if f.step > liquidation.step and ":" in f.key.symbol]
    assert after == []
    assert any(step > liquidation.step for step, _ in result.decisions)  # it kept deciding


def test_a_strategy_run_skips_between_recomputations_and_decides_what_every_step_decides(
    tmp_path: Path,
) -> None:
    """Hourly steps, risk parity on daily candles: the targets change once a day at most, so
    the scan may skip the hours between (deciding where a sleeve nears its band or the
    strategy is due), and must decide, fill and value exactly as deciding every hour does."""
    rng = np.random.default_rng(4)
    hours = 75 * 24
    vols = np.where(np.arange(hours) < 50 * 24, 0.004, 0.02)
    closes = {
        "BTC": 40_000.0 * np.exp(np.cumsum(rng.normal(0.0, vols))),
        "ETH": 2_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.008, hours))),
    }
    prices = tmp_path / "prices"
    prices.mkdir()
    for name, close in closes.items():
        opens = np.concatenate(([close[0]], close[:-1]))
        rows = ["timestamp,open,high,low,close,volume"] + [
            f"{START_MS + i * 3_600_000},{o!r},{max(o, c)!r},{min(o, c)!r},{c!r},1"
            for i, (o, c) in enumerate(zip(opens.tolist(), close.tolist(), strict=True))
        ]
        (prices / f"{name}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    _fine_markets(tmp_path / "data")
    strategy = (
        '[strategy]\nkind = "risk-parity"\nrecompute_every = "1d"\ntimeframe = "1d"\n'
        'lookback = 30\n[strategy.risk_parity]\nweighting = "erc"\nscope = "all"\n'
    )
    path = _config(tmp_path, 'band = 0.02\ncooldown = "0s"')
    path.write_text(path.read_text(encoding="utf-8") + strategy, encoding="utf-8")
    config = load_config(path, env={})
    full = sources.from_prices_dir(config, prices, 0.0)
    history = full.window(int(full.open_ms[0]) + warmup_ms(config), None)
    instruments, _ = instruments_for(config, load_markets(config.data_dir))

    def walk(dense: bool) -> tuple[Any, int]:
        setup = setup_of(config, instruments, Decimal(str(CAPITAL)), full)
        decided: list[int] = []
        result = run(setup, history, dense=dense, watch=lambda step, *_: decided.append(step))
        return result, len(decided)

    dense, every = walk(dense=True)
    quick, decided = walk(dense=False)
    assert every == history.steps
    assert decided < history.steps / 4  # about one decision a day, and where a sleeve moved
    assert len(dense.decisions) >= 5
    assert quick.decisions == dense.decisions
    assert quick.fills == dense.fills
    assert quick.targets == dense.targets
    assert quick.out_of_band_steps == dense.out_of_band_steps
    assert np.max(np.abs(quick.nav / dense.nav - 1.0)) < 1e-12


def test_buy_and_hold_pays_the_funding_a_run_that_never_trades_pays(tmp_path: Path) -> None:
    """The hedge at 1x with a band too wide to trade, 0.01 % funding every 8 h: buy-and-hold
    and the run hold the same portfolio, so they receive the same funding (the short receives a
    positive rate: -rate x contracts x close, three times a day) and end at the same NAV."""
    days = 60
    btc = 40_000.0 * 1.002 ** np.arange(1, days + 1)
    prices = tmp_path / "prices"
    _write_prices(prices, {"BTC": btc}, {"BTC": 40_000.0})
    config = load_config(_hedge(tmp_path, ""), env={})
    history = sources.from_prices_dir(config, prices, 0.0001)
    instruments, _ = instruments_for(config, load_markets(config.data_dir))
    setup = setup_of(config, instruments, Decimal(str(CAPITAL)), history)
    received = np.cumsum(3 * 0.0001 * 0.125 * btc)  # independent of the bot's code
    expected = 0.125 * btc + 5_000.0 - 0.125 * (btc - 40_000.0) + received

    result = run(setup, history)
    hold = buy_and_hold(setup, history)
    assert result.decisions == ()
    assert np.max(np.abs(result.nav / expected - 1.0)) < 1e-9
    assert np.max(np.abs(hold.nav / expected - 1.0)) < 1e-9
    assert hold.metrics.funding == pytest.approx(float(result.funding), rel=1e-9)
    assert hold.metrics.funding == pytest.approx(-received[-1], rel=1e-9)
