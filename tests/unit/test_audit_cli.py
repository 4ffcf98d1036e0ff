"""`rebalance-bot audit`: what it prints is exactly what the log holds, totals are exact, any
tampering is named, bad input is one line with exit code 2."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.audit.reader import (
    Position,
    RecordFilter,
    TradeTracker,
    describe,
    end_of,
    follow,
    line_of,
    scan,
    select_files,
    summarize,
)
from bot.audit.report import Decimator
from bot.audit.writer import AuditLog, EventType, audit_files, read_records
from bot.cli.main import main
from tests.clocks import SteppingClock
from tests.unit.audit_story import PORTFOLIO, START, STEP, Story, write_story

ROOT = Path(__file__).parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["audit", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> None:
    assert err.startswith("rebalance-bot: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.fixture
def story(tmp_path: Path) -> tuple[Path, Story]:
    directory = tmp_path / "audit"
    return directory, write_story(directory)


def all_records(directory: Path) -> list[dict[str, Any]]:
    return list(scan(audit_files(directory)))


# -- summary -----------------------------------------------------------------------------------


def decimals(values: dict[str, str]) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in values.items()}


def test_summary_totals_equal_the_sums_of_the_fills_written_exactly(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, ledger = story
    code, out, _ = run(capsys, "summary", "--dir", str(directory), "--json")
    assert code == 0
    total = json.loads(out)["total"]
    assert total["orders"] == len(ledger.orders)
    assert total["fills"] == len(ledger.fills)
    assert decimals(total["turnover"]) == ledger.turnover()
    assert decimals(total["fees"]) == ledger.fees()
    live = [f for f in ledger.fills if not f.dry_run]
    assert total["live"]["fills"] == len(live)
    assert decimals(total["live"]["turnover"]) == ledger.turnover(live_only=True)
    assert decimals(total["live"]["fees"]) == ledger.fees(live_only=True)
    assert total["paper"]["fills"] == len(ledger.fills) - len(live) > 0
    # Partial reports are cumulative: more fill records than orders, each order counted once.
    assert len(ledger.fills) > len(ledger.orders)


def test_summary_live_only_leaves_dry_run_fills_out(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, ledger = story
    _, out, _ = run(capsys, "summary", "--dir", str(directory), "--json", "--live-only")
    total = json.loads(out)["total"]
    assert decimals(total["turnover"]) == ledger.turnover(live_only=True)
    assert decimals(total["fees"]) == ledger.fees(live_only=True)
    assert "paper" not in total


def test_summary_per_day_adds_up_each_days_fills_and_counts_decisions(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, ledger = story
    _, out, _ = run(capsys, "summary", "--dir", str(directory), "--json", "--by", "day")
    periods = {p["period"]: p for p in json.loads(out)["periods"]}
    by_day: dict[str, Decimal] = defaultdict(Decimal)
    for fill in ledger.fills:
        by_day[fill.time[:10]] += fill.notional
    assert sorted(periods) == ["2026-03-01", "2026-03-02", "2026-03-03"]
    for day, turnover in by_day.items():
        assert Decimal(periods[day]["turnover"]["USDT"]) == turnover
    total = json.loads(out)["total"]
    assert total["cycles"] == len(ledger.cycles)
    assert total["rebalances"] == ledger.rebalances
    assert total["skipped"] == ledger.skipped > 0
    assert total["blocked"] == ledger.blocked > 0
    assert total["errors"] == ledger.errors > 0


def test_summary_by_week_uses_iso_weeks(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, ledger = story
    _, out, _ = run(capsys, "summary", "--dir", str(directory), "--json", "--by", "week")
    periods = json.loads(out)["periods"]
    # 2026-03-01 is a Sunday (week 9); the 2nd and 3rd are in week 10.
    assert [p["period"] for p in periods] == ["2026-W09", "2026-W10"]
    assert sum(p["fills"] for p in periods) == len(ledger.fills)


def test_summary_table_shows_the_totals_without_colour_when_piped(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, ledger = story
    code, out, _ = run(capsys, "summary", "--dir", str(directory))
    assert code == 0
    assert "\x1b[" not in out
    total_line = next(line for line in out.splitlines() if "total" in line)
    assert f" {len(ledger.orders)} " in total_line
    # Rounded explicitly: formatting a Decimal rounds by the thread's decimal context, which
    # a library (ccxt) may have changed earlier in the same process.
    turnover = sum(f.notional for f in ledger.fills).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
    assert f"{turnover:,.2f} USDT" in total_line


def fill(event: str, amount: str, price: str, fee: str, cid: str = "c1") -> dict[str, Any]:
    return {
        "event": event, "time": "2026-03-01T00:00:00.000Z", "portfolio": "p", "cycle_id": None,
        "symbol": "BTC/USDT", "side": "buy", "account": "spot", "amount": amount, "price": price,
        "fee": fee, "fee_currency": "USDT", "client_order_id": cid, "order_id": "9",
    }  # fmt: skip


def test_an_order_reported_partially_then_filled_counts_once_at_its_true_price() -> None:
    tracker = TradeTracker()
    first = tracker.trade(fill("order_partially_filled", "1", "100", "0.1"))
    second = tracker.trade(fill("order_filled", "3", "110", "0.3"))  # cumulative, average
    repeat = tracker.trade(fill("order_filled", "3", "110", "0.3"))
    assert first is not None and second is not None and repeat is None
    assert (first.amount, first.notional, first.fee) == (1, 100, Decimal("0.1"))
    assert first.new_order
    assert (second.amount, second.price, second.notional) == (2, 115, 230)
    assert second.fee == Decimal("0.2") and not second.new_order
    assert first.notional + second.notional == Decimal(3) * Decimal(110)


def test_a_canceled_orders_later_reports_add_nothing() -> None:
    tracker = TradeTracker()
    assert tracker.trade(fill("order_partially_filled", "1", "100", "0.1")) is not None
    assert tracker.trade({**fill("order_canceled", "0", "0", "0"), "filled": "1"}) is None
    assert tracker.trade(fill("order_partially_filled", "2", "100", "0.2")) is None


def test_summarize_over_read_records_gives_the_figures_the_command_prints(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, ledger = story
    total = summarize(located.record for located in read_records(directory)).total()
    assert total.live.turnover == ledger.turnover(live_only=True)
    assert total.traded().fees == ledger.fees()
    _, out, _ = run(capsys, "summary", "--dir", str(directory), "--json")
    assert json.loads(out)["total"] == total.to_json()


def test_fees_in_the_base_asset_are_valued_at_the_fill_price() -> None:
    record = {**fill("order_filled", "0.5", "60000", "0.0005"), "fee_currency": "BTC"}
    trade = TradeTracker().trade(record)
    assert trade is not None and trade.fee_in_quote() == Decimal("30.0000")


def test_fees_are_summed_in_the_quote_currency_showing_each_conversion() -> None:
    records = [
        fill("order_filled", "1", "60000", "12.5", cid="a"),
        {**fill("order_filled", "0.5", "60000", "0.0005", cid="b"), "fee_currency": "BTC"},
        {**fill("order_filled", "0.1", "60000", "0.02", cid="c"), "fee_currency": "BNB"},
    ]
    traded = summarize(records).total().traded()

    # 12.5 USDT + 0.0005 BTC at 60,000 = 42.5 USDT; BNB has no price in the fills.
    assert traded.fees_text() == (
        "42.50 USDT (incl. 0.0005 BTC = 30.00 USDT at the fill price), "
        "0.02 BNB (no price to convert it)"
    )
    assert traded.to_json()["fee_conversions"] == [
        {"from": "BTC", "amount": "0.0005", "to": "USDT", "value": "30.0000"}
    ]
    assert traded.to_json()["fees"] == {"BNB": "0.02", "BTC": "0.0005", "USDT": "12.5"}


# -- verify ------------------------------------------------------------------------------------

T0 = datetime(2026, 3, 1, 23, 59, 59, 700000, tzinfo=UTC)


def small_log(directory: Path) -> list[Path]:
    """Nine records over two daily files."""
    clock = SteppingClock(STEP, T0)
    with AuditLog.open(directory, "p", clock) as log:
        for i in range(9):
            if i == 4:
                clock.jump(T0 + timedelta(seconds=1))
            log.append(EventType.PAPER_FILL, "20260301T235959700", amount=Decimal(i + 1))
    files = audit_files(directory)
    assert [len(f.read_bytes().splitlines()) for f in files] == [4, 5]
    return files


def flat(files: list[Path]) -> list[tuple[Path, int, bytes]]:
    return [
        (path, number, raw)
        for path in files
        for number, raw in enumerate(path.read_bytes().splitlines(keepends=True), start=1)
    ]


def rewrite(files: list[Path], lines: list[bytes]) -> None:
    """Put `lines` back into the files, keeping each file's original line count where it can."""
    counts = [len(f.read_bytes().splitlines()) for f in files]
    start = 0
    for path, count in zip(files, counts, strict=True):
        take = count if path != files[-1] else len(lines) - start
        path.write_bytes(b"".join(lines[start : start + take]))
        start += take


def tamper(files: list[Path], how: str, index: int) -> None:
    lines = [raw for _, _, raw in flat(files)]
    if how == "edit":
        record = json.loads(lines[index])
        record["amount"] = "999"
        lines[index] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        rewrite(files, lines)
    elif how == "delete":
        path, number, _ = flat(files)[index]
        kept = path.read_bytes().splitlines(keepends=True)
        del kept[number - 1]
        path.write_bytes(b"".join(kept))
    elif how == "reorder":
        lines[index], lines[index + 1] = lines[index + 1], lines[index]
        rewrite(files, lines)
    elif how == "truncate":
        path, number, raw = flat(files)[index]
        kept = path.read_bytes().splitlines(keepends=True)[: number - 1]
        path.write_bytes(b"".join(kept) + raw[: len(raw) // 2])


def first_difference(
    before: list[tuple[Path, int, bytes]], after: list[tuple[Path, int, bytes]]
) -> tuple[Path, int]:
    for old, new in zip(before, after, strict=False):
        if old[2] != new[2]:
            return new[0], new[1]
    raise AssertionError("nothing changed")


CASES = (
    [("edit", i) for i in range(9)]
    + [("delete", i) for i in range(8)]  # the last record: see the anchor test
    + [("reorder", i) for i in range(8)]
    + [("truncate", i) for i in range(9)]
)


@pytest.mark.parametrize(("how", "index"), CASES)
def test_any_single_tampering_makes_verify_fail_naming_the_file_line_and_seq(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str, index: int
) -> None:
    files = small_log(tmp_path)
    before = flat(files)
    tamper(files, how, index)
    path, line = first_difference(before, flat(files))
    code, out, err = run(capsys, "verify", "--dir", str(tmp_path))
    assert code == 1 and out == ""
    assert f"{path}:{line} " in err
    assert "FAILED" in err and "Traceback" not in err
    if how == "truncate":
        assert "incomplete last line" in err
    else:
        seq = json.loads(next(raw for p, n, raw in flat(files) if (p, n) == (path, line)))["seq"]
        due = f"(seq {seq})" if seq == index + 1 else f"(seq {seq} where {index + 1} was due)"
        assert due in err


def test_an_untouched_log_verifies_and_prints_its_head(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = small_log(tmp_path)
    head = json.loads(flat(files)[-1][2])
    code, out, _ = run(capsys, "verify", "--dir", str(tmp_path))
    assert code == 0
    assert f"9 record(s), seq 1 to 9, head 9:{head['hash']}" in out
    code, out, _ = run(capsys, "verify", "--dir", str(tmp_path), "--json")
    assert json.loads(out)["ok"] is True and json.loads(out)["head"] == {
        "seq": 9,
        "hash": head["hash"],
    }


def test_an_anchor_catches_records_cut_from_the_end_and_a_rewritten_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = small_log(tmp_path / "a")
    head = json.loads(flat(files)[-1][2])
    anchor = f"9:{head['hash'][:16]}"
    assert run(capsys, "verify", "--dir", str(tmp_path / "a"), "--anchor", anchor)[0] == 0
    tamper(files, "delete", 8)
    # Without an anchor a log cut at a record boundary looks like a log that ended there.
    assert run(capsys, "verify", "--dir", str(tmp_path / "a"))[0] == 0
    code, _, err = run(capsys, "verify", "--dir", str(tmp_path / "a"), "--anchor", anchor)
    assert code == 1 and "removed from the end" in err
    # A forger who rewrites the whole chain consistently still changes the anchored hash.
    other = tmp_path / "b"
    with AuditLog.open(other, "p", SteppingClock(STEP, T0)) as log:
        for i in range(9):
            log.append(EventType.PAPER_FILL, None, amount=Decimal(i + 2))
    code, _, err = run(capsys, "verify", "--dir", str(other), "--anchor", anchor)
    assert code == 1 and "rewritten" in err


def test_a_malformed_anchor_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small_log(tmp_path)
    code, _, err = run(capsys, "verify", "--dir", str(tmp_path), "--anchor", "nine:zz")
    assert code == 2
    one_line_error(err)


# -- show --------------------------------------------------------------------------------------


def test_show_json_holds_every_record_of_the_cycle_and_nothing_else(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, ledger = story
    records = all_records(directory)
    for cycle in ledger.cycles:
        code, out, _ = run(capsys, "show", cycle, "--dir", str(directory), "--json")
        assert code == 0
        shown = json.loads(out)
        assert shown["cycle_id"] == cycle
        assert shown["records"] == [r for r in records if r["cycle_id"] == cycle]


def test_show_tree_names_every_record_of_the_cycle_and_no_other(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, ledger = story
    records = all_records(directory)
    traded = next(c for c in ledger.cycles if any(f.cycle_id == c for f in ledger.fills))
    code, out, _ = run(capsys, "show", traded, "--dir", str(directory))
    assert code == 0 and "\x1b[" not in out
    seqs = {int(token[1:]) for token in out.split() if token[:1] == "#" and token[1:].isdigit()}
    assert seqs == {r["seq"] for r in records if r["cycle_id"] == traded}
    for event in ("snapshot", "drift", "trigger", "plan", "risk_verdict", "post_trade_drift"):
        assert event in out
    assert "OUT OF BAND" in out


def test_show_last_is_the_latest_cycle(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, ledger = story
    _, out, _ = run(capsys, "show", "last", "--dir", str(directory), "--json")
    assert json.loads(out)["cycle_id"] == ledger.cycles[-1]


@pytest.mark.parametrize("cycle", ["20250101T000000000", "yesterday"])
def test_show_of_an_unknown_or_malformed_cycle_is_one_line_and_exit_2(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str], cycle: str
) -> None:
    directory, _ = story
    code, out, err = run(capsys, "show", cycle, "--dir", str(directory))
    assert code == 2 and out == ""
    one_line_error(err)
    assert cycle in err


# -- export ------------------------------------------------------------------------------------


def test_export_csv_round_trips_every_fill_exactly(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, ledger = story
    code, out, _ = run(capsys, "export", "--dir", str(directory), "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(ledger.fills)
    for row, expected in zip(rows, ledger.fills, strict=True):
        assert row["date"] == expected.time
        assert row["pair"] == expected.symbol and row["side"] == expected.side
        assert Decimal(row["amount"]) == expected.amount
        assert Decimal(row["price"]) == expected.price
        assert Decimal(row["fee"]) == expected.fee and row["fee_currency"] == expected.fee_currency
        assert row["client_id"] == expected.client_order_id
        assert row["order_id"] == (expected.order_id or "")
        assert row["dry_run"] == ("true" if expected.dry_run else "false")
    amounts: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        amounts[row["pair"], row["side"]] += Decimal(row["amount"])
    expected_amounts: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for f in ledger.fills:
        expected_amounts[f.symbol, f.side] += f.amount
    assert amounts == expected_amounts


def test_export_live_only_leaves_dry_run_trades_out_and_json_matches_csv(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    directory, ledger = story
    target = tmp_path / "trades.json"
    code, _, err = run(
        capsys, "export", "--dir", str(directory), "--json", "--live-only", "--out", str(target)
    )
    rows = json.loads(target.read_text())
    live = [f for f in ledger.fills if not f.dry_run]
    assert code == 0 and err == f"wrote {len(live)} trade(s) to {target}\n"  # as with --csv
    assert [r["client_id"] for r in rows] == [f.client_order_id for f in live]
    assert all(r["dry_run"] is False for r in rows)
    assert sum(Decimal(r["notional"]) for r in rows) == ledger.turnover(live_only=True)["USDT"]


def test_export_writes_tiny_amounts_as_plain_digits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with AuditLog.open(tmp_path, "p", SteppingClock(STEP, START)) as log:
        log.append(
            EventType.PAPER_FILL, "20260301T000000000", account="spot", symbol="BTC/USDT",
            side="buy", amount=Decimal("1E-7"), price=Decimal("60000"), fee=Decimal("1E-10"),
            fee_currency="BTC", client_order_id="x", order_id=None, dry_run=True,
        )  # fmt: skip
    _, out, _ = run(capsys, "export", "--dir", str(tmp_path))
    row = next(csv.DictReader(io.StringIO(out)))
    assert (row["amount"], row["fee"]) == ("0.0000001", "0.0000000001")


def test_export_refuses_csv_and_json_together(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, _ = story
    code, _, err = run(capsys, "export", "--dir", str(directory), "--csv", "--json")
    assert code == 2
    one_line_error(err)


# -- find and tail -----------------------------------------------------------------------------


def find(capsys: pytest.CaptureFixture[str], directory: Path, *argv: str) -> list[dict[str, Any]]:
    code, out, _ = run(capsys, "find", "--dir", str(directory), "--json", *argv)
    assert code == 0
    return [json.loads(line) for line in out.splitlines()]


def test_find_by_event_instrument_and_order_id(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, ledger = story
    records = all_records(directory)
    assert find(capsys, directory, "--event", "paper_fill") == [
        r for r in records if r["event"] == "paper_fill"
    ]
    assert find(capsys, directory, "--event", "error,trigger") == [
        r for r in records if r["event"] in ("error", "trigger")
    ]
    btc = find(capsys, directory, "--instrument", "btc")
    assert {r.get("symbol") for r in btc if "symbol" in r} == {"BTC/USDT", "BTC/USDT:USDT"}
    assert any(r["event"] == "plan" for r in btc)
    spot_only = find(capsys, directory, "--instrument", "BTC/USDT", "--event", "order_filled")
    assert spot_only and {r["symbol"] for r in spot_only} == {"BTC/USDT"}
    live = next(f for f in ledger.fills if f.order_id is not None)
    by_exchange_id = find(capsys, directory, "--order-id", str(live.order_id))
    assert by_exchange_id and all(r["order_id"] == live.order_id for r in by_exchange_id)
    by_client_id = find(capsys, directory, "--order-id", live.client_order_id)
    assert {r["event"] for r in by_client_id} >= {"order_intent", "order_sent", "order_filled"}


def test_find_since_until_keeps_the_window_and_a_bare_until_date_includes_that_day(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, _ = story
    records = all_records(directory)
    window = find(capsys, directory, "--since", "2026-03-02", "--until", "2026-03-02")
    assert window == [r for r in records if r["time"].startswith("2026-03-02")]
    assert window
    morning = find(capsys, directory, "--since", "2026-03-03T00:00Z", "--until", "2026-03-03T06")
    assert morning == [
        r for r in records if "2026-03-03T00:00" <= r["time"] < "2026-03-03T06:00:00"
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["find", "--since", "March 2nd"],
        ["find", "--until", "2026-02-30"],
        ["find", "--since", "2026-03-03", "--until", "2026-03-02"],
        ["find", "--event", "order_exploded"],
        ["tail", "-n", "-1"],
    ],
)
def test_bad_filters_are_one_line_and_exit_2(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    directory, _ = story
    code, out, err = run(capsys, *argv, "--dir", str(directory))
    assert code == 2 and out == ""
    one_line_error(err)


def test_tail_prints_the_last_records_in_order(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, _ = story
    records = all_records(directory)
    code, out, _ = run(capsys, "tail", "--dir", str(directory), "-n", "3")
    assert code == 0
    assert out.splitlines() == [line_of(r) for r in records[-3:]]
    _, out, _ = run(capsys, "tail", "--dir", str(directory), "-n", "500", "--json")
    assert [json.loads(line) for line in out.splitlines()] == records


class Stop(Exception):
    pass


def test_follow_yields_new_records_across_a_new_days_file(tmp_path: Path) -> None:
    clock = SteppingClock(STEP, T0)
    log = AuditLog.open(tmp_path, "p", clock)
    log.append(EventType.STARTUP, None)
    start = end_of(audit_files(tmp_path))

    def next_day() -> None:
        clock.jump(T0 + timedelta(seconds=5))  # past midnight: a new daily file

    batches = [("one", None), ("two", next_day), ("three", None)]

    def idle() -> None:
        if not batches:
            raise Stop
        message, before = batches.pop(0)
        if before is not None:
            before()
        log.append(EventType.ERROR, None, message=message)

    seen = []
    with pytest.raises(Stop):
        for record in follow(tmp_path, start, idle):
            seen.append(record["message"])
    log.close()
    assert seen == ["one", "two", "three"]
    assert len(audit_files(tmp_path)) == 2


def test_follow_waits_for_the_first_file(tmp_path: Path) -> None:
    writes = [
        lambda: AuditLog.open(tmp_path, "p", SteppingClock(STEP, START)).append(
            EventType.STARTUP, None
        )
    ]

    def idle() -> None:
        if not writes:
            raise Stop
        writes.pop()()

    seen = []
    with pytest.raises(Stop):
        for record in follow(tmp_path, Position(None, 0), idle):
            seen.append(record["event"])
    assert seen == ["startup"]


# -- where the log is --------------------------------------------------------------------------


def test_a_missing_directory_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for action in ("tail", "summary", "verify", "export", "find"):
        code, out, err = run(capsys, action, "--dir", str(tmp_path / "nope"))
        assert code == 2 and out == ""
        one_line_error(err)
        assert "no such directory" in err


def test_an_empty_directory_and_no_directory_at_all_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, "summary", "--dir", str(tmp_path))
    assert code == 2 and "no audit files" in err
    monkeypatch.chdir(tmp_path)  # no config/paper.toml to default to
    code, _, err = run(capsys, "summary")
    assert code == 2 and "--config FILE, --data-dir DIR or --dir DIR" in err
    one_line_error(err)


def _paper_config(tmp_path: Path, data: Path | None = None) -> Path:
    config = tmp_path / "bot.toml"
    text = (ROOT / "config" / "paper.toml").read_text()
    head = f'data_dir = "{data}"\n' if data is not None else ""
    config.write_text(head + text.replace('"sim/', f'"{ROOT}/config/sim/'))
    return config


@pytest.mark.parametrize(
    "action", ["tail", "show last", "find", "summary", "verify", "export", "report"]
)
def test_every_action_reads_the_log_from_config_and_data_dir_like_every_command(
    action: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--config` names the portfolio (paper) and `--data-dir` overrides its data_dir, as for
    `run` or `plan`; the log read is <data-dir>/audit/paper/, not the config's data_dir."""
    data = tmp_path / "elsewhere"
    story = write_story(data / "audit" / "paper", days=1)
    config = _paper_config(tmp_path, tmp_path / "not-here")
    more = ["--out", str(tmp_path / "r.html")] if action == "report" else []

    code, out, err = run(
        capsys, *action.split(), "--config", str(config), "--data-dir", str(data), *more
    )

    assert code == 0, err
    if action == "summary":
        assert f"{len(story.cycles)} " in out
    if action == "verify":
        assert "audit log intact" in out


@pytest.mark.parametrize(
    "action", ["tail", "show last", "find", "summary", "verify", "export", "report"]
)
def test_an_auditor_reads_a_live_configs_log_without_its_trading_keys(
    action: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading the log needs the data directory and the portfolio's name, never the keys: a
    live config without them is read; trading with it is still refused for want of them."""
    for name in [n for n in os.environ if n.upper().startswith("REBALANCE_")]:
        monkeypatch.delenv(name)
    data = tmp_path / "data"
    story = write_story(data / "audit" / "binance-main", days=1)
    text = (ROOT / "config" / "binance.example.toml").read_text()
    config = tmp_path / "live.toml"
    config.write_text(text.replace('mode = "dry-run"', 'mode = "live"', 1))
    more = ["--out", str(tmp_path / "r.html")] if action == "report" else []

    code, out, err = run(
        capsys, *action.split(), "--config", str(config), "--data-dir", str(data), *more
    )

    assert code == 0, err
    if action == "summary":
        assert f"{len(story.cycles)} " in out
    assert main(["plan", "--config", str(config), "--data-dir", str(data)]) == 2
    assert "mode is live but accounts.spot has no api_key/secret" in capsys.readouterr().err


def test_data_dir_alone_reads_its_only_portfolio_and_asks_when_there_are_several(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    story = write_story(data / "audit" / "alpha", days=1)

    code, out, _ = run(capsys, "summary", "--data-dir", str(data), "--json")
    assert code == 0 and json.loads(out)["total"]["cycles"] == len(story.cycles)

    write_story(data / "audit" / "beta", days=1)
    code, _, err = run(capsys, "summary", "--data-dir", str(data))
    assert code == 2 and "--portfolio NAME" in err
    one_line_error(err)
    code, out, _ = run(capsys, "verify", "--data-dir", str(data), "--portfolio", "beta")
    assert code == 0 and "audit log intact" in out


def test_dir_with_config_or_data_dir_is_one_line_and_exit_2(
    story: tuple[Path, Story], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, _ = story
    for extra in (["--config", str(_paper_config(tmp_path))], ["--data-dir", str(tmp_path)]):
        code, out, err = run(capsys, "summary", "--dir", str(directory), *extra)
        assert code == 2 and out == ""
        one_line_error(err)


def test_config_finds_the_log_in_its_data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    write_story(data / "audit", days=1)
    config = _paper_config(tmp_path, data)
    code, out, _ = run(capsys, "summary", "--config", str(config), "--json")
    assert code == 0 and json.loads(out)["total"]["records"] > 0


# -- reading -----------------------------------------------------------------------------------


def test_a_window_skips_whole_files_outside_it(story: tuple[Path, Story]) -> None:
    directory, _ = story
    wanted = RecordFilter.build(since="2026-03-02T12:00", until="2026-03-02")
    assert [f.name for f in select_files(directory, wanted)] == ["audit-2026-03-02.jsonl"]
    later = RecordFilter.build(cycle_id="20260303T000100000")
    assert [f.name for f in select_files(directory, later)] == ["audit-2026-03-03.jsonl"]


def test_readers_warn_about_a_torn_last_line_and_still_read_the_rest(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, ledger = story
    last = audit_files(directory)[-1]
    with last.open("ab") as f:
        f.write(b'{"schema":1,"seq":99')
    code, out, err = run(capsys, "summary", "--dir", str(directory), "--json")
    assert code == 0 and json.loads(out)["total"]["fills"] == len(ledger.fills)
    assert "incomplete last line" in err and "audit verify" in err


@pytest.mark.parametrize(
    "fields",
    [
        {"legs": "not a list", "sleeves": None, "weights": 3},
        {"accounts": [1, 2], "prices": "x", "reasons": None},
        {"leg": {"key": "spot:BTC/USDT", "side": "buy", "amount": "1"}},
    ],
)
def test_odd_records_are_described_without_failing(
    fields: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with AuditLog.open(tmp_path, PORTFOLIO, SteppingClock(STEP, START)) as log:
        for event in EventType:
            log.append(event, "20260301T000000000", **fields)
    for record in all_records(tmp_path):
        assert describe(record)
    code, out, _ = run(capsys, "show", "20260301T000000000", "--dir", str(tmp_path))
    assert code == 0 and "cycle 20260301T000000000" in out
    seqs = {int(token[1:]) for token in out.split() if token[:1] == "#" and token[1:].isdigit()}
    assert seqs == set(range(1, len(EventType) + 1))


def test_a_decimator_keeps_a_bounded_evenly_spaced_sample() -> None:
    sample: Decimator[int] = Decimator(100)
    for i in range(100_000):
        sample.add(i)
    assert 50 <= len(sample.items) <= 100
    gaps = {b - a for a, b in zip(sample.items, sample.items[1:], strict=False)}
    assert sample.items[0] == 0 and len(gaps) == 1


def test_on_a_terminal_lines_and_trees_are_coloured_and_long_reads_show_progress(
    story: tuple[Path, Story], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, ledger = story
    monkeypatch.setattr("bot.audit.cli.PROGRESS_MIN_BYTES", 0)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, _ = run(capsys, "show", "last", "--dir", str(directory))
    assert code == 0 and "\x1b[" in out and f"cycle {ledger.cycles[-1]}" in out
    code, out, _ = run(capsys, "tail", "--dir", str(directory), "-n", "2")
    assert code == 0 and "\x1b[" in out and len(out.splitlines()) == 2
    code, out, _ = run(capsys, "summary", "--dir", str(directory))
    assert code == 0 and "total" in out
    code, out, _ = run(capsys, "verify", "--dir", str(directory))
    assert code == 0 and "intact" in out


def test_tail_follow_prints_records_as_they_are_written_until_interrupted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog.open(tmp_path, PORTFOLIO, SteppingClock(STEP, START))
    log.append(EventType.STARTUP, None)
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 1:
            log.append(EventType.ERROR, None, message="late news")
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr("bot.audit.cli.time.sleep", sleep)
    code, out, _ = run(capsys, "tail", "-f", "--dir", str(tmp_path), "--json")
    log.close()
    assert code == 130
    assert [json.loads(line)["event"] for line in out.splitlines()] == ["startup", "error"]


@pytest.mark.parametrize("nav", ["1e400", "NaN", "-1e300", "Infinity"])
def test_report_over_numbers_no_chart_can_draw_still_writes_the_page(
    nav: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record with a NAV no float can hold (a corrupted or hostile log) costs a chart its
    points, never the report: exit 0, no traceback, the page written."""
    directory = tmp_path / "audit"
    clock = SteppingClock(STEP, T0)
    with AuditLog.open(directory, "p", clock) as log:
        for i in range(3):
            clock.jump(T0 + timedelta(minutes=i))
            cycle = f"20260301T00000{i}000"
            log.append(EventType.CYCLE_START, cycle, mode="dry-run", trading_state="ACTIVE")
            sleeves = [
                {"sleeve": "btc", "current": nav, "target": "0.5", "band": "0.05", "drift": nav}
            ]
            log.append(EventType.DRIFT, cycle, nav=nav if i else "100000", sleeves=sleeves)
            log.append(
                EventType.CYCLE_END, cycle, outcome="no-trade", traded=False, reason="", orders=0
            )
    out_file = tmp_path / "r.html"
    code, _, err = run(capsys, "report", "--dir", str(directory), "--out", str(out_file))
    assert code == 0, err
    assert "Traceback" not in err
    assert out_file.read_text().startswith("<!doctype html>")
