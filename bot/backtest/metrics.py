"""Performance figures of one NAV path: return, CAGR, volatility, Sharpe, drawdown, turnover.

Statistics in floats (numpy); the money they summarise was counted in `Decimal` by the run.
Returns are per step from the starting capital; volatility and Sharpe are annualised with the
number of steps in a 365-day year (crypto trades every day) and a zero risk-free rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bot.backtest.history import FloatArray

YEAR_MS = 365 * 86_400_000


@dataclass(frozen=True, slots=True)
class Metrics:
    final_nav: float
    total_return: float
    cagr: float
    volatility: float
    sharpe: float
    max_drawdown: float  # the largest fall from a running peak, as a fraction of the peak
    turnover: float  # traded notional / mean NAV
    fees: float
    funding: float
    rebalances: int
    steps: int
    time_out_of_band: float  # fraction of steps with a sleeve out of its band
    liquidations: int  # futures accounts the exchange closed out

    def to_json(self) -> dict[str, float | int]:
        return {
            "final_nav": _round(self.final_nav),
            "total_return": _round(self.total_return),
            "cagr": _round(self.cagr),
            "volatility": _round(self.volatility),
            "sharpe": _round(self.sharpe),
            "max_drawdown": _round(self.max_drawdown),
            "turnover": _round(self.turnover),
            "fees": _round(self.fees),
            "funding": _round(self.funding),
            "rebalances": self.rebalances,
            "steps": self.steps,
            "time_out_of_band": _round(self.time_out_of_band),
            "liquidations": self.liquidations,
        }


@dataclass(frozen=True, slots=True)
class Costs:
    traded: float  # notional
    fees: float
    funding: float
    rebalances: int
    out_of_band_steps: int
    liquidations: int = 0


def measure(capital: float, nav: FloatArray, period_ms: int, costs: Costs) -> Metrics:
    """The figures of a NAV path that started from `capital` one step before `nav[0]`."""
    path = np.concatenate(([capital], nav))
    returns = path[1:] / path[:-1] - 1.0
    per_year = YEAR_MS / period_ms
    years = len(nav) * period_ms / YEAR_MS
    final = float(nav[-1])
    growth = final / capital
    cagr = growth ** (1.0 / years) - 1.0 if growth > 0 and years > 0 else -1.0
    spread = float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0
    volatility = spread * math.sqrt(per_year)
    sharpe = float(np.mean(returns)) / spread * math.sqrt(per_year) if spread > 0 else 0.0
    peaks = np.maximum.accumulate(path)
    drawdown = float(np.max(1.0 - path / peaks))
    return Metrics(
        final_nav=final,
        total_return=growth - 1.0,
        cagr=cagr,
        volatility=volatility,
        sharpe=sharpe,
        max_drawdown=drawdown,
        turnover=costs.traded / float(np.mean(path)),
        fees=costs.fees,
        funding=costs.funding,
        rebalances=costs.rebalances,
        steps=len(nav),
        time_out_of_band=costs.out_of_band_steps / len(nav),
        liquidations=costs.liquidations,
    )


def _round(value: float) -> float:
    """Twelve significant digits: the same inputs print the same JSON on every machine."""
    return float(f"{value:.12g}")
