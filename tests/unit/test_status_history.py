"""The status page's history: what `StatusHistory` folds from audit records written by the real
audit writer, read back by `AuditFeed` as the log grows, and the typed views built from it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.audit.writer import AuditLog, EventType
from bot.core import human
from bot.core.domain import (
    AccountState,
    Holding,
    Instrument,
    InstrumentKey,
    MarketType,
    OutsideWallet,
    Position,
    Quote,
    Snapshot,
)
from bot.ops.feed import AuditFeed
from bot.ops.history import COARSE_STEP, KEEP, MAX_POINTS, OrderStatus, StatusHistory, Window
from bot.ops.view import HistoryView, account_views, history_view
from tests.clocks import ManualClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _drift(log: AuditLog, nav: str, bitcoin: str, *, post: bool = False) -> None:
    log.append(
        EventType.POST_TRADE_DRIFT if post else EventType.DRIFT,
        "c",
        nav=Decimal(nav),
        sleeves=[
            {
                "sleeve": "bitcoin",
                "current": Decimal(bitcoin),
                "target": Decimal("0.6"),
                "band": Decimal("0.05"),
            }
        ],
    )


def _log(tmp_path: Path, clock: ManualClock) -> AuditLog:
    return AuditLog.open(tmp_path / "audit", "p", clock)


def test_the_feed_folds_each_valuation_once_as_the_log_grows_across_days(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    history = StatusHistory()
    with _log(tmp_path, clock) as log:
        feed = AuditFeed(tmp_path / "audit", history)
        _drift(log, "100000", "0.5")
        log.append(EventType.CYCLE_END, "c", traded=True, outcome="traded", reason="2 of 2")
        assert feed.catch_up(clock.now) == 2
        assert feed.catch_up(clock.now) == 0, "nothing new: nothing read twice"
        clock.now = T0 + timedelta(hours=13)  # the next UTC day: a new file
        _drift(log, "101000.5", "0.61")
        assert feed.catch_up(clock.now) == 1

    series = history.series(Window.DAY, clock.now)
    assert [(s.time, s.nav) for s in series] == [(T0, 100000.0), (clock.now, 101000.5)]
    assert [s.sleeves["bitcoin"].current for s in series] == [0.5, 0.61]
    assert history.rebalances_in(Window.DAY, clock.now) == [T0]
    assert [(c.cycle_id, c.outcome) for c in history.cycles] == [("c", "traded")]
    assert len(list((tmp_path / "audit").glob("audit-*.jsonl"))) == 2


def test_a_line_being_written_is_left_for_the_next_read(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    history = StatusHistory()
    with _log(tmp_path, clock) as log:
        _drift(log, "100000", "0.5")
    path = next((tmp_path / "audit").glob("audit-*.jsonl"))
    whole = path.read_bytes()
    path.write_bytes(whole[:-10])  # the writer is half-way through its line
    feed = AuditFeed(tmp_path / "audit", history)
    assert feed.catch_up(clock.now) == 0
    path.write_bytes(whole)
    assert feed.catch_up(clock.now) == 1
    assert [s.nav for s in history.series(Window.DAY, clock.now)] == [100000.0]


def test_the_first_read_skips_files_older_than_the_longest_window(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    with _log(tmp_path, clock) as log:
        _drift(log, "90000", "0.5")
        clock.now = T0 + KEEP + timedelta(days=2)
        _drift(log, "95000", "0.5")
    history = StatusHistory()
    AuditFeed(tmp_path / "audit", history).catch_up(clock.now)
    assert [s.nav for s in history.series(Window.MONTH, clock.now)] == [95000.0]


def _record(event: EventType, moment: datetime, **fields: Any) -> dict[str, Any]:
    return {"event": event.value, "time": moment.isoformat(), "portfolio": "p", **fields}


def test_long_histories_are_thinned_evenly_and_keep_their_newest_point() -> None:
    history = StatusHistory(raw_points=500)
    start = T0
    for minute in range(0, 8 * 24 * 60, 5):  # 8 days, every 5 minutes: more than kept whole
        moment = start + timedelta(minutes=minute)
        history.add(_record(EventType.DRIFT, moment, nav=str(100000 + minute), sleeves=[]))
    end = start + timedelta(minutes=8 * 24 * 60 - 5)

    week = history.series(Window.WEEK, end)
    assert len(week) <= MAX_POINTS
    assert week[-1].time == end and week[-1].nav == 100000 + 8 * 24 * 60 - 5
    assert week[0].time >= end - Window.WEEK.span
    assert week[0].time - (end - Window.WEEK.span) <= timedelta(hours=1), "the window is covered"
    gaps = [b.time - a.time for a, b in itertools.pairwise(week)]
    slot = Window.WEEK.span / MAX_POINTS
    assert max(gaps) <= COARSE_STEP + 2 * slot, "older points kept hourly, recent ones thinned"
    day = history.series(Window.DAY, end)
    assert len(day) <= MAX_POINTS and day[0].time >= end - timedelta(hours=24)


def test_orders_show_their_last_outcome_and_fills_count_a_partial_fill_once() -> None:
    history = StatusHistory()
    t = T0
    cid = "rb1_20260301120000000_0000"
    order = {"account": "spot", "symbol": "BTC/USDT", "side": "buy"}
    history.add(_record(EventType.ORDER_INTENT, t, client_order_id=cid, amount="0.5", **order))
    history.add(_record(EventType.ORDER_SENT, t, client_order_id=cid))
    fill = {"client_order_id": cid, "fee_currency": "USDT", **order}
    history.add(
        _record(EventType.ORDER_PARTIALLY_FILLED, t, amount="0.2", price="60000", fee="12", **fill)
    )
    history.add(_record(EventType.ORDER_FILLED, t, amount="0.5", price="60010", fee="30", **fill))
    rejected = "rb1_20260301120000000_0001"
    history.add(
        _record(EventType.ORDER_REJECTED, t, client_order_id=rejected, reason="below minimum")
    )

    first, second = history.orders
    assert (first.client_order_id, first.status, first.detail) == (
        rejected,
        OrderStatus.REJECTED,
        "below minimum",
    )
    assert (second.status, second.amount, second.filled, second.price) == (
        OrderStatus.FILLED,
        Decimal("0.5"),
        Decimal("0.5"),
        Decimal("60010"),
    )
    assert [f.amount for f in history.fills] == [Decimal("0.3"), Decimal("0.2")]
    traded = history.traded_in(Window.DAY, t)
    assert (traded.orders, traded.fills, traded.fees) == (1, 2, {"USDT": Decimal("30")})
    assert traded.turnover == {"USDT": Decimal("30005.0")}


def test_the_history_view_is_typed_json_of_the_window() -> None:
    history = StatusHistory()
    for minutes, nav in ((0, "100000"), (30, "100500")):
        history.add(
            _record(
                EventType.DRIFT,
                T0 + timedelta(minutes=minutes),
                nav=nav,
                sleeves=[{"sleeve": "eth", "current": "0.21", "target": "0.2", "band": "0.05"}],
            )
        )
    history.add(_record(EventType.CYCLE_END, T0, traded=True))
    view = history_view(history, Window.DAY, T0 + timedelta(hours=1), "USDT")
    again = HistoryView.model_validate_json(view.model_dump_json())
    assert again == view
    assert [p.nav for p in view.nav] == [100000.0, 100500.0]
    assert [(s.sleeve, len(s.points)) for s in view.sleeves] == [("eth", 2)]
    assert view.rebalances == [T0]


def test_accounts_show_amounts_at_the_markets_precision() -> None:
    spot_key = InstrumentKey("spot", "BTC/USDT")
    perp_key = InstrumentKey("futures", "BTC/USDT:USDT")
    instruments = {
        spot_key: Instrument(
            spot_key, MarketType.SPOT, "BTC", "USDT", None, Decimal("0.00001"), Decimal("0.01")
        ),
        perp_key: Instrument(
            perp_key, MarketType.SWAP, "BTC", "USDT", "USDT", Decimal("0.001"), Decimal("0.1")
        ),
    }
    quote = Quote(Decimal("60000"), None, None, T0)
    snapshot = Snapshot(
        T0,
        "USDT",
        {
            "spot": AccountState(
                "spot",
                MarketType.SPOT,
                holdings={
                    "BTC": Holding(
                        "BTC",
                        Decimal("1.2"),
                        Decimal("0.3"),
                        outside={OutsideWallet.EARN_FLEXIBLE: Decimal("0.5")},
                    ),
                    "USDT": Holding("USDT", Decimal("1234.5")),
                },
            ),
            "futures": AccountState(
                "futures",
                MarketType.SWAP,
                margin_asset="USDT",
                wallet_balance=Decimal("20000"),
                unrealized_pnl=Decimal("-12.5"),
                available_margin=Decimal("15000"),
                positions={
                    "BTC/USDT:USDT": Position(
                        "BTC/USDT:USDT",
                        Decimal("-0.25"),
                        Decimal("60050"),
                        Decimal("60000"),
                        Decimal("-12.5"),
                    )
                },
            ),
        },
        {spot_key: quote, perp_key: quote},
    )
    nav = Decimal("111222.0")
    spot, futures = account_views(snapshot, instruments, {"spot": "binance"}, nav)

    btc, usdt = spot.holdings
    # the Earn half-coin counts in the amount and the value, and is shown apart
    assert (btc.total_text, btc.used_text, btc.price_text) == ("2.00000", "0.30000", "60,000.00")
    assert (btc.outside, btc.outside_text, usdt.outside_text) == (Decimal("0.5"), "0.50000", "")
    assert (btc.value, btc.value_text) == (Decimal("120000.0"), "120,000.00")
    assert btc.weight_text == human.percent(Decimal("120000") / nav)
    assert (usdt.total_text, usdt.value_text) == ("1,234.50", "1,234.50")
    assert spot.value_text == "121,234.50 USDT"
    (short,) = futures.positions
    assert (short.side, short.contracts_text, short.entry_price_text) == (
        "short",
        "-0.250",
        "60,050.0",
    )
    assert (short.notional_text, short.unrealized_pnl_text) == ("-15,000.00", "-12.50")
    assert futures.unrealized_pnl_text == "-12.50 USDT"
    assert futures.value_text == "19,987.50 USDT"


def test_quiet_cycles_are_cycle_rows_and_a_day_compressed_is_not_read_twice(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    history = StatusHistory()
    with _log(tmp_path, clock) as log:
        feed = AuditFeed(tmp_path / "audit", history)
        _drift(log, "100000", "0.5")
        log.begin_cycle("q1", mode="live", trading_state="ACTIVE")
        log.quiet_cycle("q1", nav=Decimal("100000"), full=1, rule="band")
        assert feed.catch_up(clock.now) == 2
        clock.now = T0 + timedelta(hours=13)  # the next UTC day: the first one is compressed
        log.begin_cycle("q2", mode="live", trading_state="ACTIVE")
        log.quiet_cycle("q2", nav=Decimal("100001"), full=1, rule="band", drift=Decimal("-0.0123"))
        assert [p.name for p in log.close_days()] == ["audit-2026-03-01.jsonl.gz"]
        assert feed.catch_up(clock.now) == 1  # only the new line: nothing folded twice
    rows = [(c.cycle_id, c.outcome, c.reason) for c in history.cycles]
    assert rows == [
        ("q2", "no-trade", "every sleeve within its band; largest drift -1.23 pp [band]"),
        ("q1", "no-trade", "every sleeve within its band [band]"),
    ]
    # the quiet cycles' NAV is charted; their weights are not (they are an earlier cycle's)
    series = history.series(Window.DAY, clock.now)
    assert [s.nav for s in series] == [100000.0, 100000.0, 100001.0]
    assert series[0].sleeves and not series[1].sleeves and not series[2].sleeves
