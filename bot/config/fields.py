"""The config's shared pieces: names, limits, the number and duration fields every section
validates with, the base model, and the context a config is validated in."""

from __future__ import annotations

import contextvars
import math
import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
)

ENV_PREFIX = "REBALANCE_"
EXCHANGES = ("binance", "binanceusdm", "bitget")
SECRET_FIELDS = ("api_key", "secret", "password")
NAME_PATTERN = re.compile(r"^[a-z0-9_]{1,32}$")
PORTFOLIO_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
MAX_DURATION = timedelta(days=3650)
# How long the live executor looks an order recorded NOT_PLACED up again.
NOT_PLACED_RECHECK = timedelta(days=1)
# The largest leverage either exchange offers on any perpetual; the bracket of each symbol (often
# lower) is the exchange's own limit, checked when trading.
MAX_LEVERAGE = Decimal(125)


def _decimal(value: Any) -> Any:
    """TOML floats become Decimal through their text, so 0.6 stays exactly 0.6."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, float | int | str):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValueError(f"{value!r} is not a number") from exc
        if not number.is_finite():
            raise ValueError(f"{value!r} is not a finite number")
        return number
    return value


def _duration(value: Any) -> Any:
    """A duration from seconds or text (`90s`, `15m`, `4h`, `1d`), finite, 0 to `MAX_DURATION`."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration, got a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration (use e.g. 90s, 15m, 4h, 1d)")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration")
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a finite duration")
    if seconds < 0:
        raise ValueError(f"{value!r}: a duration cannot be negative")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{value!r} is too long (at most {MAX_DURATION.days} days)")
    return timedelta(seconds=seconds)


def _positive_duration(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"must be longer than 0 seconds, got {value.total_seconds():g} s")
    return value


def band_value(value: Decimal | None, *, relative: bool = False) -> Decimal | None:
    """A band is a fraction: `band = 5` most likely meant 5 pp (0.05), `relative_band = 25`
    25 % of the target (0.25); the message says so."""
    if value is not None and not 0 < value < 1:
        hint = ""
        if 1 <= value < 100:
            what = f"{value} % of the target" if relative else f"{value} pp"
            hint = f" (a fraction: {value / 100} for {what})"
        raise ValueError(f"must be > 0 and < 1, got {value}{hint}")
    return value


Dec = Annotated[Decimal, BeforeValidator(_decimal)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
# Timeouts, polls and windows: zero would mean "give up at once" or "spin".
PositiveDuration = Annotated[
    timedelta, BeforeValidator(_duration), AfterValidator(_positive_duration)
]


def exchange_family(exchange: str) -> str:
    """The exchange an account belongs to: Binance spot and USDⓈ-M are one exchange."""
    return "binance" if exchange in ("binance", "binanceusdm") else exchange


class Section(BaseModel):
    """A config section: unknown keys are mistakes, and a loaded config does not change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# The environment a config is validated against (a mapping given, not os.environ, in tests).
VALIDATION_ENV: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("rebalance_env")
# The portfolio's quote currency while a config is validated, for the sleeves' suggestions.
VALIDATION_QUOTE: contextvars.ContextVar[str] = contextvars.ContextVar(
    "rebalance_quote", default="USDT"
)
# Whether a live config must carry its trading keys: not for a command that never reaches an
# account (the audit log's reader, a backtest, a download of public candles).
VALIDATION_KEYS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "rebalance_keys", default=True
)
