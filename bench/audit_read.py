"""Reading a 1,000,000-record audit log: `audit summary` (and `audit verify`) beside a floor.

The log is written with the real `AuditLog` into a temporary directory: cycles one minute apart
(start, snapshot, targets, drift, trigger, end; every fifth cycle also trades two legs: plan,
risk verdict, intent, sent and fill per leg, drift after), so about three months of daily
files. Each reader then runs as its own child process, so its peak RSS (`wait4`'s
`ru_maxrss`) is its own, interpreter start-up included:
- the floor: a bare loop that `json.loads` every line of the same files;
- `rebalance-bot audit summary --json` and `rebalance-bot audit verify` over the log.
Printed: records per second and peak RSS of each, the floor's, and the ratios. Set
BENCH_AUDIT_RECORDS to write a smaller log for a quick look.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.audit.writer import AuditLog, EventType
from bot.core.ids import client_order_id, cycle_id_at

RECORDS = int(os.environ.get("BENCH_AUDIT_RECORDS", "1000000"))
RSS_LIMIT_MB = 300
ROOT = Path(__file__).parents[1]
START = datetime(2026, 1, 1, tzinfo=UTC)
SLEEVES = (
    ("bitcoin", "spot", "BTC/USDT", Decimal("0.60")),
    ("ether", "spot", "ETH/USDT", Decimal("0.20")),
    ("alts", "usdm", "SOL/USDT:USDT", Decimal("0.05")),
    ("hedge", "usdm", "BTC/USDT:USDT", Decimal("-0.15")),
)
PRICES = {"BTC/USDT": 61000, "ETH/USDT": 3100, "SOL/USDT:USDT": 140, "BTC/USDT:USDT": 61020}
FLOOR = """
import json, sys
from pathlib import Path
count = 0
for path in sorted(Path(sys.argv[1]).glob("audit-*.jsonl")):
    with path.open("rb") as f:
        for line in f:
            json.loads(line)
            count += 1
print(count)
"""


class _Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=3)
        return self.now


def _snapshot(nav: Decimal) -> dict[str, Any]:
    return {
        "nav": nav,
        "quote_currency": "USDT",
        "accounts": {
            "spot": {
                "market_type": "spot",
                "holdings": {
                    "BTC": {"free": "0.98", "total": "0.98"},
                    "ETH": {"free": "6.4", "total": "6.4"},
                    "USDT": {"free": "21000.12", "total": "21000.12"},
                },
                "wallet": None,
                "equity": None,
                "positions": {},
            },
            "usdm": {
                "market_type": "swap",
                "holdings": {},
                "wallet": "15000",
                "equity": "15012.5",
                "positions": {
                    "BTC/USDT:USDT": {
                        "contracts": "-0.246", "notional": "-15010.92",
                        "entry_price": "60900", "unrealized_pnl": "-29.52",
                    },
                    "SOL/USDT:USDT": {
                        "contracts": "35.7", "notional": "4998", "entry_price": "139.2",
                        "unrealized_pnl": "28.56",
                    },
                },
            },
        },
        "prices": {f"{account}:{symbol}": str(PRICES[symbol]) for _, account, symbol, _ in SLEEVES},
    }  # fmt: skip


def _drift(rng: random.Random, nav: Decimal) -> dict[str, Any]:
    sleeves = []
    for name, _account, _symbol, target in SLEEVES:
        drift = Decimal(rng.randint(-700, 700)) / 10000
        sleeves.append(
            {
                "sleeve": name, "value": str((target + drift) * nav),
                "current": str(target + drift), "target": str(target), "band": "0.05",
                "drift": str(drift),
                "out_of_band": abs(drift) > Decimal("0.05"),
            }
        )  # fmt: skip
    return {"nav": nav, "cash": "0.35", "sleeves": sleeves}


def _cycle(log: AuditLog, clock: _Clock, rng: random.Random, number: int) -> None:
    clock.now = START + timedelta(minutes=number)
    cycle = cycle_id_at(clock.now + timedelta(milliseconds=3))
    trade = number % 5 == 4
    nav = Decimal(100000 + rng.randint(-3000, 3000))
    log.append(EventType.CYCLE_START, cycle, mode="live", trading_state="active")
    log.append(EventType.SNAPSHOT, cycle, **_snapshot(nav))
    weights = {name: str(target) for name, _a, _s, target in SLEEVES}
    log.append(EventType.TARGETS, cycle, source="config", weights=weights, inputs={})
    log.append(EventType.DRIFT, cycle, **_drift(rng, nav))
    log.append(
        EventType.TRIGGER, cycle, trade=trade, reason="bitcoin out of band" if trade else "in band",
        rule="band", out_of_band=["bitcoin", "hedge"] if trade else [],
    )  # fmt: skip
    turnover = Decimal(0)
    if trade:
        legs: list[dict[str, Any]] = []
        for index, (sleeve, account, symbol, _target) in enumerate((SLEEVES[0], SLEEVES[3])):
            amount = Decimal(rng.randint(1, 2000)) / 1000
            price = Decimal(PRICES[symbol] + rng.randint(-50, 50))
            legs.append(
                {
                    "index": index, "sleeve": sleeve, "account": account, "symbol": symbol,
                    "side": "sell" if index == 0 else "buy", "amount": str(amount),
                    "price": str(price), "notional": str(amount * price),
                    "reduce_only": index == 1, "market_type": "swap" if index else "spot",
                }
            )  # fmt: skip
        log.append(EventType.PLAN, cycle, to="target", legs=legs, dropped=[], notes=[])
        log.append(
            EventType.RISK_VERDICT, cycle, approved=True, reasons=[],
            legs=[{"index": leg["index"], "approved": True, "reason": None} for leg in legs],
        )  # fmt: skip
        for leg in legs:
            cid = client_order_id("bench", cycle, leg["index"])
            amount, price = Decimal(leg["amount"]), Decimal(leg["price"])
            log.append(
                EventType.ORDER_INTENT, cycle, client_order_id=cid, sleeve=leg["sleeve"],
                account=leg["account"], symbol=leg["symbol"], side=leg["side"],
                amount=amount, price=price, order_type="market",
                reduce_only=leg["reduce_only"], attempt=0,
            )  # fmt: skip
            log.append(EventType.ORDER_SENT, cycle, client_order_id=cid)
            log.append(
                EventType.ORDER_FILLED, cycle, account=leg["account"], symbol=leg["symbol"],
                side=leg["side"], reduce_only=leg["reduce_only"], dry_run=False,
                order_id=str(number * 10 + leg["index"]), client_order_id=cid, amount=amount,
                price=price, fee=(amount * price * Decimal("0.0005")).quantize(Decimal("1E-8")),
                fee_currency="USDT",
            )  # fmt: skip
            turnover += amount * price
        log.append(EventType.POST_TRADE_DRIFT, cycle, **_drift(rng, nav))
    log.append(
        EventType.CYCLE_END, cycle, outcome="traded" if trade else "no-trade", traded=trade,
        reason="band", orders=2 if trade else 0, turnover=turnover, duration_ms=40,
    )  # fmt: skip


def write_log(directory: Path, records: int) -> int:
    rng = random.Random(1)
    clock = _Clock()
    with AuditLog.open(directory, "bench", clock) as log:
        number = 0
        while log.last_seq < records:
            _cycle(log, clock, rng, number)
            number += 1
        return log.last_seq


def _child(argv: list[str]) -> tuple[float, float, str]:
    """Run a reader in its own process: (seconds, peak RSS in MB, what it printed)."""
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        printed = out.read()
    if process.returncode != 0:
        raise RuntimeError(f"{argv[1:4]} exited {process.returncode}: {printed[-500:]}")
    return elapsed, usage.ru_maxrss / 1024, printed


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as name:
        directory = Path(name)
        started = time.perf_counter()
        written = write_log(directory, RECORDS)
        took = time.perf_counter() - started
        files = sorted(directory.glob("audit-*.jsonl"))
        size = sum(p.stat().st_size for p in files)
        print(
            f"   wrote {written:,} records ({size / 2**20:,.0f} MB in {len(files)} daily files) "
            f"with AuditLog in {took:.1f} s ({written / took:,.0f} records/s)"
        )
        floor_s, floor_rss, counted = _child([sys.executable, "-c", FLOOR, name])
        assert int(counted) == written
        floor_rate = written / floor_s
        print(
            f"   {'floor: json.loads per line':<28} {floor_rate:10,.0f} records/s"
            f"   peak RSS {floor_rss:6.0f} MB"
        )
        peaks: dict[str, float] = {}
        for action in ("summary", "verify"):
            argv = [sys.executable, "-m", "bot", "audit", action, "--dir", name, "--json"]
            seconds, rss, _ = _child(argv)
            peaks[action] = rss
            rate = written / seconds
            print(
                f"   {'audit ' + action:<28} {rate:10,.0f} records/s   peak RSS {rss:6.0f} MB"
                f"   ratio to floor: {rate / floor_rate:.2f} (speed), {rss / floor_rss:.1f} (RSS)"
            )
        verdict = "met" if peaks["summary"] < RSS_LIMIT_MB else "NOT met"
        print(
            f"   target: summary under {RSS_LIMIT_MB} MB RSS: {verdict} ({peaks['summary']:.0f} MB)"
        )
