"""Numbers as a person reads them: thousands separators, a fixed number of places, amounts at
the market's precision, percentages to two decimals, never `-0.00`, durations as `6h` or `1d`.

Only what people read goes through here (the terminal, `check-config`, `audit show/summary`,
the report). Machine outputs — `--json`, CSV, the audit records themselves — keep the exact
decimals. Pure: no I/O, no locale (the separators are always `,` and `.`).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

Number = Decimal | int | float | str

MAX_PLACES = 8  # an amount shown at its own precision never shows more (satoshis)
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def _decimal(value: Number) -> Decimal:
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


def places_of(step: Decimal) -> int:
    """Decimal places of a lot size or tick: 0.001 → 3, 0.5 → 1, 1 → 0, 10 → 0."""
    exponent = step.normalize().as_tuple().exponent
    return max(0, -int(exponent))


def _own_places(number: Decimal) -> int:
    """The places a value carries, trailing zeros left out, at most MAX_PLACES."""
    return min(places_of(number) if number else 0, MAX_PLACES)


def number(value: Number, places: int | None = None, *, sign: bool = False) -> str:
    """`value` with thousands separators and `places` decimals (rounded half-even); None: the
    value's own decimals without trailing zeros. `sign` shows `+` on positive values; a value
    that rounds to zero is `0.00` (or `+0.00`), never `-0.00`."""
    exact = _decimal(value)
    shown = _own_places(exact) if places is None else places
    rounded = _round(exact, shown)
    if places is None:  # rounding to MAX_PLACES may end in zeros: they go too
        shown = _own_places(rounded)
        rounded = _round(rounded, shown)
    if rounded.is_zero():
        rounded = abs(rounded)
    return format(rounded, f"{'+' if sign else ''},.{shown}f")


def _round(exact: Decimal, places: int) -> Decimal:
    with localcontext() as context:
        context.prec = max(28, len(exact.as_tuple().digits) + places + 2)
        return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def money(
    value: Number, currency: str | None = None, *, places: int = 2, sign: bool = False
) -> str:
    """An amount of the quote currency (NAV, notional, turnover): `99,999.90 USDT`."""
    text = number(value, places, sign=sign)
    return f"{text} {currency}" if currency else text


def amount(value: Number, step: Decimal | None = None, *, sign: bool = False) -> str:
    """An asset amount at the market's precision (the places of its lot size `step`), or at
    its own precision when the step is not known (amounts recorded by an exchange are already
    multiples of it)."""
    places = places_of(step) if step is not None and step > 0 else None
    return number(value, places, sign=sign)


def percent(fraction: Number, *, places: int = 2, sign: bool = False) -> str:
    """A share of NAV as a percentage: 0.6 → `60.00%`."""
    return number(_decimal(fraction) * 100, places, sign=sign) + "%"


def points(fraction: Number, *, places: int = 2) -> str:
    """A drift (a difference of weights) in percentage points, always signed: `+0.10 pp`."""
    return number(_decimal(fraction) * 100, places, sign=True) + " pp"


def duration(value: timedelta | float | int) -> str:
    """`6h`, `1d`, `1h 30m`, `10s`, `250ms`: whole units from days down to seconds; a duration
    under a second in milliseconds."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        return "-" + duration(-seconds)
    if seconds < 1:
        return f"{number(Decimal(str(seconds)) * 1000, 0)}ms" if seconds else "0s"
    whole = int(seconds)
    parts = []
    for unit, size in _UNITS:
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count:,}{unit}")
    fraction = Decimal(str(seconds)) % 1
    if fraction and seconds < 60:
        return f"{number(Decimal(str(seconds)), None)}s"
    return " ".join(parts)
