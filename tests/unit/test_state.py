"""The state store: round-trips of every record, intent transitions, the lock and migrations."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest
from pydantic import SecretStr

import bot.store.state
from bot.core.domain import InstrumentKey, Intent, IntentState, Leg, MarketType, OrderType, Side
from bot.core.errors import StateError
from bot.core.policy.prices import PendingJump
from bot.core.risk import RiskState, TradingState
from bot.logs import register_secret
from bot.store.state import (
    MIGRATIONS,
    FillRecord,
    IntentTimes,
    StateStore,
    open_state_view,
    running_pid,
)
from tests.clocks import ManualClock

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
PORTFOLIO = "main"
CYCLE = "20260101T120000000"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[StateStore]:
    with StateStore.open(tmp_path, PORTFOLIO, clock) as opened:
        yield opened


def intent(cid: str = "rbabc123_20260101120000000_0000", **leg_fields: object) -> Intent:
    fields: dict[str, object] = {
        "index": 0,
        "sleeve": "core",
        "key": InstrumentKey("spot", "BTC/USDT"),
        "side": Side.BUY,
        "amount": D("0.00000001"),
        "price": D("98765.4321"),
    }
    fields.update(leg_fields)
    return Intent(client_order_id=cid, cycle_id=CYCLE, leg=Leg(**fields))  # type: ignore[arg-type]


# -- intents --------------------------------------------------------------------------------


def test_saved_intent_reads_back_equal_with_exact_decimals(store: StateStore) -> None:
    saved = Intent(
        client_order_id="cid-perp",
        cycle_id=CYCLE,
        leg=Leg(
            index=7,
            sleeve="hedge",
            key=InstrumentKey("usdm", "ETH/USDT:USDT"),
            side=Side.SELL,
            amount=D("0.00000001"),
            price=D("3210.1234567890123456789"),
            reduce_only=True,
            market_type=MarketType.SWAP,
            contract_size=D("10"),
        ),
        order_type=OrderType.LIMIT,
        limit_price=D("3210.10"),
    )
    store.save_intent(saved)

    loaded = store.get_intent("cid-perp")

    assert loaded == saved
    assert loaded is not None
    assert loaded.leg.notional == saved.leg.notional == D("0.00000001") * 10 * saved.leg.price
    assert str(loaded.leg.amount) == str(D("0.00000001"))
    assert str(loaded.limit_price) == "3210.10"  # the trailing zero (the exponent) survives


def test_intent_survives_close_and_reopen(tmp_path: Path, clock: ManualClock) -> None:
    with StateStore.open(tmp_path, PORTFOLIO, clock) as first:
        first.save_intent(intent("a"))
        first.mark_sent("a", clock.advance(1))
    with StateStore.open(tmp_path, PORTFOLIO, clock) as second:
        loaded = second.get_intent("a")
    assert loaded is not None
    assert loaded.state is IntentState.SENT


def test_unknown_intent_reads_as_none(store: StateStore) -> None:
    assert store.get_intent("nope") is None
    assert store.intent_times("nope") is None


def test_saving_an_existing_client_id_is_refused_and_keeps_the_first(store: StateStore) -> None:
    store.save_intent(intent("dup", amount=D("1")))
    store.mark_sent("dup", T0)

    with pytest.raises(StateError, match="dup already exists"):
        store.save_intent(intent("dup", amount=D("2")))

    kept = store.get_intent("dup")
    assert kept is not None
    assert kept.leg.amount == D("1")
    assert kept.state is IntentState.SENT


def test_a_new_intent_must_be_pending(store: StateStore) -> None:
    with pytest.raises(StateError, match="must be PENDING"):
        store.save_intent(replace(intent("x"), state=IntentState.SENT))
    assert store.get_intent("x") is None


def test_float_amount_is_refused(store: StateStore) -> None:
    with pytest.raises(StateError, match="amount must be a Decimal, not float"):
        store.save_intent(intent("f", amount=0.1))
    assert store.get_intent("f") is None


def test_non_finite_decimal_is_refused(store: StateStore) -> None:
    with pytest.raises(StateError, match="finite"):
        store.save_intent(intent("n", price=D("NaN")))


def test_intent_times_record_created_sent_and_updated(
    store: StateStore, clock: ManualClock
) -> None:
    store.save_intent(intent("t"))
    sent = clock.advance(1.5)
    store.mark_sent("t", sent)
    store.update_intent("t", state=IntentState.OPEN, at=T0 + timedelta(seconds=3))

    assert store.intent_times("t") == IntentTimes(
        created_at=T0, sent_at=sent, updated_at=T0 + timedelta(seconds=3)
    )


def test_update_records_exchange_figures_exactly(store: StateStore) -> None:
    store.save_intent(intent("u"))
    store.mark_sent("u", T0)
    store.update_intent(
        "u",
        state=IntentState.FILLED,
        exchange_order_id="123456789",
        filled=D("0.00000001"),
        average_price=D("98765.43210"),
        fee=D("0.000000000001"),
        fee_currency="BNB",
        at=T0,
    )

    loaded = store.get_intent("u")
    assert loaded is not None
    assert (loaded.state, loaded.exchange_order_id, loaded.fee_currency) == (
        IntentState.FILLED,
        "123456789",
        "BNB",
    )
    assert str(loaded.filled) == str(D("0.00000001"))
    assert str(loaded.average_price) == "98765.43210"
    assert loaded.fee == D("1E-12")


def test_update_without_at_uses_the_clock(store: StateStore, clock: ManualClock) -> None:
    store.save_intent(intent("c"))
    store.update_intent("c", error="timeout")
    later = clock.advance(60)
    store.update_intent("c", error="still nothing")
    times = store.intent_times("c")
    assert times is not None
    assert times.updated_at == later


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"leg_index": 3}, r"\['leg_index'\] cannot be updated"),
        ({"filled": 0.5}, "filled must be a Decimal, not float"),
        ({"average_price": "1.5"}, "average_price must be a Decimal, not str"),
        ({"error": 42}, "error must be text or None, not int"),
        ({"state": "LOST"}, "'LOST' is not an intent state"),
    ],
)
def test_bad_updates_are_refused(
    store: StateStore, changes: dict[str, object], message: str
) -> None:
    store.save_intent(intent("b"))
    with pytest.raises(StateError, match=message):
        store.update_intent("b", **changes)
    assert store.get_intent("b") == intent("b")


def test_updating_an_unknown_intent_is_refused(store: StateStore) -> None:
    with pytest.raises(StateError, match="no intent with client order id ghost"):
        store.update_intent("ghost", state=IntentState.FILLED)
    with pytest.raises(StateError, match="no intent with client order id ghost"):
        store.mark_sent("ghost", T0)


def test_a_final_intent_is_not_changed_even_without_a_state(store: StateStore) -> None:
    store.save_intent(intent("f"))
    store.update_intent("f", state=IntentState.REJECTED, error="-2010 insufficient balance")
    with pytest.raises(StateError, match="final intent is not changed"):
        store.update_intent("f", error="overwritten")
    loaded = store.get_intent("f")
    assert loaded is not None
    assert loaded.error == "-2010 insufficient balance"


S = IntentState
# The transition table of the brief, written out independently of the module's own.
LEGAL = {
    S.PENDING: {S.SENT, S.REJECTED, S.NOT_PLACED},
    S.SENT: {S.OPEN, S.FILLED, S.CANCELED, S.REJECTED, S.NOT_PLACED},
    S.OPEN: {S.OPEN, S.FILLED, S.CANCELED},
    S.NOT_PLACED: {S.OPEN, S.FILLED, S.CANCELED},
    S.FILLED: set(),
    S.CANCELED: set(),
    S.REJECTED: set(),
}
# How to bring a fresh PENDING intent into each state, through legal steps only.
PATHS = {
    S.PENDING: [],
    S.SENT: [S.SENT],
    S.OPEN: [S.SENT, S.OPEN],
    S.FILLED: [S.SENT, S.FILLED],
    S.CANCELED: [S.SENT, S.CANCELED],
    S.REJECTED: [S.REJECTED],
    S.NOT_PLACED: [S.NOT_PLACED],
}


@pytest.mark.parametrize("new", list(S))
@pytest.mark.parametrize("previous", list(S))
def test_transition_is_allowed_exactly_as_the_table_says(
    store: StateStore, previous: IntentState, new: IntentState
) -> None:
    store.save_intent(intent("s"))
    for step in PATHS[previous]:
        store.update_intent("s", state=step)

    if new in LEGAL[previous]:
        store.update_intent("s", state=new)
        loaded = store.get_intent("s")
        assert loaded is not None
        assert loaded.state is new
    else:
        with pytest.raises(StateError, match=f"s: {previous.value} cannot become {new.value}"):
            store.update_intent("s", state=new, error="should not stick")
        loaded = store.get_intent("s")
        assert loaded is not None
        assert loaded.state is previous
        assert loaded.error is None


def test_mark_sent_twice_is_refused(store: StateStore) -> None:
    store.save_intent(intent("m"))
    store.mark_sent("m", T0)
    with pytest.raises(StateError, match="SENT cannot become SENT"):
        store.mark_sent("m", T0 + timedelta(seconds=1))
    times = store.intent_times("m")
    assert times is not None
    assert times.sent_at == T0


def test_unfinished_intents_are_pending_sent_and_open_in_save_order(store: StateStore) -> None:
    for cid, steps in [
        ("z-pending", []),
        ("y-filled", [S.SENT, S.FILLED]),
        ("x-open", [S.SENT, S.OPEN]),
        ("w-sent", [S.SENT]),
        ("v-not-placed", [S.NOT_PLACED]),
        ("u-rejected", [S.REJECTED]),
        ("t-canceled", [S.SENT, S.CANCELED]),
    ]:
        store.save_intent(intent(cid))
        for step in steps:
            store.update_intent(cid, state=step)

    assert [i.client_order_id for i in store.unfinished_intents()] == [
        "z-pending",
        "x-open",
        "w-sent",
    ]
    assert len(store.all_intents()) == 7


def test_intents_for_cycle_returns_only_that_cycle(store: StateStore) -> None:
    store.save_intent(intent("a1"))
    store.save_intent(replace(intent("b1"), cycle_id="20260101T130000000"))
    store.save_intent(intent("a2", index=1))

    assert [i.client_order_id for i in store.intents_for_cycle(CYCLE)] == ["a1", "a2"]
    assert [i.client_order_id for i in store.intents_for_cycle("20260101T130000000")] == ["b1"]
    assert store.intents_for_cycle("20990101T000000000") == []


# -- fills, cycles --------------------------------------------------------------------------


def test_fill_round_trips_exactly(store: StateStore) -> None:
    assert store.record_fill("c1", "t1", D("0.00000001"), D("100.10"), D("0"), None, T0)
    assert store.fills() == [
        FillRecord("c1", "t1", D("0.00000001"), D("100.10"), D("0"), None, T0),
    ]
    assert str(store.fills()[0].price) == "100.10"


def test_recording_the_same_trade_twice_keeps_one_row(store: StateStore) -> None:
    assert store.record_fill("c1", "t1", D("1"), D("100"), D("0.1"), "USDT", T0)
    # the same figures in another notation and seen a second later are the same trade
    assert not store.record_fill(
        "c1", "t1", D("1.00"), D("100.0"), D("0.10"), "USDT", T0 + timedelta(seconds=1)
    )
    assert len(store.fills("c1")) == 1


def test_same_trade_with_other_figures_is_refused(store: StateStore) -> None:
    store.record_fill("c1", "t1", D("1"), D("100"), D("0.1"), "USDT", T0)
    with pytest.raises(StateError, match="trade t1 of c1 is already recorded"):
        store.record_fill("c1", "t1", D("2"), D("100"), D("0.1"), "USDT", T0)
    assert [f.amount for f in store.fills("c1")] == [D("1")]


def test_fill_without_trade_id_is_the_cumulative_fill_and_is_replaced(store: StateStore) -> None:
    store.record_fill("c1", None, D("0.4"), D("100"), D("0.01"), "USDT", T0)
    assert not store.record_fill("c1", None, D("0.40"), D("100"), D("0.01"), "USDT", T0)
    later = T0 + timedelta(seconds=5)
    assert store.record_fill("c1", None, D("1"), D("100.5"), D("0.02"), "USDT", later)

    assert store.fills("c1") == [
        FillRecord("c1", None, D("1"), D("100.5"), D("0.02"), "USDT", later),
    ]


def test_fills_are_listed_by_time_and_filtered_by_order(store: StateStore) -> None:
    store.record_fill("c2", "t9", D("1"), D("1"), D("0"), None, T0 + timedelta(seconds=2))
    store.record_fill("c1", "t2", D("1"), D("1"), D("0"), None, T0 + timedelta(seconds=1))
    store.record_fill("c1", "t1", D("1"), D("1"), D("0"), None, T0)

    assert [f.trade_id for f in store.fills()] == ["t1", "t2", "t9"]
    assert [f.trade_id for f in store.fills("c1")] == ["t1", "t2"]


def test_empty_trade_id_is_refused(store: StateStore) -> None:
    with pytest.raises(StateError, match="empty trade id"):
        store.record_fill("c1", "", D("1"), D("1"), D("0"), None, T0)


def test_last_rebalance_is_the_start_of_the_latest_cycle_that_traded(store: StateStore) -> None:
    assert store.last_rebalance() is None
    hour = timedelta(hours=1)
    store.record_cycle("c3", T0 + 3 * hour, T0 + 3 * hour, "no_trade", traded=False)
    store.record_cycle("c2", T0 + 2 * hour, T0 + 2 * hour, "traded", traded=True)
    store.record_cycle("c1", T0 + hour, T0 + hour, "traded", traded=True)

    assert store.last_rebalance() == T0 + 2 * hour
    assert store.cycle_count() == 3


def test_recording_a_cycle_twice_is_refused(store: StateStore) -> None:
    store.record_cycle("c1", T0, T0, "traded", traded=True)
    with pytest.raises(StateError, match="cycle c1 is already recorded"):
        store.record_cycle("c1", T0, T0, "no_trade", traded=False)
    assert store.cycle_count() == 1


def test_last_check_round_trips_in_utc(store: StateStore) -> None:
    assert store.last_check() is None
    paris = timezone(timedelta(hours=1))
    store.set_last_check(datetime(2026, 1, 1, 13, 0, 0, 123456, tzinfo=paris))

    checked = store.last_check()
    assert checked == datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert checked is not None
    assert checked.utcoffset() == timedelta(0)


def test_naive_time_is_refused(store: StateStore) -> None:
    with pytest.raises(StateError, match="timezone-aware"):
        store.set_last_check(datetime(2026, 1, 1))
    assert store.last_check() is None


# -- risk state, paper ledger, targets, key/values -------------------------------------------


def test_risk_state_round_trips_through_the_store(store: StateStore) -> None:
    assert store.load_risk_state() is None
    state = RiskState(
        trading=TradingState.REDUCING,
        reason="drawdown 12% within 24h",
        since=T0,
        order_times=(T0, T0 + timedelta(seconds=1)),
        turnover=((T0, D("1234.56780001")),),
        navs=((T0, D("100000.00000001")),),
        last_prices={InstrumentKey("spot", "BTC/USDT"): D("98765.4321")},
        pending_prices={InstrumentKey("usdm", "BTC/USDT:USDT"): PendingJump(D("49382.7"), 2)},
    )
    store.save_risk_state(state.to_dict())

    loaded = store.load_risk_state()
    assert loaded is not None
    assert RiskState.from_dict(loaded) == state


def test_known_secrets_never_reach_the_files_in_free_text(
    store: StateStore, tmp_path: Path
) -> None:
    secret = "StoreSecretSentinel-0a1b2c3d4e5f"
    register_secret(SecretStr(secret))
    state = RiskState(trading=TradingState.HALTED, reason=f"operator: key {secret} leaked")
    store.save_risk_state(state.to_dict())
    store.save_intent(intent("cid-1"))
    store.update_intent("cid-1", state=IntentState.REJECTED, error=f"exchange said {secret}")
    store.save_intent(replace(intent("cid-2"), error=f"noted {secret}"))

    loaded = store.load_risk_state()
    assert loaded is not None and loaded["reason"] == "operator: key ********** leaked"
    stored = store.get_intent("cid-1")
    assert stored is not None and stored.error == "exchange said **********"
    store.close()
    for path in tmp_path.iterdir():
        assert secret.encode() not in path.read_bytes(), path.name


def test_paper_trade_commits_ledger_and_fills_together(store: StateStore) -> None:
    assert store.load_paper_ledger() is None
    assert store.paper_fills() == []
    store.commit_paper_trade({"cash": "1000"}, [])
    fill = {"client_order_id": "p1", "amount": "0.00000001", "price": "100.10"}
    store.commit_paper_trade({"cash": "999.9"}, [fill])
    store.commit_paper_trade(
        {"cash": "999.8"}, [{"client_order_id": "p2"}, {"client_order_id": "p3"}]
    )

    assert store.load_paper_ledger() == {"cash": "999.8"}
    assert [f["client_order_id"] for f in store.paper_fills()] == ["p1", "p2", "p3"]
    assert store.paper_fills()[0] == fill


def test_paper_trade_that_cannot_be_stored_leaves_nothing_behind(store: StateStore) -> None:
    store.commit_paper_trade({"cash": "1000"}, [{"client_order_id": "p1"}])

    with pytest.raises(StateError, match="paper fill cannot be stored as JSON"):
        store.commit_paper_trade({"cash": "900"}, [{"client_order_id": "p2"}, {"amount": D("1")}])

    assert store.load_paper_ledger() == {"cash": "1000"}
    assert [f["client_order_id"] for f in store.paper_fills()] == ["p1"]


def test_targets_round_trip_with_their_time(store: StateStore) -> None:
    assert store.load_targets() is None
    weights = {"BTC": "0.6", "ETH": "0.40000000000000000001"}
    store.save_targets(weights, T0)
    store.save_targets({**weights, "BTC": "0.5"}, T0 + timedelta(days=1))

    assert store.load_targets() == (
        {"BTC": "0.5", "ETH": "0.40000000000000000001"},
        T0 + timedelta(days=1),
    )


def test_key_values_round_trip_and_overwrite(store: StateStore) -> None:
    assert store.get("missing") is None
    store.put("alerts", {"sent": ["a", "b"], "count": 2})
    store.put("flag", True)
    store.put("flag", False)

    assert store.get("alerts") == {"sent": ["a", "b"], "count": 2}
    assert store.get("flag") is False


def test_key_values_cannot_overwrite_the_bots_own_records(store: StateStore) -> None:
    store.save_risk_state({"version": 1})
    store.put("risk_state", "something else")
    assert store.load_risk_state() == {"version": 1}
    assert store.get("risk_state") == "something else"


@pytest.mark.parametrize("value", [D("1.5"), float("nan"), object()])
def test_value_that_is_not_json_is_refused(store: StateStore, value: object) -> None:
    with pytest.raises(StateError, match="cannot be stored as JSON"):
        store.put("k", value)
    assert store.get("k") is None


def test_everything_survives_a_reopen(tmp_path: Path, clock: ManualClock) -> None:
    with StateStore.open(tmp_path, PORTFOLIO, clock) as first:
        first.record_fill("c1", "t1", D("1"), D("2"), D("0"), None, T0)
        first.record_cycle("c1", T0, T0, "traded", traded=True)
        first.set_last_check(T0)
        first.save_risk_state({"version": 1})
        first.commit_paper_trade({"cash": "1"}, [{"n": 1}])
        first.save_targets({"BTC": "1"}, T0)
        first.put("k", [1, 2])
    with StateStore.open(tmp_path, PORTFOLIO, clock) as second:
        assert len(second.fills()) == 1
        assert second.last_rebalance() == T0
        assert second.last_check() == T0
        assert second.load_risk_state() == {"version": 1}
        assert second.load_paper_ledger() == {"cash": "1"}
        assert second.paper_fills() == [{"n": 1}]
        assert second.load_targets() == ({"BTC": "1"}, T0)
        assert second.get("k") == [1, 2]
        assert second.integrity_check() == "ok"


# -- the lock --------------------------------------------------------------------------------


def test_database_is_wal_with_full_sync(store: StateStore, tmp_path: Path) -> None:
    assert store.path == tmp_path / "main.sqlite3"
    with sqlite3.connect(store.path) as peek:
        assert peek.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._read("PRAGMA synchronous")[0][0] == 2  # FULL


def test_a_write_after_quiet_cycles_is_synced_and_quiet_ones_set_nothing(
    store: StateStore,
) -> None:
    """A quiet cycle's record commits without an fsync (NORMAL); the next quiet one sets
    nothing again, and any other write sets FULL before its transaction begins."""
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    store.record_cycle("c1", T0, T0, "no-trade", traded=False, sync=False)
    assert statements[:2] == ["PRAGMA synchronous=NORMAL", "BEGIN IMMEDIATE"]
    statements.clear()
    store.record_cycle("c2", T0, T0, "no-trade", traded=False, sync=False)
    assert statements[0] == "BEGIN IMMEDIATE"
    assert not [s for s in statements if s.startswith("PRAGMA")]
    statements.clear()
    store.save_intent(intent("a"))
    assert statements[:2] == ["PRAGMA synchronous=FULL", "BEGIN IMMEDIATE"]
    statements.clear()
    store.record_cycle("c3", T0, T0, "traded", traded=True)  # synced: no PRAGMA needed
    assert statements[0] == "BEGIN IMMEDIATE"
    assert store._read("PRAGMA synchronous")[0][0] == 2  # FULL
    store._db.set_trace_callback(None)


def test_lock_file_holds_the_pid(store: StateStore, tmp_path: Path) -> None:
    assert (tmp_path / "main.lock").read_text().strip() == str(os.getpid())


def test_second_open_in_the_same_process_is_refused(store: StateStore, tmp_path: Path) -> None:
    lock = tmp_path / "main.lock"
    expected = (
        f"portfolio 'main' is already run by another process (pid {os.getpid()}, lock file {lock})"
    )
    with pytest.raises(StateError) as refused:
        StateStore.open(tmp_path, PORTFOLIO, ManualClock(T0))
    assert str(refused.value) == expected
    store.save_intent(intent("still-mine"))  # the holder is unaffected


def test_close_releases_the_lock(tmp_path: Path, clock: ManualClock) -> None:
    first = StateStore.open(tmp_path, PORTFOLIO, clock)
    first.close()
    first.close()
    with StateStore.open(tmp_path, PORTFOLIO, clock) as second:
        assert second.integrity_check() == "ok"


def test_other_portfolios_have_their_own_lock(store: StateStore, tmp_path: Path) -> None:
    with StateStore.open(tmp_path, "other", ManualClock(T0)) as other:
        assert other.path == tmp_path / "other.sqlite3"


def test_closed_store_refuses_use(tmp_path: Path, clock: ManualClock) -> None:
    closed = StateStore.open(tmp_path, PORTFOLIO, clock)
    closed.close()
    with pytest.raises(StateError, match="is closed"):
        closed.get_intent("a")
    with pytest.raises(StateError, match="is closed"):
        closed.put("k", 1)


def test_portfolio_name_that_is_not_a_file_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="cannot name a state file"):
        StateStore.open(tmp_path, "../escape", ManualClock(T0))


OPEN_IN_CHILD = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    from bot.core.errors import StateError
    from bot.store.state import StateStore
    try:
        StateStore.open(Path(sys.argv[1]), "main", lambda: datetime.now(UTC)).close()
    except StateError as exc:
        print(exc, file=sys.stderr)
        sys.exit(3)
    print("opened")
    """
)


def _open_in_child(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", OPEN_IN_CHILD, str(data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_second_process_is_refused_with_the_holders_pid(tmp_path: Path, clock: ManualClock) -> None:
    with StateStore.open(tmp_path, PORTFOLIO, clock):
        refused = _open_in_child(tmp_path)
    assert refused.returncode == 3
    assert refused.stderr.strip() == (
        f"portfolio 'main' is already run by another process "
        f"(pid {os.getpid()}, lock file {tmp_path / 'main.lock'})"
    )

    opened = _open_in_child(tmp_path)  # released by close
    assert (opened.returncode, opened.stdout.strip()) == (0, "opened")


# -- migrations ------------------------------------------------------------------------------


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as peek:
        return int(peek.execute("PRAGMA user_version").fetchone()[0])


def test_empty_file_is_migrated_to_the_latest_schema(tmp_path: Path, clock: ManualClock) -> None:
    (tmp_path / "main.sqlite3").write_bytes(b"")
    with StateStore.open(tmp_path, PORTFOLIO, clock) as opened:
        opened.save_intent(intent("a"))
        opened.put("k", 1)
        opened.save_risk_state({"version": 1})
    assert _user_version(tmp_path / "main.sqlite3") == len(MIGRATIONS) == 4


def test_version_one_database_is_migrated_and_keeps_its_records(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "main.sqlite3"
    with sqlite3.connect(path) as old:
        for statement in MIGRATIONS[0]:
            old.execute(statement)
        old.execute("INSERT INTO kv VALUES ('risk_state', '{\"version\":1}')")
        old.execute("INSERT INTO kv VALUES ('last_check', '\"2026-01-01T12:00:00.000+00:00\"')")
        old.execute("INSERT INTO kv VALUES ('mine', '[1]')")
        old.execute("PRAGMA user_version = 1")

    with StateStore.open(tmp_path, PORTFOLIO, clock) as opened:
        assert opened.load_risk_state() == {"version": 1}
        assert opened.last_check() == T0
        assert opened.get("mine") == [1]
        assert opened.get("risk_state") is None
    assert _user_version(path) == len(MIGRATIONS)


def test_intents_written_before_contract_sizes_read_back_with_size_one(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "main.sqlite3"
    with sqlite3.connect(path) as old:
        for migration in MIGRATIONS[:2]:
            for statement in migration:
                old.execute(statement)
        old.execute("PRAGMA user_version = 2")
        old.execute(
            "INSERT INTO intents (client_order_id, cycle_id, leg_index, sleeve, account, symbol, "
            "side, amount, price, reduce_only, market_type, order_type, state, filled, fee, "
            "created_at, updated_at) VALUES ('a', ?, 0, 'hedge', 'usdm', 'BTC/USDT:USDT', "
            "'sell', '0.5', '60000', 0, 'swap', 'market', 'SENT', '0', '0', 't', 't')",
            (CYCLE,),
        )
    with StateStore.open(tmp_path, PORTFOLIO, clock) as opened:
        loaded = opened.get_intent("a")
    assert loaded is not None
    assert (loaded.leg.contract_size, loaded.leg.notional) == (1, D("30000"))
    assert _user_version(path) == len(MIGRATIONS)


def test_newer_schema_is_refused_and_the_lock_released(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "main.sqlite3"
    with sqlite3.connect(path) as newer:
        newer.execute("PRAGMA user_version = 99")

    for _ in range(2):  # the second attempt meets the same refusal, not a held lock
        with pytest.raises(StateError) as refused:
            StateStore.open(tmp_path, PORTFOLIO, clock)
        assert str(refused.value) == (
            f"state database {path} has schema version 99, newer than this bot's "
            f"{len(MIGRATIONS)}: run a newer bot (or restore a backup)"
        )
    assert _user_version(path) == 99


def test_failing_migration_is_rolled_back_whole(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    StateStore.open(tmp_path, PORTFOLIO, clock).close()
    broken = ("CREATE TABLE extra (x INTEGER)", "INSERT INTO no_such_table VALUES (1)")
    monkeypatch.setattr(bot.store.state, "MIGRATIONS", (*MIGRATIONS, broken))

    with pytest.raises(StateError, match="no such table: no_such_table"):
        StateStore.open(tmp_path, PORTFOLIO, clock)

    path = tmp_path / "main.sqlite3"
    assert _user_version(path) == len(MIGRATIONS)
    with sqlite3.connect(path) as peek:
        tables = {r[0] for r in peek.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "extra" not in tables


def test_file_that_is_not_a_database_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    (tmp_path / "main.sqlite3").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StateError, match="file is not a database"):
        StateStore.open(tmp_path, PORTFOLIO, clock)
    # the refusal released the lock: the next open meets the same error, not "already run"
    with pytest.raises(StateError, match="file is not a database"):
        StateStore.open(tmp_path, PORTFOLIO, clock)


def test_a_read_only_view_reads_beside_the_writer_and_can_write_nothing(
    store: StateStore, tmp_path: Path, clock: ManualClock
) -> None:
    store.save_risk_state(RiskState(trading=TradingState.REDUCING, reason="operator").to_dict())
    store.save_targets({"bitcoin": "0.6"}, T0)
    store.record_cycle(CYCLE, T0, T0, "traded", True)
    view = open_state_view(tmp_path, PORTFOLIO)  # the writer still holds the lock
    try:
        assert RiskState.from_dict(view.load_risk_state() or {}).trading is TradingState.REDUCING
        assert view.load_targets() == ({"bitcoin": "0.6"}, T0)
        assert view.last_rebalance() == T0
        with pytest.raises(StateError, match="read-only"):
            view.save_risk_state({"version": 1})  # type: ignore[attr-defined]
        store.set_last_check(clock.advance(60))  # the writer is not disturbed, the view follows
        assert view.last_check() == clock.now
    finally:
        view.close()
    assert running_pid(tmp_path, PORTFOLIO) == os.getpid()
    store.close()
    assert running_pid(tmp_path, PORTFOLIO) is None


def test_the_view_of_a_portfolio_that_never_ran_creates_nothing(tmp_path: Path) -> None:
    view = open_state_view(tmp_path / "data", PORTFOLIO)
    assert view.load_risk_state() is None and view.load_paper_ledger() is None
    assert view.get("anything") is None and view.last_rebalance() is None
    view.close()
    assert not (tmp_path / "data").exists()


def test_grouped_writes_wait_for_the_cycle_commit_and_any_durable_write_takes_them(
    store: StateStore, tmp_path: Path, clock: ManualClock
) -> None:
    view = open_state_view(tmp_path, PORTFOLIO)
    try:
        store.set_last_check(T0, grouped=True)
        store.save_risk_state({"version": 1, "peak": "5"}, grouped=True)
        assert store.last_check() == T0  # the writer reads its own grouped write at once
        assert view.last_check() is None and view.load_risk_state() is None  # not committed
        store.record_cycle(CYCLE, T0, T0, "no-trade", False, sync=False)
        assert view.last_check() == T0 and view.load_risk_state() == {"version": 1, "peak": "5"}
        store.set_last_check(T0 + timedelta(minutes=1), grouped=True)
        store.put("k", "v")  # any other write commits what waits, in its own transaction
        assert view.last_check() == T0 + timedelta(minutes=1)
        store.save_risk_state({"version": 1, "peak": "6"}, grouped=True)
    finally:
        view.close()
    store.close()  # closing commits the last grouped write
    with StateStore.open(tmp_path, PORTFOLIO, clock) as again:
        assert again.load_risk_state() == {"version": 1, "peak": "6"}
