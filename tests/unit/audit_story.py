"""A scripted audit log for the `audit` command tests: days of cycles written with the real
`AuditLog`, and the ledger of what was filled, kept beside it to check the readers against.

Every record has the envelope and fields the loop writes (docs/audit.md). The story is seeded:
the same arguments always write the same log.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.audit.writer import AuditLog, EventType
from bot.core.ids import client_order_id, cycle_id_at
from tests.clocks import SteppingClock

START = datetime(2026, 3, 1, 0, 0, 0, tzinfo=UTC)
STEP = timedelta(milliseconds=37)
PORTFOLIO = "p"

# sleeve, account, symbol, market type, target weight, band
SLEEVES = (
    ("bitcoin", "spot", "BTC/USDT", "spot", Decimal("0.60"), Decimal("0.05")),
    ("ether", "spot", "ETH/USDT", "spot", Decimal("0.20"), Decimal("0.05")),
    ("alts", "usdm", "SOL/USDT:USDT", "swap", Decimal("0.05"), Decimal("0.02")),
    ("hedge", "usdm", "BTC/USDT:USDT", "swap", Decimal("-0.15"), Decimal("0.05")),
)
PRICES = {
    "BTC/USDT": Decimal("61000"),
    "ETH/USDT": Decimal("3100"),
    "SOL/USDT:USDT": Decimal("140"),
    "BTC/USDT:USDT": Decimal("61020"),
}


@dataclass(frozen=True, slots=True)
class Fill:
    """One counted trade, as the ledger (the simulator's or the paper one) would have it."""

    time: str
    cycle_id: str
    account: str
    symbol: str
    side: str
    amount: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    order_id: str | None
    client_order_id: str
    dry_run: bool

    @property
    def notional(self) -> Decimal:
        return self.amount * self.price


@dataclass
class Story:
    fills: list[Fill] = field(default_factory=list)
    cycles: list[str] = field(default_factory=list)
    orders: set[str] = field(default_factory=set)
    blocked: int = 0
    skipped: int = 0
    errors: int = 0
    rebalances: int = 0

    def turnover(self, *, live_only: bool = False) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for fill in self.fills:
            if not (live_only and fill.dry_run):
                totals["USDT"] = totals.get("USDT", Decimal(0)) + fill.notional
        return totals

    def fees(self, *, live_only: bool = False) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for fill in self.fills:
            if not (live_only and fill.dry_run):
                totals[fill.fee_currency] = totals.get(fill.fee_currency, Decimal(0)) + fill.fee
        return totals


def _q(value: Decimal, places: str) -> Decimal:
    return value.quantize(Decimal(places))


def _drift_fields(rng: random.Random, scale: Decimal) -> tuple[dict[str, Any], list[str]]:
    nav = _q(Decimal(100000) + Decimal(rng.randint(-3000, 3000)), "0.01")
    rows, out = [], []
    for name, _account, _symbol, _market, target, band in SLEEVES:
        drift = _q(Decimal(rng.uniform(-1.6, 1.6)) * band * scale, "0.0001")
        current = target + drift
        if abs(drift) > band:
            out.append(name)
        rows.append(
            {
                "sleeve": name,
                "value": str(_q(current * nav, "0.01")),
                "current": str(current),
                "target": str(target),
                "band": str(band),
                "drift": str(drift),
                "out_of_band": abs(drift) > band,
            }
        )
    return {"nav": str(nav), "cash": "0.35", "sleeves": rows}, out


def _snapshot(nav: str) -> dict[str, Any]:
    return {
        "nav": nav,
        "quote_currency": "USDT",
        "accounts": {
            "spot": {
                "market_type": "spot",
                "holdings": {
                    "BTC": {"free": "0.98", "total": "0.98"},
                    "ETH": {"free": "6.4", "total": "6.4"},
                    "USDT": {"free": "21000", "total": "21000"},
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
                        "contracts": "-0.246",
                        "notional": "-15010.92",
                        "entry_price": "60900",
                        "unrealized_pnl": "-29.52",
                    }
                },
            },
        },
        "prices": {f"{a}:{s}": str(PRICES[s]) for _n, a, s, *_ in SLEEVES},
    }


def _legs(rng: random.Random, out: list[str]) -> Iterator[dict[str, Any]]:
    index = 0
    for name, account, symbol, market, _target, _band in SLEEVES:
        if name not in out:
            continue
        side = rng.choice(("buy", "sell"))
        amount = _q(Decimal(rng.uniform(0.01, 2.0)), "0.001")
        price = PRICES[symbol] + Decimal(rng.randint(-50, 50))
        yield {
            "index": index,
            "sleeve": name,
            "account": account,
            "symbol": symbol,
            "side": side,
            "amount": str(amount),
            "price": str(price),
            "notional": str(amount * price),
            "reduce_only": market == "swap" and name == "hedge" and side == "buy",
            "market_type": market,
        }
        index += 1


def _fee(leg: dict[str, Any], amount: Decimal, price: Decimal) -> tuple[Decimal, str]:
    if leg["market_type"] == "spot" and leg["side"] == "buy":
        return _q(amount * Decimal("0.001"), "0.00000001"), leg["symbol"].split("/")[0]
    return _q(amount * price * Decimal("0.0005"), "0.00000001"), "USDT"


def write_story(
    directory: Path,
    *,
    days: int = 3,
    cycles_per_day: int = 4,
    dry_run_days: int = 1,
    seed: int = 9,
    scale: Decimal = Decimal(1),
) -> Story:
    """Dry-run for the first `dry_run_days` days, live after; returns the ledger."""
    rng = random.Random(seed)
    clock = SteppingClock(STEP, START)
    story = Story()
    order_number = 1000
    with AuditLog.open(directory, PORTFOLIO, clock) as log:
        log.append(EventType.STARTUP, None, version="0.1.0", mode="dry-run")
        for day in range(days):
            dry = day < dry_run_days
            for n in range(cycles_per_day):
                clock.jump(START + timedelta(days=day, hours=n * 24 // cycles_per_day, minutes=1))
                cycle = cycle_id_at(clock.now)
                story.cycles.append(cycle)
                order_number = _cycle(log, rng, story, cycle, dry, order_number, scale)
                log.flush()
        log.append(EventType.SHUTDOWN, None, reason="signal")
    return story


def _fill(record: Mapping[str, Any], amount: Decimal, fee: Decimal) -> Fill:
    """The ledger's entry for a fill record: `amount` and `fee` are what this fill added."""
    return Fill(
        time=record["time"],
        cycle_id=record["cycle_id"],
        account=record["account"],
        symbol=record["symbol"],
        side=record["side"],
        amount=amount,
        price=Decimal(record["price"]),
        fee=fee,
        fee_currency=record["fee_currency"],
        order_id=record["order_id"],
        client_order_id=record["client_order_id"],
        dry_run=record["dry_run"],
    )


def _cycle(
    log: AuditLog,
    rng: random.Random,
    story: Story,
    cycle: str,
    dry: bool,
    order_number: int,
    scale: Decimal,
) -> int:
    append = log.append
    append(EventType.CYCLE_START, cycle, mode="dry-run" if dry else "live", trading_state="active")
    drift, out = _drift_fields(rng, scale)
    append(EventType.SNAPSHOT, cycle, **_snapshot(drift["nav"]))
    weights = {s[0]: str(s[4]) for s in SLEEVES}
    append(EventType.TARGETS, cycle, source="config", weights=weights, inputs={})
    append(EventType.DRIFT, cycle, **drift)
    roll = rng.random()
    if out and roll < 0.2:
        story.skipped += 1
        append(
            EventType.TRIGGER, cycle, trade=False, reason="in cooldown for 2h", rule="cooldown",
            out_of_band=out,
        )  # fmt: skip
        append(
            EventType.CYCLE_END, cycle, outcome="no-trade", traded=False, reason="cooldown",
            orders=0, turnover="0", duration_ms=12,
        )  # fmt: skip
        return order_number
    if not out:
        append(
            EventType.TRIGGER, cycle, trade=False, reason="all sleeves in band", rule="band",
            out_of_band=[],
        )  # fmt: skip
        append(
            EventType.CYCLE_END, cycle, outcome="no-trade", traded=False, reason="in band",
            orders=0, turnover="0", duration_ms=9,
        )  # fmt: skip
        return order_number
    append(
        EventType.TRIGGER, cycle, trade=True, reason=f"{', '.join(out)} out of band",
        rule="band", out_of_band=out,
    )  # fmt: skip
    legs = list(_legs(rng, out))
    append(
        EventType.PLAN, cycle, to="target", legs=legs,
        dropped=[{
            "sleeve": "ether", "account": "spot", "symbol": "ETH/USDT", "side": "buy",
            "amount": "0.0001", "notional": "0.31", "reason": "below minimum notional 5",
        }],
        notes=["sells first"],
    )  # fmt: skip
    if roll > 0.85:
        story.blocked += 1
        append(
            EventType.RISK_VERDICT, cycle, approved=False,
            reasons=["turnover 41% of NAV exceeds the daily limit 25%"],
            legs=[{"index": leg["index"], "approved": False, "reason": "daily turnover"}
                  for leg in legs],
        )  # fmt: skip
        append(
            EventType.CYCLE_END, cycle, outcome="blocked", traded=False, reason="risk",
            orders=0, turnover="0", duration_ms=15,
        )  # fmt: skip
        return order_number
    append(
        EventType.RISK_VERDICT, cycle, approved=True, reasons=[],
        legs=[{"index": leg["index"], "approved": True, "reason": None} for leg in legs],
    )  # fmt: skip
    turnover = Decimal(0)
    orders = 0
    for leg in legs:
        cid = client_order_id(PORTFOLIO, cycle, leg["index"])
        amount, price = Decimal(leg["amount"]), Decimal(leg["price"])
        fee, fee_currency = _fee(leg, amount, price)
        append(
            EventType.ORDER_INTENT, cycle, sync=True, client_order_id=cid, sleeve=leg["sleeve"],
            account=leg["account"], symbol=leg["symbol"], side=leg["side"], amount=leg["amount"],
            price=leg["price"], order_type="market", reduce_only=leg["reduce_only"], attempt=0,
        )  # fmt: skip
        common = {
            "account": leg["account"], "symbol": leg["symbol"], "side": leg["side"],
            "client_order_id": cid, "fee_currency": fee_currency,
        }  # fmt: skip
        if dry:
            record = append(
                EventType.PAPER_FILL, cycle, **common, amount=amount, price=price,
                notional=amount * price, fee=fee, order_id=None, reduce_only=leg["reduce_only"],
                dry_run=True,
            )  # fmt: skip
            story.fills.append(_fill(record.data, amount, fee))
        else:
            order_number += 1
            order_id = str(order_number)
            append(EventType.ORDER_SENT, cycle, client_order_id=cid)
            if rng.random() < 0.3:
                # Cumulative partial report first: the reader counts only the difference.
                part = _q(amount / 3, "0.001")
                part_fee = _q(fee / 3, "0.00000001")
                record = append(
                    EventType.ORDER_PARTIALLY_FILLED, cycle, **common, reduce_only=False,
                    dry_run=False, order_id=order_id, amount=part, price=price, fee=part_fee,
                )  # fmt: skip
                story.fills.append(_fill(record.data, part, part_fee))
                rest, rest_fee = amount - part, fee - part_fee
            else:
                rest, rest_fee = amount, fee
            record = append(
                EventType.ORDER_FILLED, cycle, **common, reduce_only=False, dry_run=False,
                order_id=order_id, amount=amount, price=price, fee=fee,
            )  # fmt: skip
            story.fills.append(_fill(record.data, rest, rest_fee))
        story.orders.add(cid)
        orders += 1
        turnover += amount * price
    if roll > 0.75:
        story.errors += 1
        append(EventType.ERROR, cycle, message="fetch_balance timed out; retried")
    after, _ = _drift_fields(rng, Decimal("0.2"))
    append(EventType.POST_TRADE_DRIFT, cycle, **after)
    story.rebalances += 1
    append(
        EventType.CYCLE_END, cycle, outcome="traded", traded=True, reason=", ".join(out),
        orders=orders, turnover=str(turnover), duration_ms=830,
    )  # fmt: skip
    return order_number
