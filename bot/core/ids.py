"""Identifiers: sortable cycle ids and deterministic client order ids.

A client order id is derived from the portfolio, the cycle id, the leg's index and the attempt
(a limit order and the market order for its remainder are two attempts of one leg), and for a
child order of a leg sliced into several orders, the child's index. The same
inputs always give the same id, which is what lets a lost reply be looked up instead of resent.
Ids use only `[A-Za-z0-9_]` and stay within 32 characters, which fits every venue the bot
speaks (Binance allows 36 characters of `[.A-Z:/a-z0-9_-]`; Bitget is stricter).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

_CYCLE_ID = re.compile(r"^\d{8}T\d{9}$")
MAX_CLIENT_ID = 32
MAX_CHILDREN = 100  # child orders of one sliced leg: two digits in its client order ids


def portfolio_tag(portfolio: str) -> str:
    """Six hex characters naming the portfolio inside client order ids."""
    return hashlib.sha256(portfolio.encode()).hexdigest()[:6]


def cycle_id_at(moment: datetime) -> str:
    """`YYYYMMDDTHHMMSSmmm` in UTC: sorts in time order, unique for one portfolio's cycles."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S}{moment.microsecond // 1000:03d}"


def is_cycle_id(value: str) -> bool:
    return bool(_CYCLE_ID.match(value))


def client_order_id(
    portfolio: str, cycle_id: str, leg_index: int, attempt: int = 0, child: int | None = None
) -> str:
    """`child`: the index of a child order of a sliced leg (`cycle_id` is then the cycle that
    sliced it): `c` instead of the second `_`, two digits of leg and two of child."""
    if not is_cycle_id(cycle_id):
        raise ValueError(f"not a cycle id: {cycle_id!r}")
    if not 0 <= leg_index < 1000 or not 0 <= attempt < 10:
        raise ValueError(f"leg index {leg_index} / attempt {attempt} out of range")
    stamp = f"rb{portfolio_tag(portfolio)}_{cycle_id.replace('T', '')}"
    if child is None:
        value = f"{stamp}_{leg_index:03d}{attempt}"
    elif 0 <= child < MAX_CHILDREN and leg_index < 100:
        value = f"{stamp}c{leg_index:02d}{child:02d}{attempt}"
    else:
        raise ValueError(f"child {child} of leg {leg_index} out of range")
    assert len(value) <= MAX_CLIENT_ID
    return value


def transfer_client_id(portfolio: str, cycle_id: str, index: int) -> str:
    """The id of a cycle's wallet transfer: like an order's, with `t` before the index."""
    if not is_cycle_id(cycle_id):
        raise ValueError(f"not a cycle id: {cycle_id!r}")
    if not 0 <= index < 100:
        raise ValueError(f"transfer index {index} out of range")
    value = f"rb{portfolio_tag(portfolio)}_{cycle_id.replace('T', '')}_t{index:02d}"
    assert len(value) <= MAX_CLIENT_ID
    return value


def is_ours(client_id: str, portfolio: str) -> bool:
    """Whether an order on the exchange was placed by this portfolio's bot."""
    return client_id.startswith(f"rb{portfolio_tag(portfolio)}_")
