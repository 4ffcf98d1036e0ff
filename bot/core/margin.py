"""Margin watch: how far each futures position is from liquidation, from the exchange's own
numbers, and what the bot may do about an account too close to it.

Pure. For every futures account of a snapshot:
- a position's liquidation distance is |mark - liquidation price| / mark (the adverse move that
  liquidates it; none when the exchange reports no liquidation price);
- the account's margin ratio is its positions' maintenance margin over its equity (wallet +
  unrealized PnL), Binance's and Bitget's own definition of the cross margin ratio;
- the account is in breach when a distance is below `min_liquidation_distance` or the ratio is
  above `max_margin_ratio`; critical when a distance is below half that minimum or the ratio
  above the midpoint between the maximum and 1 (at 1 the exchange liquidates).
A leg that would increase a position of an account in breach is denied (`margin_denial`): the
bot first tops the wallet up (a collateral transfer) or lets the position shrink. A critical
account moves trading to REDUCING (`bot.core.risk.observe_margin`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bot.core.domain import ZERO, Leg, MarketType, Position, Snapshot

HALF = Decimal("0.5")


class MarginLevel(StrEnum):
    OK = "ok"
    BREACH = "breach"  # below a limit: no increase, a top-up where collateral is managed
    CRITICAL = "critical"  # close to liquidation: reductions only, and an alert


@dataclass(frozen=True, slots=True)
class MarginLimits:
    min_liquidation_distance: Decimal | None = None  # fraction of the mark
    max_margin_ratio: Decimal | None = None  # maintenance margin / equity


@dataclass(frozen=True, slots=True)
class AccountMargin:
    """One futures account's distance from liquidation and how the limits judge it."""

    account: str
    margin_ratio: Decimal | None
    distances: tuple[tuple[str, Decimal], ...]  # (symbol, distance), nearest first
    level: MarginLevel
    reasons: tuple[str, ...]

    @property
    def nearest(self) -> Decimal | None:
        return self.distances[0][1] if self.distances else None


def liquidation_distance(position: Position) -> Decimal | None:
    """The adverse move, as a fraction of the mark, that reaches the liquidation price."""
    if position.liquidation_price is None or position.mark_price <= 0:
        return None
    return abs(position.mark_price - position.liquidation_price) / position.mark_price


def margin_ratio(positions: list[Position], equity: Decimal) -> Decimal | None:
    """Maintenance margin over equity; None when no position reports its maintenance."""
    maint = [p.maintenance_margin for p in positions if p.maintenance_margin is not None]
    if not maint:
        return None
    total = sum(maint, ZERO)
    if equity <= 0:
        return None if total == 0 else Decimal("Infinity")
    return total / equity


def _judge(
    distances: list[tuple[str, Decimal]], ratio: Decimal | None, limits: MarginLimits
) -> tuple[MarginLevel, list[str]]:
    level, reasons = MarginLevel.OK, []
    least = limits.min_liquidation_distance
    for symbol, distance in distances:
        if least is not None and distance < least:
            reasons.append(f"{symbol} is {distance:.1%} from liquidation (minimum {least:.0%})")
            level = MarginLevel.CRITICAL if distance < least * HALF else max_level(level)
    most = limits.max_margin_ratio
    if most is not None and ratio is not None and ratio > most:
        reasons.append(f"margin ratio {ratio:.1%} (maximum {most:.0%})")
        level = MarginLevel.CRITICAL if ratio > (most + 1) * HALF else max_level(level)
    return level, reasons


def max_level(level: MarginLevel) -> MarginLevel:
    """At least BREACH (CRITICAL stays)."""
    return MarginLevel.CRITICAL if level is MarginLevel.CRITICAL else MarginLevel.BREACH


def watch_margin(snapshot: Snapshot, limits: MarginLimits) -> tuple[AccountMargin, ...]:
    """Every futures account with positions, judged against the limits."""
    result = []
    for name, account in sorted(snapshot.accounts.items()):
        if account.market_type is not MarketType.SWAP or not account.positions:
            continue
        positions = list(account.positions.values())
        measured = [(p.symbol, liquidation_distance(p)) for p in positions]
        distances = sorted(
            ((s, d) for s, d in measured if d is not None), key=lambda item: (item[1], item[0])
        )
        ratio = margin_ratio(positions, account.equity)
        level, reasons = _judge(distances, ratio, limits)
        result.append(
            AccountMargin(
                name, ratio, tuple(distances), level, tuple(f"{name}: {r}" for r in reasons)
            )
        )
    return tuple(result)


def increases_exposure(leg: Leg, snapshot: Snapshot) -> bool:
    """Whether a futures leg makes its position larger (or opens one); a flip to a smaller
    position on the other side asks less margin, so it is not an increase."""
    if leg.market_type is MarketType.SPOT or leg.reduce_only:
        return False
    account = snapshot.accounts.get(leg.key.account)
    position = account.positions.get(leg.key.symbol) if account else None
    now = position.contracts if position else ZERO
    after = now + leg.signed_amount
    return abs(after) > abs(now)


def margin_denial(leg: Leg, snapshot: Snapshot, watched: tuple[AccountMargin, ...]) -> str | None:
    """Why a leg may not be sent: it increases a position on an account in breach."""
    for margin in watched:
        if (
            margin.account == leg.key.account
            and margin.level is not MarginLevel.OK
            and increases_exposure(leg, snapshot)
        ):
            return "; ".join(margin.reasons) + ": no increase until margin is restored"
    return None


def margin_fields(watched: tuple[AccountMargin, ...]) -> dict[str, Any]:
    """The `margin_watch` audit record of the accounts not OK."""
    return {
        "accounts": [
            {
                "account": m.account,
                "level": m.level,
                "margin_ratio": m.margin_ratio,
                "nearest_liquidation_distance": m.nearest,
                "reasons": list(m.reasons),
            }
            for m in watched
        ]
    }
