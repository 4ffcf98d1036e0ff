"""Instrument names as the config writes them, checked before any exchange is asked.

A spot sleeve names an asset (`BTC`), traded as `BASE/QUOTE` (`BTC/USDT`); a futures sleeve
names linear perpetuals in ccxt's unified form `BASE/QUOTE:SETTLE`, settled in their quote
(`SOL/USDT:USDT`). A name that is not of its form gets a problem with the name the writer most
likely meant ("did you mean SOL/USDT:USDT?"): exchange-style `SOLUSDT`, a spot symbol in a
futures sleeve, a quote that is not the settlement (`XRP/USD:USDT`), a symbol where an asset
belongs. Pure: no I/O.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from bot.core.domain import SleeveKind

# Quote currencies recognised at the end of an exchange-style name (`SOLUSDT`), longest first.
QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "USD")
LINEAR_SETTLES = ("USDT", "USDC")
_CODE = re.compile(r"^[A-Z0-9]{1,20}$")
_PERPETUAL = re.compile(r"^([A-Z0-9]{1,20})/([A-Z0-9]{1,20}):([A-Z0-9]{1,20})$")
_SEPARATORS = re.compile(r"[-_/: ]+")


def _split_glued(text: str) -> tuple[str, str] | None:
    """`SOLUSDT` → (SOL, USDT): a known quote at the end of a name without separators."""
    for quote in QUOTES:
        if text.endswith(quote) and len(text) > len(quote):
            return text[: -len(quote)], quote
    return None


def _linear(quote: str | None, default: str) -> str:
    return quote if quote in LINEAR_SETTLES else default


def perpetual_problem(symbol: str, quote_currency: str = "USDT") -> str | None:
    """Why `symbol` is not a linear perpetual's unified symbol, with a suggestion; None if it is."""
    match = _PERPETUAL.match(symbol)
    if match is not None:
        base, quote, settle = match.groups()
        if quote == settle and settle in LINEAR_SETTLES:
            return None
        if settle == base:
            return (
                f"{symbol} is a coin-margined (inverse) perpetual; only USDⓈ-margined ones are "
                f"traded: did you mean {base}/{quote_currency}:{quote_currency}?"
            )
        meant = _linear(settle, _linear(quote, quote_currency))
        return (
            f"{symbol} is not a USDⓈ-margined perpetual (quote {quote}, settled in {settle}): "
            f"did you mean {base}/{meant}:{meant}?"
        )
    guess = suggest_perpetual(symbol, quote_currency)
    hint = f": did you mean {guess}?" if guess else ""
    if guess and "/" in symbol and ":" not in symbol and symbol.upper() == guess.split(":")[0]:
        return f"{symbol} is a spot symbol; a futures sleeve trades perpetuals{hint}"
    return f"{symbol!r} is not a perpetual's symbol (BASE/QUOTE:SETTLE, e.g. SOL/USDT:USDT){hint}"


def suggest_perpetual(text: str, quote_currency: str = "USDT") -> str | None:
    """The linear perpetual `text` most likely means, or None."""
    parts = [p for p in _SEPARATORS.split(text.strip().upper()) if p]
    if len(parts) == 1:
        glued = _split_glued(parts[0])
        if glued is None:
            return None
        base, quote = glued
        settle = _linear(quote, quote_currency)
        return f"{base}/{settle}:{settle}"
    if len(parts) in (2, 3) and all(_CODE.match(p) for p in parts):
        base = parts[0]
        settle = _linear(parts[-1], _linear(parts[1], quote_currency))
        return f"{base}/{settle}:{settle}"
    return None


def asset_problem(asset: str, quote_currency: str = "USDT") -> str | None:
    """Why a spot sleeve's `asset` is not an asset code (BTC), with a suggestion; else None."""
    if _CODE.match(asset.upper()) and not _CODE.match(asset):
        return f'asset codes are upper case: did you mean asset = "{asset.upper()}"?'
    if _CODE.match(asset):
        glued = _split_glued(asset)
        if glued is not None and glued[1] == quote_currency:
            return (
                f"asset {asset!r} looks like a market, not an asset: did you mean "
                f'asset = "{glued[0]}" (traded as {glued[0]}/{quote_currency})?'
            )
        return None
    parts = [p for p in _SEPARATORS.split(asset.strip().upper()) if p]
    if len(parts) > 1 and all(_CODE.match(p) for p in parts):
        base = parts[0]
        return (
            f'asset {asset!r} is a symbol, not an asset: did you mean asset = "{base}" '
            f"(traded as {base}/{quote_currency})?"
        )
    return f"asset {asset!r} is not an asset code (letters and digits, e.g. BTC)"


def symbol_problem(kind: SleeveKind, symbol: str, quote_currency: str = "USDT") -> str | None:
    """The offline check of a sleeve's instrument: an asset for spot, a perpetual for futures."""
    if kind is SleeveKind.SPOT:
        return asset_problem(symbol, quote_currency)
    return perpetual_problem(symbol, quote_currency)


def closest(symbol: str, known: Iterable[str]) -> str | None:
    """The known name most like `symbol` (a listed market, a portfolio), for "did you mean"."""
    matches = difflib.get_close_matches(symbol.upper(), list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None
