"""The plan as the seed article's table: sleeve, current, target, drift, action, amount, notional;
and the holdings outside the trading wallets that the weights count.

Pure: rows of plain values; the CLI renders them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from bot.core import human
from bot.core.domain import (
    ZERO,
    DriftReport,
    InstrumentKey,
    Leg,
    OutsideWallet,
    Plan,
    Side,
    Sleeve,
    SleeveKind,
    Snapshot,
)


@dataclass(frozen=True, slots=True)
class PlanRow:
    sleeve: str
    current: Decimal  # weight
    target: Decimal
    drift: Decimal
    band: Decimal
    action: str
    amount: str  # what the legs trade, e.g. "0.16667 BTC" or "SOL -12.3, XRP -400"
    notional: Decimal  # sum of the legs' notionals
    source: str = ""  # where the target came from (strategy and inputs), when known


@dataclass(frozen=True, slots=True)
class OutsideRow:
    """Coins an account holds outside its trading wallet: counted, never traded."""

    account: str
    asset: str
    wallet: OutsideWallet
    amount: Decimal


def outside_rows(snapshot: Snapshot) -> tuple[OutsideRow, ...]:
    """Every holding outside a trading wallet, by account, asset and wallet."""
    return tuple(
        OutsideRow(name, asset, wallet, amount)
        for name, account in sorted(snapshot.accounts.items())
        for asset, holding in sorted(account.holdings.items())
        for wallet, amount in sorted(holding.outside.items())
        if amount != 0
    )


def base_of(symbol: str) -> str:
    """`BTC` of `BTC/USDT` and of `BTC/USDT:USDT`."""
    return symbol.split("/", maxsplit=1)[0]


def action_for(
    sleeve: Sleeve, current: Decimal, legs: Sequence[Leg], dust: bool, why: str | None = None
) -> str:
    """What the legs do to the sleeve, in the seed article's words."""
    if not legs:
        if not dust:
            return "no action"
        return f"no action ({why})" if why else "no action (below the minimum order)"
    if sleeve.kind is SleeveKind.SPOT:
        base = base_of(legs[0].key.symbol)
        return f"buy {base}" if legs[0].side is Side.BUY else f"sell {base}"
    if all(leg.reduce_only for leg in legs):
        return "close some hedging contracts" if current < 0 else "reduce futures positions"
    sides = {leg.side for leg in legs}
    if len(sides) > 1:
        # A basket whose components move different ways: one shrinks while another grows.
        return "rebalance futures positions"
    buying = sides == {Side.BUY}
    if (current < 0 and buying) or (current > 0 and not buying):
        # Trading against the sleeve's sign with an opening leg: it crosses zero.
        return "flip to long" if buying else "flip to short"
    return "increase futures positions" if buying else "add hedging contracts"


def plan_rows(
    drift: DriftReport,
    plan: Plan,
    sleeves: Sequence[Sleeve],
    sources: Mapping[str, str] | None = None,
    steps: Mapping[InstrumentKey, Decimal] | None = None,
) -> list[PlanRow]:
    """The table's rows. With `steps` (each instrument's lot size) the amounts are written for
    a person, at the market's precision with thousands separators; without, exactly."""

    def show(key: InstrumentKey, value: Decimal) -> str:
        return str(value) if steps is None else human.amount(value, steps.get(key))

    by_name = drift.by_name()
    rows = []
    for sleeve in sleeves:
        d = by_name.get(sleeve.name)
        if d is None:
            continue
        legs = [leg for leg in plan.legs if leg.sleeve == sleeve.name]
        dropped = [x for x in plan.dropped if x.sleeve == sleeve.name]
        dust = bool(dropped)
        why = None
        if dropped and not dropped[0].reason.startswith(("dust", "below one lot")):
            why = dropped[0].reason
        if len(legs) == 1 or len({leg.key for leg in legs}) == 1:
            amount = (
                f"{show(legs[0].key, sum((leg.signed_amount for leg in legs), ZERO))} "
                f"{base_of(legs[0].key.symbol)}"
                if legs
                else ""
            )
        else:
            amount = ", ".join(
                f"{base_of(leg.key.symbol)} {show(leg.key, leg.signed_amount)}" for leg in legs
            )
        rows.append(
            PlanRow(
                sleeve=sleeve.name,
                current=d.current,
                target=d.target,
                drift=d.drift,
                band=d.band,
                action=action_for(sleeve, d.current, legs, dust, why),
                amount=amount,
                notional=sum((leg.notional for leg in legs), ZERO),
                source=(sources or {}).get(sleeve.name, ""),
            )
        )
    return rows
