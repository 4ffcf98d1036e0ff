"""Real market filters of the coins the simulator can list, per venue, and where each was read.

A coin gets a market on a venue with that venue's real filters from these tables. Rows whose
`source` is `capture` were read from ccxt's captured exchange data (its static test fixtures:
Binance's exchangeInfo, Bitget's v2 symbol and contract lists) and a test holds them equal to
it; rows marked `unchecked` are the venue's values as first written into the simulator, not
checked against any capture. What a capture does not carry is the simulator's own choice:
Binance's maximum quantity of a market order beyond the captured coins, and every maximum order
size of a Bitget perpetual. Binance raised the minimum notional of the BTC and ETH perpetuals
(100 and 20 USDT) after the capture was taken (it shows 5).
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from rebalance_sim.tables import rows

D = Decimal

# Binance spot and USDⓈ-M perpetual filters (the maximum quantity of a market order is
# `market_max`).
_BINANCE_TABLE = """
    asset  market  tick      step     min_qty  max_qty   market_max  min_notional  source
    BTC    spot    0.01      0.00001  0.00001  9000      128         5             capture
    ETH    spot    0.01      0.0001   0.0001   9000      3277        5             capture
    SOL    spot    0.01      0.001    0.001    9000000   40000       5             unchecked
    BNB    spot    0.01      0.001    0.001    900000    5000        5             unchecked
    XRP    spot    0.0001    1        1        9222449   6858819     5             capture
    DOGE   spot    0.00001   1        1        9000000   28160624    5             capture
    ADA    spot    0.0001    0.1      0.1      900000    3734056     5             capture
    LINK   spot    0.01      0.01     0.01     90000     60000       5             unchecked
    AVAX   spot    0.01      0.01     0.01     9000000   40000       5             unchecked
    DOT    spot    0.001     0.01     0.01     9000000   200000      5             unchecked
    LTC    spot    0.01      0.001    0.001    90000     20716       5             capture
    TRX    spot    0.00001   0.1      0.1      9000000   7601219     5             capture
    BTC    perp    0.10      0.001    0.001    1000      120         100           capture
    ETH    perp    0.01      0.001    0.001    10000     2000        20            capture
    SOL    perp    0.0100    1        1        1000000   5000        5             unchecked
    BNB    perp    0.010     0.01     0.01     100000    2000        5             unchecked
    XRP    perp    0.0001    0.1      0.1      10000000  2000000     5             capture
    DOGE   perp    0.000010  1        1        50000000  30000000    5             capture
    ADA    perp    0.00010   1        1        2000000   300000      5             capture
    LINK   perp    0.001     0.01     0.01     200000    30000       5             unchecked
    AVAX   perp    0.0010    1        1        1000000   20000       5             unchecked
    DOT    perp    0.001     0.1      0.1      1000000   100000      5             unchecked
    LTC    perp    0.01      0.001    0.001    10000     5000        5             capture
    TRX    perp    0.00001   1        1        10000000  5000000     5             capture
"""

# Bitget classic spot symbols: pricePrecision, quantityPrecision (`price`, `qty`),
# maxTradeAmount, minTradeUSDT.
_BITGET_SPOT_TABLE = """
    asset  price  qty  max_qty      min_notional  source
    BTC    2      6    10000000000  1             capture
    ETH    2      4    10000000000  1             capture
    SOL    2      4    10000000000  1             unchecked
    BNB    2      4    10000000000  1             unchecked
    XRP    4      4    10000000000  1             capture
    DOGE   5      4    10000000000  1             capture
    ADA    4      3    10000000000  1             capture
    LTC    2      4    10000000000  1             capture
    TRX    5      4    10000000000  1             capture
"""

# Bitget USDT-M contracts: pricePlace, volumePlace (`price`, `qty`), minTradeNum, maxOrderQty,
# maxMarketOrderQty, maxLever, minTradeUSDT (ticks and lots are powers of ten of the places:
# priceEndStep 1).
_BITGET_PERP_TABLE = """
    asset  price  qty  min_qty  max_qty   market_max  leverage  min_notional  source
    BTC    1      3    0.001    1200      240         125       5             capture
    ETH    2      2    0.01     12000     2400        100       5             capture
    SOL    3      1    0.1      150000    30000       100       5             unchecked
    BNB    2      2    0.01     5000      1000        75        5             unchecked
    XRP    4      0    1        5000000   1000000     125       5             capture
    DOGE   5      0    1        50000000  10000000    75        5             capture
    ADA    4      0    1        5000000   1000000     75        5             capture
    LTC    2      1    0.1      50000     10000       50        5             capture
    TRX    5      0    1        10000000  2000000     30        5             capture
"""


class BinanceFilters(NamedTuple):
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max: Decimal
    min_notional: Decimal
    source: str


class BitgetSpot(NamedTuple):
    price_places: int
    qty_places: int
    max_qty: Decimal
    min_notional: Decimal
    source: str


class BitgetPerp(NamedTuple):
    price_places: int
    qty_places: int
    min_qty: Decimal
    max_qty: Decimal
    market_max: Decimal
    max_leverage: int
    min_notional: Decimal
    source: str


def _binance(market: str) -> dict[str, BinanceFilters]:
    return {
        row[0]: BinanceFilters(
            D(row[2]), D(row[3]), D(row[4]), D(row[5]), D(row[6]), D(row[7]), row[8]
        )
        for row in rows(_BINANCE_TABLE)[1]
        if row[1] == market
    }


BINANCE_SPOT = _binance("spot")
BINANCE_PERP = _binance("perp")
BITGET_SPOT = {
    row[0]: BitgetSpot(int(row[1]), int(row[2]), D(row[3]), D(row[4]), row[5])
    for row in rows(_BITGET_SPOT_TABLE)[1]
}
BITGET_PERP = {
    row[0]: BitgetPerp(
        int(row[1]), int(row[2]), D(row[3]), D(row[4]), D(row[5]), int(row[6]), D(row[7]), row[8]
    )
    for row in rows(_BITGET_PERP_TABLE)[1]
}
