"""The config's sections, one model each: accounts, sleeves, trigger, planner, paper,
execution, risk, collateral, simulator, server, notifications, strategy."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from croniter import croniter
from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from bot.config.fields import (
    MAX_LEVERAGE,
    NOT_PLACED_RECHECK,
    VALIDATION_QUOTE,
    Dec,
    Duration,
    PositiveDuration,
    Section,
    band_value,
)
from bot.core import symbols
from bot.core.domain import (
    ONE,
    ZERO,
    Component,
    Group,
    InstrumentKey,
    MarginMode,
    MarketType,
    OrderType,
    RebalanceTo,
    SleeveKind,
)
from bot.core.ids import MAX_CHILDREN
from bot.core.policy.triggers import TriggerKind
from bot.core.risk import RiskLimits
from bot.core.slicing import DEFAULT_MAX_CHILDREN, Slicing


class AccountConfig(Section):
    """One exchange connection: exchange id + market type + credentials + options."""

    exchange: Literal["binance", "binanceusdm", "bitget"] = Field(
        description="ccxt exchange id: binance (spot or USDⓈ-M), binanceusdm, bitget"
    )
    market: MarketType = Field(description="spot or swap (perpetual futures)")
    simulator: bool = Field(False, description="talk to the embedded exchange simulator")
    sim_account: str = Field("main", description="the simulator scenario's account to use")
    base_url: str | None = Field(
        None,
        description="explicit API base URL (e.g. a simulator started with `rebalance-bot sim`)",
    )
    sandbox: bool = Field(
        False,
        description="the exchange's own test environment with its test keys: Binance demo "
        "trading (spot and USDⓈ-M), Bitget demo trading; not with simulator or base_url",
    )
    allow_withdrawal_permission: bool = Field(
        False,
        description="DANGEROUS: accept an API key that can withdraw funds; a rebalancer never "
        "needs withdrawals, and a leaked key that can withdraw empties the account",
    )
    timeout: PositiveDuration = Field(timedelta(seconds=10), description="per-request timeout")
    pace_by_weight: bool = Field(
        True,
        description="pacing by the exchange's request weights (ccxt's limiter, and a wait for "
        "the next minute once the weight the exchange reports used nears its budget); off only "
        "for a local simulator whose limits were raised",
    )
    requests_per_second: float | None = Field(
        None,
        gt=0,
        le=1000,
        description="calls a second at most on the account's venue and API key (default: "
        "the venue's documented limit); accounts sharing a venue or a key share one budget, "
        "at the lowest rate any of them sets",
    )
    options: dict[str, Any] = Field(default_factory=dict, description="extra ccxt options")
    leverage: int | None = Field(
        None,
        ge=1,
        le=int(MAX_LEVERAGE),
        description="swap accounts: leverage set on each of the account's perpetuals at a live "
        "start, read back and verified (unset: left as the exchange has it)",
    )
    margin_mode: MarginMode | None = Field(
        None,
        description="swap accounts: cross or isolated, set on each of the account's "
        "perpetuals at a live start, read back and verified (unset: left as it is)",
    )
    include_earn: bool = Field(
        True,
        description="spot accounts: count what the exchange account holds outside its trading "
        "wallet (Binance: funding wallet, Simple Earn flexible and locked; Bitget classic: Earn "
        "savings) in NAV and in its asset's sleeve; the bot never trades, transfers or redeems "
        "it (not read on sandbox accounts)",
    )
    earn_refresh: PositiveDuration = Field(
        timedelta(minutes=15),
        description="how often those holdings are read again (the first cycle reads them; "
        "on Binance one reading weighs 301 of the 6,000 spot weight per minute)",
    )
    api_key: SecretStr | None = Field(None, description="env or *_FILE only")
    secret: SecretStr | None = Field(None, description="env or *_FILE only")
    password: SecretStr | None = Field(None, description="Bitget passphrase; env or *_FILE only")

    @field_validator("options")
    @classmethod
    def _no_secret_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if any(word in key.lower() for word in ("key", "secret", "password", "token", "uid")):
                raise ValueError(
                    f"option {key!r} could carry a credential: set credentials via env"
                )
        return value

    @model_validator(mode="after")
    def _market_fits_exchange(self) -> AccountConfig:
        if self.exchange == "binanceusdm" and self.market is not MarketType.SWAP:
            raise ValueError("binanceusdm trades USDⓈ-M perpetuals only: market must be swap")
        if self.simulator and self.base_url:
            raise ValueError("set either simulator = true or base_url, not both")
        if self.sandbox and (self.simulator or self.base_url):
            raise ValueError(
                "sandbox = true is the exchange's own testnet: it cannot be combined with "
                "simulator = true or base_url"
            )
        if self.base_url and not re.match(r"^https?://", self.base_url):
            raise ValueError(f"base_url {self.base_url!r} is not an http(s) URL")
        if self.market is not MarketType.SWAP and (self.leverage or self.margin_mode):
            raise ValueError("leverage and margin_mode apply to swap (futures) accounts only")
        return self

    @property
    def reads_earn(self) -> bool:
        """Whether this account's holdings outside its trading wallet are read and counted."""
        return self.include_earn and self.market is MarketType.SPOT and not self.sandbox

    @property
    def has_credentials(self) -> bool:
        needs_password = self.exchange == "bitget"
        return bool(self.api_key and self.secret and (self.password or not needs_password))


class InstrumentWeight(Section):
    symbol: str = Field(description='ccxt unified symbol, e.g. "SOL/USDT:USDT"')
    weight: Dec = Field(ONE, description="share of the sleeve (> 0; all sum to 1)")

    @field_validator("weight")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError(f"sub-weight must be > 0, got {value}")
        return value


class SleeveConfig(Section):
    """One line of the target allocation."""

    name: str = Field(min_length=1, max_length=64)
    kind: SleeveKind = Field(description="spot or futures")
    target: Dec = Field(description="weight as a fraction of NAV (0.60 = 60 %); futures may be < 0")
    account: str
    asset: str | None = Field(None, description="spot: the asset held (BTC)")
    symbol: str | None = Field(None, description="futures: one perpetual")
    instruments: list[InstrumentWeight] | None = Field(None, description="futures: a basket")
    group: Group | None = None
    band: Dec | None = Field(None, description="absolute band override (fraction of NAV)")
    relative_band: Dec | None = Field(None, description="relative band override (of |target|)")

    @field_validator("target")
    @classmethod
    def _fraction(cls, value: Decimal) -> Decimal:
        if abs(value) > 1:
            hint = f" (use {value / 100} for {value} %)" if abs(value) <= 100 else ""
            raise ValueError(f"{value} is not a fraction of NAV{hint}")
        return value

    @field_validator("band")
    @classmethod
    def _positive_band(cls, value: Decimal | None) -> Decimal | None:
        return band_value(value)

    @field_validator("relative_band")
    @classmethod
    def _positive_relative_band(cls, value: Decimal | None) -> Decimal | None:
        return band_value(value, relative=True)

    @model_validator(mode="after")
    def _shape(self) -> SleeveConfig:
        if self.kind is SleeveKind.SPOT:
            self._spot_shape()
        else:
            self._futures_shape()
        return self

    def _spot_shape(self) -> None:
        if self.asset is None:
            raise ValueError("a spot sleeve needs `asset`")
        if self.symbol or self.instruments:
            raise ValueError("a spot sleeve takes `asset`, not `symbol`/`instruments`")
        if self.target < 0:
            raise ValueError(f"target {self.target}: a spot sleeve cannot be short")
        problem = symbols.asset_problem(self.asset, VALIDATION_QUOTE.get())
        if problem is not None:
            raise ValueError(problem)

    def _futures_shape(self) -> None:
        if self.asset is not None:
            raise ValueError("a futures sleeve takes `symbol` or `instruments`, not `asset`")
        if (self.symbol is None) == (self.instruments is None):
            raise ValueError("a futures sleeve needs exactly one of `symbol` or `instruments`")
        named = [self.symbol] if self.symbol is not None else []
        if self.instruments is not None:
            if not self.instruments:
                raise ValueError("`instruments` is empty")
            total = sum((i.weight for i in self.instruments), ZERO)
            if total != ONE:
                raise ValueError(f"instrument weights sum to {total}, not 1")
            named = [i.symbol for i in self.instruments]
            if len(set(named)) != len(named):
                raise ValueError("an instrument appears twice in the basket")
        problems = [symbols.perpetual_problem(name, VALIDATION_QUOTE.get()) for name in named]
        if any(problems):
            raise ValueError("; ".join(p for p in problems if p))

    def components(self, quote_currency: str) -> tuple[Component, ...]:
        if self.kind is SleeveKind.SPOT:
            return (Component(InstrumentKey(self.account, f"{self.asset}/{quote_currency}")),)
        if self.symbol is not None:
            return (Component(InstrumentKey(self.account, self.symbol)),)
        assert self.instruments is not None
        return tuple(
            Component(InstrumentKey(self.account, i.symbol), i.weight) for i in self.instruments
        )


class TriggerConfig(Section):
    kind: TriggerKind = Field(TriggerKind.BAND, description="band | calendar | hybrid")
    band: Dec = Field(Decimal("0.05"), description="absolute band, fraction of NAV (0.05 = 5 pp)")
    relative_band: Dec | None = Field(None, description="relative band, fraction of |target|")
    interval: PositiveDuration | None = Field(
        None, description="calendar/hybrid: how often to look"
    )
    cron: str | None = Field(None, description="calendar/hybrid: 5-field cron in UTC")
    cooldown: Duration = Field(timedelta(hours=1), description="minimum time between rebalances")
    min_drift: Dec = Field(Decimal("0.001"), description="calendar: smallest drift worth a trade")

    @field_validator("band")
    @classmethod
    def _band(cls, value: Decimal | None) -> Decimal | None:
        return band_value(value)

    @field_validator("relative_band")
    @classmethod
    def _relative_band(cls, value: Decimal | None) -> Decimal | None:
        return band_value(value, relative=True)

    @field_validator("min_drift")
    @classmethod
    def _min_drift(cls, value: Decimal) -> Decimal:
        if not 0 <= value < 1:
            raise ValueError(
                f"must be a fraction of NAV from 0 up to (not including) 1, got {value}"
            )
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a valid 5-field cron expression")
        return value

    @model_validator(mode="after")
    def _schedule(self) -> TriggerConfig:
        if self.kind is not TriggerKind.BAND and (self.interval is None) == (self.cron is None):
            raise ValueError(f"a {self.kind} trigger needs exactly one of `interval` or `cron`")
        return self


class PlannerConfig(Section):
    to: RebalanceTo = Field(RebalanceTo.TARGET, description="target | band-edge")
    cash_reserve: Dec = Field(ZERO, description="spot quote (fraction of NAV) never spent")
    buy_fee_buffer: Dec = Field(Decimal("0.002"), description="headroom for fees and price moves")

    @field_validator("cash_reserve", "buy_fee_buffer")
    @classmethod
    def _share(cls, value: Decimal) -> Decimal:
        if not 0 <= value < 1:
            raise ValueError(
                f"must be a fraction of NAV from 0 up to (not including) 1, got {value}"
            )
        return value


class PaperConfig(Section):
    spot_fee: Dec = Decimal("0.001")
    futures_fee: Dec = Decimal("0.0005")
    slippage_bps: Dec = Decimal("5")

    @field_validator("spot_fee", "futures_fee", "slippage_bps")
    @classmethod
    def _cost(cls, value: Decimal) -> Decimal:
        if value < 0:
            raise ValueError(f"a cost cannot be negative, got {value}")
        return value


class ExecutionConfig(Section):
    order_type: Literal["market", "limit-then-market"] = "market"
    limit_timeout: PositiveDuration = timedelta(seconds=30)
    poll_interval: PositiveDuration = timedelta(seconds=1)
    lookup_window: PositiveDuration = Field(
        timedelta(seconds=30),
        description="how long an order with a lost reply is looked up before it counts as absent",
    )
    fill_timeout: PositiveDuration = Field(
        timedelta(seconds=30),
        description="how long an accepted market order may take to close before the cycle moves on",
    )
    child_orders: bool = Field(
        False,
        description="execute a leg above risk.max_order_notional / max_order_fraction as child "
        "orders within those limits instead of denying it",
    )
    max_children: int = Field(
        DEFAULT_MAX_CHILDREN,
        ge=1,
        lt=MAX_CHILDREN,
        description="a leg needing more child orders than this is denied",
    )
    twap_duration: Duration = Field(
        timedelta(0), description="child orders of a leg spread evenly over this time"
    )
    max_depth_fraction: Dec | None = Field(
        None, description="no child order above this share of the size resting at the touch"
    )
    not_placed_hold: Duration = Field(
        timedelta(minutes=5),
        description=(
            "after an order's reply was lost and lookups did not find it, no new order for the "
            "portfolio until this long after it was sent (it may still show); 0s: no hold"
        ),
    )
    paper: PaperConfig = PaperConfig()

    @field_validator("max_depth_fraction")
    @classmethod
    def _depth_fraction(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and not 0 < value <= 1:
            raise ValueError(f"must be > 0 and <= 1 (a share of the touch's size), got {value}")
        return value

    @property
    def slicing(self) -> Slicing:
        return Slicing(
            enabled=self.child_orders,
            max_children=self.max_children,
            duration=self.twap_duration,
            depth_fraction=self.max_depth_fraction,
        )

    @field_validator("not_placed_hold")
    @classmethod
    def _hold(cls, value: timedelta) -> timedelta:
        # Such orders are looked up again for a day: a longer hold could never end in a lookup.
        if value > NOT_PLACED_RECHECK:
            raise ValueError(f"must be at most 1 day, got {value.total_seconds():g} s")
        return value

    @property
    def order_type_enum(self) -> OrderType:
        return OrderType.MARKET if self.order_type == "market" else OrderType.LIMIT


_DEFAULT_LIMITS = RiskLimits()
MAX_CONFIRM_DELAY = timedelta(seconds=30)


class RiskConfig(Section):
    max_order_notional: Dec | None = _DEFAULT_LIMITS.max_order_notional
    max_order_fraction: Dec | None = _DEFAULT_LIMITS.max_order_fraction
    max_turnover_cycle: Dec | None = _DEFAULT_LIMITS.max_turnover_cycle
    max_turnover_day: Dec | None = _DEFAULT_LIMITS.max_turnover_day
    max_leverage: Dec | None = _DEFAULT_LIMITS.max_leverage
    max_gross_exposure: Dec | None = _DEFAULT_LIMITS.max_gross_exposure
    allowed_symbols: list[str] | None = None
    max_quote_age: PositiveDuration | None = _DEFAULT_LIMITS.max_quote_age
    max_mark_deviation: Dec | None = _DEFAULT_LIMITS.max_mark_deviation
    max_spread: Dec | None = _DEFAULT_LIMITS.max_spread
    max_touch_deviation: Dec | None = _DEFAULT_LIMITS.max_touch_deviation
    max_basis: Dec | None = _DEFAULT_LIMITS.max_basis
    max_price_jump: Dec | None = _DEFAULT_LIMITS.max_price_jump
    price_confirm_cycles: int = Field(
        _DEFAULT_LIMITS.price_confirm_cycles,
        ge=1,
        description="cycles in a row a price jump must be seen in before it is accepted",
    )
    price_confirm_delay: Duration = Field(
        timedelta(seconds=1),
        description="how long after the snapshot the quotes of instruments without an "
        "accepted price are read again to confirm them (a first cycle, a new instrument)",
    )
    min_cash_reserve: Dec | None = _DEFAULT_LIMITS.min_cash_reserve
    max_orders_per_minute: int | None = _DEFAULT_LIMITS.max_orders_per_minute
    max_drawdown: Dec | None = _DEFAULT_LIMITS.max_drawdown
    drawdown_window: PositiveDuration = _DEFAULT_LIMITS.drawdown_window
    min_liquidation_distance: Dec | None = Field(
        None,
        description="no futures increase on an account with a position closer to its "
        "liquidation price than this fraction of the mark (the exchange's own figure)",
    )
    max_margin_ratio: Dec | None = Field(
        None,
        description="no futures increase on an account whose maintenance margin is more than "
        "this fraction of its equity (at 1 the exchange liquidates)",
    )
    kill_switch_file: Path | None = Field(None, description="default <data_dir>/HALT")
    kill_switch_env: str = "REBALANCE_HALT"

    @field_validator(
        "min_cash_reserve", "max_drawdown", "min_liquidation_distance", "max_margin_ratio"
    )
    @classmethod
    def _share_of_nav(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and not 0 <= value < 1:
            raise ValueError(
                f"must be a fraction of NAV from 0 up to (not including) 1, got {value}"
            )
        return value

    @field_validator("max_leverage")
    @classmethod
    def _leverage(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and not 0 < value <= MAX_LEVERAGE:
            raise ValueError(
                f"must be more than 0 and at most {MAX_LEVERAGE} (no exchange offers more; "
                f"each symbol's own bracket is checked when trading), got {value}"
            )
        return value

    @model_validator(mode="after")
    def _non_negative(self) -> RiskConfig:
        for name in (
            "max_order_notional", "max_order_fraction", "max_turnover_cycle", "max_turnover_day",
            "max_gross_exposure", "max_mark_deviation", "max_price_jump",
            "max_spread", "max_touch_deviation", "max_basis", "min_cash_reserve", "max_drawdown",
        ):  # fmt: skip
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        if self.max_orders_per_minute is not None and self.max_orders_per_minute < 1:
            raise ValueError("max_orders_per_minute must be at least 1")
        if self.price_confirm_delay > MAX_CONFIRM_DELAY:
            raise ValueError(
                f"price_confirm_delay must be at most {MAX_CONFIRM_DELAY.total_seconds():g} s "
                "(a confirming read belongs to the same cycle)"
            )
        return self


class WalletPairConfig(Section):
    """A spot account and a futures account that are two wallets of one exchange account."""

    spot: str = Field(description="the spot account's name (its spot wallet)")
    futures: str = Field(description="the futures account's name (its futures wallet)")


class CollateralConfig(Section):
    """Moving the quote currency between the spot and futures wallets of one exchange account
    (live mode sends transfers; dry-run moves the paper ledger's money). Never across
    exchanges: what another exchange would have to cover is reported as a shortfall."""

    enabled: bool = Field(
        False,
        description="plan wallet transfers with every trade plan and send them (live) or move "
        "the paper ledger's money (dry-run)",
    )
    venues: list[WalletPairConfig] = Field(
        default_factory=list,
        description="which spot and futures accounts share an exchange account",
    )
    leverage: Dec = Field(Decimal(3), description="futures margin is sized at this leverage")
    min_liquidation_distance: Dec = Field(
        Decimal("0.5"), description="adverse move (fraction of price) the futures must survive"
    )
    maintenance_rate: Dec = Field(Decimal("0.005"), description="maintenance margin rate assumed")
    max_transfer_fraction_cycle: Dec | None = Field(
        Decimal("0.25"), description="most moved per cycle, fraction of NAV"
    )
    max_transfer_fraction_day: Dec | None = Field(
        Decimal("0.5"), description="most moved per UTC day, fraction of NAV"
    )
    min_transfer: Dec = Field(Decimal(1), description="smaller transfers are not sent")

    @field_validator("leverage")
    @classmethod
    def _leverage(cls, value: Decimal) -> Decimal:
        if not 0 < value <= MAX_LEVERAGE:
            raise ValueError(f"must be more than 0 and at most {MAX_LEVERAGE}, got {value}")
        return value

    @field_validator(
        "min_liquidation_distance",
        "maintenance_rate",
        "max_transfer_fraction_cycle",
        "max_transfer_fraction_day",
    )
    @classmethod
    def _fraction(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and not 0 <= value <= 1:
            raise ValueError(f"must be a fraction from 0 to 1, got {value}")
        return value

    @field_validator("min_transfer")
    @classmethod
    def _min(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError(f"must be more than 0, got {value}")
        return value


class SimulatorConfig(Section):
    enabled: bool = False
    scenario: Path | None = Field(None, description="config/sim/*.toml, relative to this file")
    seed: int = 7
    port: int = Field(0, ge=0, le=65535, description="0 = any free port")


class ServerConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    token: SecretStr | None = Field(None, description="enables POST /halt and /resume; env only")


class NotificationsConfig(Section):
    urls: list[SecretStr] = Field(default_factory=list, description="apprise URLs; env only")
    min_interval: Duration = timedelta(seconds=60)


class RiskParityConfig(Section):
    weighting: Literal["erc", "inverse-volatility"] = "erc"
    scope: Literal["groups", "all"] = Field(
        "groups", description="groups: risk parity inside each group; all: across every sleeve"
    )
    covariance: Literal["sample", "ewma"] = "sample"
    half_life: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="ewma: half-life in candles"
    )
    futures_gross_cap: Dec | None = Field(
        None, description="cap on Σ|futures targets| (fraction of NAV)"
    )

    @field_validator("futures_gross_cap")
    @classmethod
    def _cap(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return value

    @model_validator(mode="after")
    def _ewma(self) -> RiskParityConfig:
        if self.covariance == "ewma" and self.half_life is None:
            raise ValueError("an ewma covariance needs half_life")
        if self.covariance == "sample" and self.half_life is not None:
            raise ValueError("half_life applies only to covariance = 'ewma'")
        return self


class OverlayConfig(Section):
    """Seasonal / trend hedge: when bearish, short `fraction` of the hedged sleeves' weight."""

    hedge_sleeve: str
    hedged_sleeves: list[str] = Field(min_length=1)
    fraction: Dec = Field(Decimal("0.5"), description="share of the hedged exposure to short")
    combine: Literal["any", "all"] = "any"
    bearish_months: list[int] = Field(default_factory=list, description="1-12, in UTC")
    bullish_months: list[int] = Field(default_factory=list)
    trend_window: int | None = Field(None, ge=2, description="moving average of N closes")
    trend_confirm: int = Field(1, ge=1, description="closes beyond the average to switch")
    trend_band: float = Field(0.0, ge=0, lt=1)
    trend_symbol: str | None = Field(
        None, description="instrument of the trend rule (default: the first hedged sleeve's)"
    )

    @model_validator(mode="after")
    def _signal(self) -> OverlayConfig:
        if not self.bearish_months and not self.bullish_months and self.trend_window is None:
            raise ValueError("the overlay needs bearish_months/bullish_months or trend_window")
        if not 0 <= self.fraction <= 1:
            raise ValueError(f"fraction must be between 0 and 1, got {self.fraction}")
        return self


class StrategyConfig(Section):
    """Where targets come from. static: each sleeve's `target`. core-satellite: group weights
    (`groups`) × each sleeve's `target` read as its weight inside its group. risk-parity:
    weights from trailing volatility and correlation (inside `groups`, or across all sleeves).
    An `overlay` adds a seasonal / trend hedge to any of them."""

    kind: Literal["static", "core-satellite", "risk-parity"] = "static"
    groups: dict[Group, Dec] = Field(default_factory=dict, description="group weights")
    recompute_every: PositiveDuration = Field(
        timedelta(days=1),
        description="the longest targets go without a recomputation; they are also recomputed "
        "in the first cycle after a candle of `timeframe` closes (when the strategy reads "
        "candles) and after a calendar month begins (with bearish/bullish months)",
    )
    timeframe: str = Field("1d", description="candles of the price history")
    lookback: int = Field(90, ge=3, description="returns in the covariance / trend history")
    risk_parity: RiskParityConfig = RiskParityConfig()
    overlay: OverlayConfig | None = None

    @model_validator(mode="after")
    def _groups(self) -> StrategyConfig:
        if self.kind == "core-satellite" and not self.groups:
            raise ValueError("core-satellite needs [strategy.groups] (e.g. core = 0.8)")
        total = sum(self.groups.values(), ZERO)
        if total > 1:
            raise ValueError(f"group weights sum to {total} > 1")
        return self
