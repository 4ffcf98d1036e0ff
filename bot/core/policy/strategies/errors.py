"""Errors of the target strategies: each says in one line what is wrong with their inputs.

They are `ValueError`s (bad values went in) and `BotError`s (the shell reports them like every
other error of the bot). Price data the bot cannot use is also a `DataError`.
"""

from __future__ import annotations

from bot.core.errors import BotError, DataError


class StrategyError(BotError, ValueError):
    """A strategy cannot produce targets from the inputs it was given."""


class InconsistentAllocation(StrategyError):
    """Weights contradict each other: groups above 100 %, inner weights not summing to 1, ..."""


class InsufficientHistory(StrategyError):
    """Too few returns, or a covariance that is not positive definite, to estimate risk."""


class SolverNotConverged(StrategyError):
    """The equal-risk-contribution solver did not reach its tolerance within its iteration cap."""


class PriceDataError(StrategyError, DataError):
    """Prices that cannot be turned into returns: NaN, zero or negative, unsorted or repeated."""
