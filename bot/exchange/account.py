"""One configured account over one ccxt client: turn ccxt's replies into the bot's values.

This class only reads. Orders go through `bot.exchange.orders.OrderGateway`, which only the
live executor is given; a dry-run bot never constructs one.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import ccxt.async_support as ccxt
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
)

from bot.core.domain import (
    ONE,
    ZERO,
    AccountState,
    Holding,
    Instrument,
    InstrumentKey,
    MarketType,
    Position,
    Quote,
)
from bot.core.errors import DataError
from bot.exchange.budget import RequestBudget
from bot.exchange.errors import (
    install_code_tables,
    is_rate_limited,
    is_retryable_read,
    to_bot_error,
)
from bot.exchange.shared import SharedVenues, VenueKey
from bot.exchange.venues import (
    market_status_params,
    prepare_client,
    shared_wallet_id,
    used_weight,
)

T = TypeVar("T")
BITGET_FUNDING_PAGE = 100  # the most Bitget sends per page of funding history
BITGET_FUNDING_PAGES = 200  # pages walked back at most (Bitget keeps a limited history)
log = structlog.get_logger("bot.exchange.account")


def to_decimal(value: Any, what: str, *, allow_none: bool = False) -> Decimal | None:
    """A ccxt number as a Decimal, refusing NaN and infinities with a message naming `what`.

    ccxt parses Binance's decimal strings into floats; `str(float)` gives back the shortest
    string that round-trips, which is the exchange's own string for up to 15 significant digits.
    """
    if type(value) is float and math.isfinite(value):
        return Decimal(repr(value))  # ccxt's usual number, by the shortest path
    if value is None:
        if allow_none:
            return None
        raise DataError(f"{what} is missing")
    if isinstance(value, float) and not math.isfinite(value):
        raise DataError(f"{what} is {value}")
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise DataError(f"{what} is not a number: {value!r}") from exc
    if not result.is_finite():
        raise DataError(f"{what} is {value}")
    return result


def _required(value: Any, what: str) -> Decimal:
    result = to_decimal(value, what)
    assert result is not None  # to_decimal raises on None unless allow_none
    return result


def _positive_or_none(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value > 0 else None


def _backoff_seconds(attempt: int) -> float:
    """The wait after a read's failed attempt `attempt` (1, 2 …): 0.2 s doubling per attempt
    up to 5 s, plus up to 0.2 s of jitter."""
    return min(0.2 * 2.0 ** (attempt - 1), 5.0) + random.uniform(0, 0.2)  # noqa: S311 (jitter)


def _after_first(state: RetryCallState) -> float:
    """Tenacity's wait for the attempts after the first (its attempt 1 is the read's 2nd)."""
    return _backoff_seconds(state.attempt_number + 1)


# Amounts by asset exactly: the mapping, its assets in order and its values' types.
_Amounts = tuple[dict[Any, Any], list[Any], tuple[type, ...]]


def _amounts(amounts: Mapping[Any, Any]) -> _Amounts:
    return dict(amounts), list(amounts), tuple(map(type, amounts.values()))


def _same_amounts(before: _Amounts, now: Mapping[Any, Any]) -> bool:
    """The same amounts exactly: equal, of the same assets in the same order and of the same
    types (1 is not 1.0; -0.0 and 0.0 both read as zero). A NaN is refused, never kept."""
    return (
        before[0] == now and before[1] == list(now) and before[2] == tuple(map(type, now.values()))
    )


_RawPrices = tuple[Any, Any, Any, Any, Any]  # a ticker's last, close, bid, ask and mark


def _raw_prices(ticker: Mapping[str, Any]) -> _RawPrices:
    get = ticker.get
    return get("last"), get("close"), get("bid"), get("ask"), get("markPrice")


def _ms_to_datetime(ms: int | float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class AccountRead:
    """One account's part of a snapshot."""

    state: AccountState
    quotes: Mapping[InstrumentKey, Quote]
    issues: tuple[str, ...]


class ExchangeAccount:
    """Reads one account: its markets, balances, positions and prices."""

    def __init__(
        self,
        *,
        name: str,
        exchange_id: str,
        market_type: MarketType,
        client: ccxt.Exchange,
        budget: RequestBudget,
        quote_currency: str,
        read_attempts: int = 3,
        read_deadline: float = 20.0,
        weight_limit: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        venue: VenueKey | None = None,
        shared: SharedVenues | None = None,
        key_budget: RequestBudget | None = None,
    ) -> None:
        """`budget`: the weight pool's (the IP's: Binance counts weight per IP, spot and USDⓈ-M
        apart), shared by every account of the process on the pool; `key_budget`: the API
        key's (Bitget limits calls per UID), shared by every account using that key.
        `weight_limit`: the exchange's request-weight budget per minute, to pace by the
        weight it reports used (None: the figure is only recorded, see `used_weight`).
        `shared` (with its `venue`): the markets and tickers this account shares with the
        other portfolios of the process on the same venue."""
        self.name = name
        self.exchange_id = exchange_id
        self.market_type = market_type
        self.client = client
        prepare_client(exchange_id, client)
        install_code_tables(exchange_id, market_type, client)
        self.budget = budget
        self.key_budget = key_budget
        self.quote_currency = quote_currency
        self._read_attempts = read_attempts
        self._read_deadline = read_deadline
        self._sleep = sleep  # between read retries
        self.instruments: dict[str, Instrument] = {}  # by symbol, after load_instruments()
        self._weight_limit = weight_limit
        # The weight the exchange said was used in its current minute, after the last reply
        # that carried the figure (Binance's X-MBX-USED-WEIGHT-1M); None until one did.
        self.used_weight: int | None = None
        self._venue = venue
        self._shared = shared if venue is not None else None
        # The last spot balance's free and used amounts (see `_same_amounts`), its holdings.
        self._last_balance: tuple[_Amounts, _Amounts, dict[str, Holding]] | None = None
        # By symbol: its key, and the last ticker's raw prices (and their types: 1 is not 1.0)
        # with the quote made of them.
        self._keys: dict[str, InstrumentKey] = {}
        self._last_quotes: dict[str, tuple[_RawPrices, tuple[type, ...], Quote]] = {}
        self._last_stamp: tuple[Any, datetime] | None = None  # a ticker time and its datetime
        self._batch_read = 0  # the venue's shared ticker batch this account last read

    def __repr__(self) -> str:
        return f"ExchangeAccount(name={self.name!r}, exchange={self.exchange_id!r})"

    # -- calls ---------------------------------------------------------------------------

    async def call(self, action: str, fn: Callable[[], Awaitable[T]]) -> T:
        """One request through the key's budget and the venue's; a 429/418 slows the whole
        venue down."""
        if self.key_budget is not None:
            await self.key_budget.acquire()
        await self.budget.acquire()
        try:
            return await fn()
        except Exception as exc:
            if is_rate_limited(exc):
                self.budget.back_off(self.client.last_response_headers)
            raise
        finally:
            self._observe_weight(action)

    def _observe_weight(self, action: str) -> None:
        used = used_weight(self.exchange_id, self.client.last_response_headers)
        if used is None:
            return
        self.used_weight = used
        if self._weight_limit is None:
            return
        delay = self.budget.observe_weight(used, self._weight_limit)
        if delay > 0:
            log.warning(
                "weight_budget_nearly_used",
                account=self.name,
                action=action,
                used=used,
                limit=self._weight_limit,
                wait_seconds=round(delay, 1),
            )

    async def read(self, action: str, fn: Callable[[], Awaitable[T]]) -> T:
        """A read: retried with jittered exponential backoff on network errors, bounded by
        `read_attempts` and `read_deadline` (counted from the first attempt). The first attempt
        runs outside tenacity's loop (tens of microseconds a call, paid by every quiet cycle);
        a retryable failure hands the attempts and the time left to it."""
        started = time.monotonic()
        try:
            return await self.call(action, fn)
        except ccxt.BaseError as exc:
            if (
                not is_retryable_read(exc)
                or self._read_attempts < 2
                or time.monotonic() - started >= self._read_deadline
            ):
                raise to_bot_error(exc, f"{self.name}: {action}") from exc
        await self._sleep(_backoff_seconds(1))
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_retryable_read),
                stop=stop_after_attempt(self._read_attempts - 1)
                | stop_after_delay(self._read_deadline - (time.monotonic() - started)),
                wait=_after_first,
                sleep=self._sleep,
                reraise=True,
            ):
                with attempt:
                    return await self.call(action, fn)
        except ccxt.BaseError as exc:
            raise to_bot_error(exc, f"{self.name}: {action}") from exc
        raise AssertionError("unreachable: AsyncRetrying either returns or raises")

    # -- markets -------------------------------------------------------------------------

    @property
    def wallet_id(self) -> str | None:
        """Set when this account's wallet also backs another account (see shared_wallet_id)."""
        return shared_wallet_id(self.exchange_id, self.client)

    async def load_instruments(self) -> dict[str, Instrument]:
        """The venue's markets: loaded here, or once for the process on a shared venue (the
        first account loads them, the others take its copy without a request)."""
        if self._shared is None or self._venue is None:
            markets = await self.read("load_markets", self.client.load_markets)
        else:
            async with self._shared.lock(self._venue):
                source = self._shared.markets.get(self._venue)
                if source is None:
                    markets = await self.read("load_markets", self.client.load_markets)
                    self._shared.markets[self._venue] = self.client
                else:
                    markets = self.client.set_markets(source.markets, source.currencies)
        self.instruments = {}
        for market in markets.values():
            instrument = self._instrument(market)
            if instrument is not None:
                self.instruments[instrument.symbol] = instrument
        return self.instruments

    def _instrument(self, market: Mapping[str, Any]) -> Instrument | None:
        wanted_spot = self.market_type is MarketType.SPOT
        if bool(market.get("spot")) != wanted_spot:
            return None
        if not wanted_spot and not (market.get("swap") and market.get("linear")):
            return None
        # A market not trading now (ccxt's `active` false) is still a market: a cycle asks for
        # its status before trading on it, so a restart during maintenance still starts.
        symbol = str(market["symbol"])
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}
        amount_limits = limits.get("amount") or {}
        cost_limits = limits.get("cost") or {}
        try:
            amount_step = self._step(precision.get("amount"), f"{symbol} amount precision")
            price_tick = self._step(precision.get("price"), f"{symbol} price precision")
            contract_size = to_decimal(market.get("contractSize"), "contract size", allow_none=True)
            return Instrument(
                key=InstrumentKey(self.name, symbol),
                market_type=self.market_type,
                base=str(market["base"]),
                quote=str(market["quote"]),
                settle=None if wanted_spot else str(market.get("settle")),
                amount_step=amount_step,
                price_tick=price_tick,
                min_amount=to_decimal(amount_limits.get("min"), "min", allow_none=True) or ZERO,
                # A maximum of zero (Bitget's unified markets) means no maximum.
                max_amount=_positive_or_none(
                    to_decimal(amount_limits.get("max"), "max", allow_none=True)
                ),
                min_notional=to_decimal(cost_limits.get("min"), "min cost", allow_none=True)
                or ZERO,
                contract_size=contract_size if contract_size and contract_size > 0 else ONE,
            )
        except DataError:
            return None  # a market without usable precision is not tradable by the bot

    async def not_trading(self, symbols: Iterable[str]) -> dict[str, str]:
        """Those of `symbols` that cannot be traded now, each with the exchange's status
        ("BREAK", "halt", "not listed"). Markets are loaded once at start-up, so a market
        closed since then is only seen by asking again: one market-list request (Binance spot
        narrowed to these symbols), made only by a cycle about to send orders."""
        wanted = sorted(set(symbols))
        if not wanted:
            return {}
        ids = [self.client.market_id(symbol) for symbol in wanted]
        params = market_status_params(self.exchange_id, self.market_type, ids)
        markets = await self.read("market status", lambda: self.client.fetch_markets(params))
        listed = {str(m.get("symbol")): m for m in markets}
        closed: dict[str, str] = {}
        for symbol in wanted:
            market = listed.get(symbol)
            if market is None:
                closed[symbol] = "not listed"
            elif market.get("active") is False:  # None: the venue does not say
                info = market.get("info") or {}
                closed[symbol] = str(info.get("status") or info.get("symbolStatus") or "inactive")
        return closed

    def _step(self, value: Any, what: str) -> Decimal:
        number = _required(value, what)
        if self.client.precisionMode == ccxt.DECIMAL_PLACES:
            return Decimal(1).scaleb(-int(number))
        if number <= 0:
            raise DataError(f"{what} is {number}")
        return number

    # -- snapshot ------------------------------------------------------------------------

    async def read_state(
        self, symbols: Iterable[str], mirrors: frozenset[str] = frozenset()
    ) -> AccountRead:
        """Balances (and positions) plus one batch of tickers: the fewest requests that do.
        `mirrors`: spot balances that only mirror coins counted elsewhere (Binance's LD…
        balances of Simple Earn flexible positions), left out."""
        if self.market_type is MarketType.SPOT:
            return await self._read_spot(symbols, mirrors)
        return await self._read_futures(symbols)

    async def _read_spot(self, symbols: Iterable[str], mirrors: frozenset[str]) -> AccountRead:
        balance = await self.read("fetch_balance", self.client.fetch_balance)
        holdings = {a: h for a, h in self._holdings(balance).items() if a not in mirrors}
        wanted = set(symbols)
        for asset in holdings:
            symbol = f"{asset}/{self.quote_currency}"
            if asset != self.quote_currency and symbol in self.instruments:
                wanted.add(symbol)
        quotes, issues = await self.fetch_quotes(sorted(wanted))
        for asset in holdings:
            symbol = f"{asset}/{self.quote_currency}"
            if asset != self.quote_currency and symbol not in self.instruments:
                issues.append(f"{self.name}: {asset} is held but {symbol} is not a market")
        state = AccountState(name=self.name, market_type=MarketType.SPOT, holdings=holdings)
        return AccountRead(state=state, quotes=quotes, issues=tuple(issues))

    def _holdings(self, balance: Mapping[str, Any]) -> dict[str, Holding]:
        """The balance's holdings; the last ones again when the balance reads as it did (a
        quiet account's usual answer: the same numbers need no new Decimals)."""
        free = balance.get("free") or {}
        used = balance.get("used") or {}
        last = self._last_balance
        if last is not None and _same_amounts(last[0], free) and _same_amounts(last[1], used):
            return dict(last[2])
        holdings: dict[str, Holding] = {}
        for asset in sorted(set(free) | set(used)):
            f = to_decimal(free.get(asset), f"{self.name}: free {asset}", allow_none=True) or ZERO
            u = to_decimal(used.get(asset), f"{self.name}: used {asset}", allow_none=True) or ZERO
            if f < 0 or u < 0:
                raise DataError(f"{self.name}: negative balance of {asset} (free {f}, used {u})")
            if f + u > 0:
                holdings[str(asset)] = Holding(asset=str(asset), free=f, used=u)
        self._last_balance = (_amounts(free), _amounts(used), dict(holdings))
        return holdings

    async def _read_futures(self, symbols: Iterable[str]) -> AccountRead:
        balance = await self.read("fetch_balance", self.client.fetch_balance)
        raw_positions = await self.read("fetch_positions", self.client.fetch_positions)
        positions, issues = self._positions(raw_positions)
        wanted = set(symbols) | set(positions)
        quotes, quote_issues = await self.fetch_quotes(sorted(wanted))
        issues.extend(quote_issues)
        marks = {p.symbol: p.mark_price for p in positions.values()}
        quotes = {
            key: Quote(q.last, q.bid, q.ask, q.timestamp, marks.get(key.symbol, q.mark))
            for key, q in quotes.items()
        }
        settle = self._settle_currency()
        total = balance.get("total") or {}
        free = balance.get("free") or {}
        equity = to_decimal(total.get(settle), f"{self.name}: {settle} equity", allow_none=True)
        available = to_decimal(
            free.get(settle), f"{self.name}: {settle} available", allow_none=True
        )
        equity = equity or ZERO
        unrealized = sum((p.unrealized_pnl for p in positions.values()), ZERO)
        state = AccountState(
            name=self.name,
            market_type=MarketType.SWAP,
            margin_asset=settle,
            wallet_balance=equity - unrealized,
            unrealized_pnl=unrealized,
            available_margin=available or ZERO,
            positions=positions,
        )
        return AccountRead(state=state, quotes=quotes, issues=tuple(issues))

    def _settle_currency(self) -> str:
        settles = {i.settle for i in self.instruments.values() if i.settle}
        return (
            self.quote_currency if self.quote_currency in settles or not settles else min(settles)
        )

    def _positions(self, raw: list[Mapping[str, Any]]) -> tuple[dict[str, Position], list[str]]:
        positions: dict[str, Position] = {}
        issues: list[str] = []
        for row in raw:
            symbol = str(row.get("symbol"))
            try:
                contracts = _required(row.get("contracts"), f"{symbol} contracts")
                if contracts == 0:
                    continue
                side = row.get("side")
                if side not in ("long", "short"):
                    raise DataError(f"{symbol} position side is {side!r}")
                mark = _required(row.get("markPrice"), f"{symbol} mark price")
                if mark <= 0:
                    raise DataError(f"{symbol} mark price is {mark}")
                size = to_decimal(
                    row.get("contractSize"), f"{symbol} contract size", allow_none=True
                )
                positions[symbol] = Position(
                    symbol=symbol,
                    contracts=contracts if side == "long" else -abs(contracts),
                    entry_price=_required(row.get("entryPrice"), f"{symbol} entry price"),
                    mark_price=mark,
                    unrealized_pnl=_required(row.get("unrealizedPnl"), f"{symbol} unrealized PnL"),
                    contract_size=size if size and size > 0 else ONE,
                    leverage=to_decimal(row.get("leverage"), f"{symbol} leverage", allow_none=True),
                    liquidation_price=_positive_or_none(
                        to_decimal(row.get("liquidationPrice"), f"{symbol} liq.", allow_none=True)
                    ),
                    maintenance_margin=to_decimal(
                        row.get("maintenanceMargin"), f"{symbol} maintenance", allow_none=True
                    ),
                )
            except DataError as exc:
                # A position the bot cannot value makes the account's equity untrustworthy.
                raise DataError(f"{self.name}: {exc}") from exc
            if symbol not in self.instruments:
                issues.append(f"{self.name}: position in {symbol}, which is not a known market")
        return positions, issues

    async def fetch_quotes(
        self, symbols: list[str], *, fresh: bool = False
    ) -> tuple[dict[InstrumentKey, Quote], list[str]]:
        """One batch ticker request; a ticker that cannot be trusted is left out and reported.
        `fresh`: a request made now, or the venue's shared batch only if it is newer than the
        one this account last read (a second read that confirms the first must not be the
        first again)."""
        instruments = self.instruments
        known = [s for s in symbols if s in instruments]
        issues = [f"{self.name}: {s} is not a market" for s in symbols if s not in instruments]
        if not known:
            return {}, issues
        tickers = await self._tickers(known, fresh=fresh)
        quotes: dict[InstrumentKey, Quote] = {}
        keys = self._keys
        for symbol in known:
            ticker = tickers.get(symbol)
            if ticker is None:
                issues.append(f"{self.name}: no ticker for {symbol}")
                continue
            key = keys.get(symbol)
            if key is None:
                key = keys[symbol] = InstrumentKey(self.name, symbol)
            try:
                quotes[key] = self._quote_again(symbol, ticker)
            except DataError as exc:
                issues.append(f"{self.name}: {exc}")
        return quotes, issues

    def _quote_again(self, symbol: str, ticker: Mapping[str, Any]) -> Quote:
        """`_quote`, taking the prices of the symbol's last quote again when its ticker's prices
        read exactly as they did (a quiet market's usual answer: no new Decimals). Exactly:
        equal and of the same types (a NaN price is refused by `_quote`, never cached)."""
        raw = _raw_prices(ticker)
        types = tuple(map(type, raw))
        last = self._last_quotes.get(symbol)
        if last is None or last[0] != raw or last[1] != types:
            quote = self._quote(symbol, ticker)
            self._last_quotes[symbol] = (raw, types, quote)
            return quote
        q = last[2]
        return Quote(q.last, q.bid, q.ask, self._ticker_time(symbol, ticker), q.mark)

    def _ticker_time(self, symbol: str, ticker: Mapping[str, Any]) -> datetime:
        """The ticker's time (a batch's tickers often share it: converted once)."""
        timestamp = ticker.get("timestamp")
        if timestamp is None:
            raise DataError(f"{symbol} ticker has no timestamp")
        stamp = self._last_stamp
        if stamp is None or stamp[0] != timestamp:
            stamp = self._last_stamp = (timestamp, _ms_to_datetime(timestamp))
        return stamp[1]

    async def _tickers(
        self, symbols: list[str], *, fresh: bool = False
    ) -> Mapping[str, Mapping[str, Any]]:
        """This account's own batch request, or the venue's shared batch (with `fresh`, one
        newer than the batch it read last)."""

        async def fetch(wanted: list[str]) -> Mapping[str, Mapping[str, Any]]:
            tickers: Mapping[str, Mapping[str, Any]] = await self.read(
                "fetch_tickers", lambda: self.client.fetch_tickers(wanted)
            )
            return tickers

        if self._shared is None or self._venue is None:
            return await fetch(symbols)
        batch = self._shared.batch(self._venue)
        newer_than = self._batch_read if fresh else None
        tickers = await batch.tickers(symbols, fetch, newer_than=newer_than)
        self._batch_read = batch.generation  # no await since: the batch just returned
        return tickers

    def _quote(self, symbol: str, ticker: Mapping[str, Any]) -> Quote:
        last = to_decimal(ticker.get("last"), f"{symbol} last price", allow_none=True)
        if last is None:
            last = to_decimal(ticker.get("close"), f"{symbol} last price")
        assert last is not None
        if last <= 0:
            raise DataError(f"{symbol} last price is {last}")
        timestamp = self._ticker_time(symbol, ticker)
        bid = to_decimal(ticker.get("bid"), f"{symbol} bid", allow_none=True)
        ask = to_decimal(ticker.get("ask"), f"{symbol} ask", allow_none=True)
        mark = to_decimal(ticker.get("markPrice"), f"{symbol} mark", allow_none=True)
        return Quote(
            last=last,
            bid=bid if bid and bid > 0 else None,
            ask=ask if ask and ask > 0 else None,
            timestamp=timestamp,
            mark=mark if mark and mark > 0 else None,
        )

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since_ms: int | None, limit: int
    ) -> list[list[float]]:
        rows: list[list[float]] = await self.read(
            f"fetch_ohlcv {symbol}",
            lambda: self.client.fetch_ohlcv(symbol, timeframe, since_ms, limit),
        )
        return rows

    async def fetch_funding_history(
        self, symbol: str, since_ms: int | None, limit: int
    ) -> list[tuple[int, float]]:
        """Funding events of a perpetual as (time ms, rate), oldest first."""
        if self.exchange_id == "bitget":
            return await self._bitget_funding_history(symbol, since_ms)
        return await self._funding_page(symbol, since_ms, limit, {})

    async def _bitget_funding_history(
        self, symbol: str, since_ms: int | None
    ) -> list[tuple[int, float]]:
        """Bitget pages funding history newest first by page number and ignores `since`:
        walk back page by page until the page reaches `since` (or the history ends)."""
        found: dict[int, float] = {}
        for page in range(1, BITGET_FUNDING_PAGES + 1):
            params = {"pageNo": page}
            rows = await self._funding_page(symbol, None, BITGET_FUNDING_PAGE, params)
            found.update(rows)
            if len(rows) < BITGET_FUNDING_PAGE or (
                since_ms is not None and min(t for t, _ in rows) <= since_ms
            ):
                break
        return sorted((t, r) for t, r in found.items() if since_ms is None or t >= since_ms)

    async def _funding_page(
        self, symbol: str, since_ms: int | None, limit: int, params: dict[str, Any]
    ) -> list[tuple[int, float]]:
        rows: list[dict[str, Any]] = await self.read(
            f"fetch_funding_rate_history {symbol}",
            lambda: self.client.fetch_funding_rate_history(symbol, since_ms, limit, params),
        )
        events: list[tuple[int, float]] = []
        for row in rows:
            stamp, rate = row.get("timestamp"), row.get("fundingRate")
            if not isinstance(stamp, int | float) or not isinstance(rate, int | float | str):
                raise DataError(f"{symbol}: malformed funding row {row!r}")
            events.append((int(stamp), float(rate)))
        return sorted(events)

    async def close(self) -> None:
        await self.client.close()
