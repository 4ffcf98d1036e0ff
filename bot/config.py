"""Configuration: a TOML file plus environment overrides, validated into one `BotConfig`.

The config is the operator's interface, so every mistake is reported as one line that names the
field and says what is wrong (`sleeves[2] (eth).target: 60 is not a fraction of NAV ...`).

Sources, strongest first: environment variables `REBALANCE_<FIELD>` with `__` between nested
names (`REBALANCE_RISK__MAX_LEVERAGE=2`, `REBALANCE_ACCOUNTS__SPOT__API_KEY=...`); files named
by `REBALANCE_..._FILE` variables (Docker secrets: the file's content is the value); the TOML
file. Secrets (API keys, secrets, passphrases, the server token, notification URLs) are only
read from the environment or `*_FILE` files: a secret written in the TOML file is an error.
"""

from __future__ import annotations

import contextvars
import math
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from json import JSONDecodeError
from pathlib import Path
from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from bot.core import symbols
from bot.core.domain import (
    ONE,
    ZERO,
    Band,
    Component,
    Group,
    InstrumentKey,
    MarginMode,
    MarketType,
    Mode,
    OrderType,
    RebalanceTo,
    Sleeve,
    SleeveKind,
)
from bot.core.errors import ConfigError
from bot.core.ids import MAX_CHILDREN
from bot.core.policy.collateral import CollateralOptions, VenueWallets
from bot.core.policy.planner import PlannerOptions
from bot.core.policy.strategies.core_satellite import GroupedSleeve, core_satellite
from bot.core.policy.strategies.errors import StrategyError
from bot.core.policy.triggers import TriggerKind, TriggerRule
from bot.core.risk import RiskLimits
from bot.core.slicing import DEFAULT_MAX_CHILDREN, Slicing
from bot.logs import register_secrets

ENV_PREFIX = "REBALANCE_"
EXCHANGES = ("binance", "binanceusdm", "bitget")
SECRET_FIELDS = ("api_key", "secret", "password")
_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
_PORTFOLIO = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
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


def _band_value(value: Decimal | None, *, relative: bool = False) -> Decimal | None:
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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccountConfig(_Model):
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
        description="request budget of the venue (default: its documented limit)",
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


class InstrumentWeight(_Model):
    symbol: str = Field(description='ccxt unified symbol, e.g. "SOL/USDT:USDT"')
    weight: Dec = Field(ONE, description="share of the sleeve (> 0; all sum to 1)")

    @field_validator("weight")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError(f"sub-weight must be > 0, got {value}")
        return value


class SleeveConfig(_Model):
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
        return _band_value(value)

    @field_validator("relative_band")
    @classmethod
    def _positive_relative_band(cls, value: Decimal | None) -> Decimal | None:
        return _band_value(value, relative=True)

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
        problem = symbols.asset_problem(self.asset, _QUOTE.get())
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
        problems = [symbols.perpetual_problem(name, _QUOTE.get()) for name in named]
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


class TriggerConfig(_Model):
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
        return _band_value(value)

    @field_validator("relative_band")
    @classmethod
    def _relative_band(cls, value: Decimal | None) -> Decimal | None:
        return _band_value(value, relative=True)

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


class PlannerConfig(_Model):
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


class PaperConfig(_Model):
    spot_fee: Dec = Decimal("0.001")
    futures_fee: Dec = Decimal("0.0005")
    slippage_bps: Dec = Decimal("5")

    @field_validator("spot_fee", "futures_fee", "slippage_bps")
    @classmethod
    def _cost(cls, value: Decimal) -> Decimal:
        if value < 0:
            raise ValueError(f"a cost cannot be negative, got {value}")
        return value


class ExecutionConfig(_Model):
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


class RiskConfig(_Model):
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
        return self


class WalletPairConfig(_Model):
    """A spot account and a futures account that are two wallets of one exchange account."""

    spot: str = Field(description="the spot account's name (its spot wallet)")
    futures: str = Field(description="the futures account's name (its futures wallet)")


class CollateralConfig(_Model):
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


class SimulatorConfig(_Model):
    enabled: bool = False
    scenario: Path | None = Field(None, description="config/sim/*.toml, relative to this file")
    seed: int = 7
    port: int = Field(0, ge=0, le=65535, description="0 = any free port")


class ServerConfig(_Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    token: SecretStr | None = Field(None, description="enables POST /halt and /resume; env only")


class NotificationsConfig(_Model):
    urls: list[SecretStr] = Field(default_factory=list, description="apprise URLs; env only")
    min_interval: Duration = timedelta(seconds=60)


class RiskParityConfig(_Model):
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


class OverlayConfig(_Model):
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


class StrategyConfig(_Model):
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


_ENV: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("rebalance_env")
# The portfolio's quote currency while a config is validated, for the sleeves' suggestions.
_QUOTE: contextvars.ContextVar[str] = contextvars.ContextVar("rebalance_quote", default="USDT")


class _MappedEnvSource(EnvSettingsSource):
    """Environment variables from a given mapping, with `*_FILE` variables read from files."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _ENV.get()
        expanded: dict[str, str | None] = {}
        for key, value in env.items():
            upper = key.upper()
            if not upper.startswith(ENV_PREFIX) or upper == f"{ENV_PREFIX}HALT":
                continue
            if upper.endswith("_FILE"):
                expanded[key[: -len("_FILE")].lower()] = _read_secret_file(key, value)
            else:
                expanded[key.lower()] = value
        return expanded


def _read_secret_file(variable: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path}: {exc.strerror}") from None


class BotConfig(BaseSettings):
    """Everything the bot needs to run one portfolio."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    portfolio: str = Field(description="portfolio name: letters, digits, _ and -")
    mode: Mode = Field(Mode.DRY_RUN, description="dry-run (default) or live (also needs --live)")
    quote_currency: str = "USDT"
    cash_assets: list[str] = Field(default_factory=lambda: ["USDT"])
    ignore_assets: list[str] = Field(
        default_factory=list, description="held assets left out of NAV (e.g. delisted dust)"
    )
    data_dir: Path = Field(Path("data"), description="state and audit files")
    interval: Duration = Field(timedelta(seconds=60), description="time between cycle checks")
    accounts: dict[str, AccountConfig]
    sleeves: list[SleeveConfig] = Field(min_length=1)
    trigger: TriggerConfig = TriggerConfig()
    planner: PlannerConfig = PlannerConfig()
    execution: ExecutionConfig = ExecutionConfig()
    risk: RiskConfig = RiskConfig()
    simulator: SimulatorConfig = SimulatorConfig()
    server: ServerConfig = ServerConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    strategy: StrategyConfig = StrategyConfig()
    collateral: CollateralConfig = CollateralConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the TOML file, which arrives as init values.
        return (_MappedEnvSource(settings_cls), init_settings)

    @field_validator("portfolio")
    @classmethod
    def _portfolio(cls, value: str) -> str:
        if not _PORTFOLIO.match(value):
            raise ValueError(f"{value!r}: use 1-64 letters, digits, _ or -")
        return value

    @field_validator("accounts")
    @classmethod
    def _account_names(cls, value: dict[str, AccountConfig]) -> dict[str, AccountConfig]:
        if not value:
            raise ValueError("at least one account is needed")
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"account name {name!r}: use 1-32 of a-z, 0-9 and _")
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("interval must be at least 1 second")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> BotConfig:
        self._check_sleeves()
        self._check_strategy()
        self._check_wallet_pairs()
        uses_sim = [n for n, a in self.accounts.items() if a.simulator]
        if uses_sim and not self.simulator.enabled:
            raise ValueError(
                f"account {uses_sim[0]!r} uses the simulator but [simulator] enabled is false"
            )
        if self.mode is Mode.LIVE:
            for name, account in self.accounts.items():
                if not account.simulator and not account.has_credentials:
                    raise ValueError(f"mode is live but {_missing_credentials(name, account)}")
        return self

    def _check_wallet_pairs(self) -> None:
        if self.collateral.enabled and not self.collateral.venues:
            raise ValueError(
                "collateral.enabled is true but no [[collateral.venues]] pairs a spot and a "
                "futures account"
            )
        seen: set[str] = set()
        for index, pair in enumerate(self.collateral.venues):
            where = f"collateral.venues[{index}]"
            for role, name in (("spot", pair.spot), ("futures", pair.futures)):
                account = self.accounts.get(name)
                if account is None:
                    raise ValueError(f"{where}.{role}: no account named {name!r}")
                wanted = MarketType.SPOT if role == "spot" else MarketType.SWAP
                if account.market is not wanted:
                    raise ValueError(f"{where}.{role}: account {name!r} is not a {wanted} account")
                if name in seen:
                    raise ValueError(f"{where}.{role}: account {name!r} is paired twice")
                seen.add(name)
            spot, futures = self.accounts[pair.spot], self.accounts[pair.futures]
            if exchange_family(spot.exchange) != exchange_family(futures.exchange) or (
                spot.sim_account,
                spot.simulator,
                spot.base_url,
            ) != (futures.sim_account, futures.simulator, futures.base_url):
                raise ValueError(
                    f"{where}: {pair.spot!r} and {pair.futures!r} are not one exchange account "
                    "(transfers never cross exchanges)"
                )
            if futures.leverage is not None and futures.leverage < self.collateral.leverage:
                raise ValueError(
                    f"collateral.leverage {self.collateral.leverage} is more than accounts."
                    f"{pair.futures}.leverage {futures.leverage}: the exchange would ask more "
                    "margin than the collateral plan moves"
                )

    def _check_sleeves(self) -> None:
        names = [s.name for s in self.sleeves]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"sleeves: the name {name!r} is used twice")
        seen: dict[InstrumentKey, str] = {}
        for sleeve in self.sleeves:
            self._check_account_fits(sleeve)
            for component in sleeve.components(self.quote_currency):
                if component.key in seen:
                    raise ValueError(
                        f"sleeve {sleeve.name!r}: {component.key.symbol} on {component.key.account}"
                        f" is already in sleeve {seen[component.key]!r}"
                    )
                seen[component.key] = sleeve.name
        spot_total = sum((s.target for s in self.sleeves if s.kind is SleeveKind.SPOT), ZERO)
        if spot_total > 1 and self.strategy.kind == "static":
            raise ValueError(f"spot targets sum to {spot_total} > 1: cash would be negative")

    def _check_strategy(self) -> None:
        strategy = self.strategy
        by_name = {s.name: s for s in self.sleeves}
        grouped = strategy.kind == "core-satellite" or (
            strategy.kind == "risk-parity" and strategy.risk_parity.scope == "groups"
        )
        if grouped:
            if not strategy.groups:
                raise ValueError(f"strategy {strategy.kind}: set [strategy.groups] weights")
            for sleeve in self.sleeves:
                if sleeve.name == (strategy.overlay.hedge_sleeve if strategy.overlay else None):
                    continue
                if sleeve.group is None or sleeve.group not in strategy.groups:
                    raise ValueError(
                        f"sleeve {sleeve.name!r}: strategy {strategy.kind} needs a group that "
                        f"[strategy.groups] weighs ({', '.join(map(str, strategy.groups))})"
                    )
        if strategy.kind == "core-satellite":
            for group in strategy.groups:
                members = [
                    s
                    for s in self.sleeves
                    if s.group is group
                    and s.name != (strategy.overlay.hedge_sleeve if strategy.overlay else None)
                ]
                total = sum((abs(s.target) for s in members), ZERO)
                if members and total != 1:
                    raise ValueError(
                        f"core-satellite: the targets of group {group} are weights inside the "
                        f"group and must sum to 1 (in absolute value), not {total}"
                    )
        overlay = strategy.overlay
        if overlay is None:
            return
        hedge = by_name.get(overlay.hedge_sleeve)
        if hedge is None or hedge.kind is not SleeveKind.FUTURES:
            raise ValueError(
                f"strategy.overlay.hedge_sleeve {overlay.hedge_sleeve!r} is not a futures sleeve"
            )
        for name in overlay.hedged_sleeves:
            hedged = by_name.get(name)
            if hedged is None or hedged.kind is not SleeveKind.SPOT:
                raise ValueError(f"strategy.overlay.hedged_sleeves: {name!r} is not a spot sleeve")

    def _check_account_fits(self, sleeve: SleeveConfig) -> None:
        account = self.accounts.get(sleeve.account)
        if account is None:
            raise ValueError(f"sleeve {sleeve.name!r}: no account named {sleeve.account!r}")
        wanted = MarketType.SPOT if sleeve.kind is SleeveKind.SPOT else MarketType.SWAP
        if account.market is not wanted:
            raise ValueError(
                f"sleeve {sleeve.name!r}: a {sleeve.kind} sleeve needs a {wanted} account, "
                f"{sleeve.account!r} is {account.market}"
            )
        if sleeve.kind is SleeveKind.SPOT and (
            sleeve.asset in self.cash_assets or sleeve.asset == self.quote_currency
        ):
            raise ValueError(f"sleeve {sleeve.name!r}: {sleeve.asset} is cash, not a sleeve")

    def resolve(self, config_dir: Path, data_dir: Path | None) -> BotConfig:
        """Paths relative to the config file's directory; `--data-dir` wins over the file."""
        updates: dict[str, Any] = {}
        if data_dir is not None:
            updates["data_dir"] = data_dir
        scenario = self.simulator.scenario
        if scenario is not None and not scenario.is_absolute():
            updates["simulator"] = self.simulator.model_copy(
                update={"scenario": config_dir / scenario}
            )
        return self.model_copy(update=updates) if updates else self

    @property
    def kill_switch_file(self) -> Path:
        return self.risk.kill_switch_file or self.data_dir / "HALT"

    def secrets(self) -> list[SecretStr]:
        """Every secret value the config holds: keys, secrets, passphrases, token, URLs."""
        found = [
            value
            for account in self.accounts.values()
            for value in (account.api_key, account.secret, account.password)
            if value is not None
        ]
        if self.server.token is not None:
            found.append(self.server.token)
        return found + list(self.notifications.urls)


def _missing_credentials(name: str, account: AccountConfig) -> str:
    fields = ["api_key", "secret"] + (["password"] if account.exchange == "bitget" else [])
    missing = [f for f in fields if getattr(account, f) is None]
    variables = ", ".join(f"{ENV_PREFIX}ACCOUNTS__{name.upper()}__{f.upper()}" for f in missing)
    return f"accounts.{name} has no {'/'.join(missing)} (set {variables} or *_FILE)"


def _secrets_in_file(data: Mapping[str, Any]) -> list[str]:
    """Each secret written in the file, with the environment variable that carries it."""
    found: list[tuple[str, str]] = []
    accounts = data.get("accounts")
    for name, account in accounts.items() if isinstance(accounts, Mapping) else []:
        if isinstance(account, Mapping):
            for field in SECRET_FIELDS:
                for key in (field, f"{field}_file"):
                    if key in account:
                        found.append((f"accounts.{name}.{key}", f"ACCOUNTS__{name}__{field}"))
    if isinstance(data.get("server"), Mapping) and "token" in data["server"]:
        found.append(("server.token", "SERVER__TOKEN"))
    if isinstance(data.get("notifications"), Mapping) and "urls" in data["notifications"]:
        found.append(("notifications.urls", "NOTIFICATIONS__URLS"))
    return [
        f"{where}: a secret is never read from the config file: remove it and set "
        f"{ENV_PREFIX}{variable.upper()} in the environment (or {ENV_PREFIX}"
        f"{variable.upper()}_FILE naming a file that holds it)"
        for where, variable in found
    ]


def _location(loc: tuple[int | str, ...], data: Mapping[str, Any]) -> str:
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, Mapping) and "name" in node:
                    label += f" ({node['name']})"
            parts.append(label)
        else:
            parts.append(("." if parts else "") + item)
            node = node.get(item) if isinstance(node, Mapping) else None
    return "".join(parts)


def _problems(problems: list[str]) -> str:
    """Every problem on one line: a person fixes them all in one edit, not one per run."""
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems: " + "; ".join(
        f"({n}) {problem}" for n, problem in enumerate(problems, 1)
    )


def _one_line(error: ValidationError, data: Mapping[str, Any], prefix: str = "") -> str:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        loc = tuple(
            p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        message = str(item["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting (a typo?)"
        elif item["type"] == "missing":
            message = "required but missing"
        where = _location(loc, data)
        problems.append(f"{prefix}{where}: {message}" if where else prefix + message)
    return _problems(problems)


def load_config(
    path: Path, *, env: Mapping[str, str] | None = None, data_dir: Path | None = None
) -> BotConfig:
    """Read, merge and validate; raise ConfigError with one line naming the field."""
    import os  # noqa: PLC0415 - the process environment is read only when no mapping is given

    environment = dict(os.environ) if env is None else dict(env)
    return validate(read_toml(path), path.parent, environment, data_dir)


def validate(
    data: Mapping[str, Any],
    config_dir: Path,
    environment: Mapping[str, str],
    data_dir: Path | None = None,
    *,
    where: str = "",
) -> BotConfig:
    """One portfolio's settings (from a file, or one of several in it) validated with the
    environment's overrides; `where` prefixes each problem (`portfolios[2] (b)`)."""
    secrets = _secrets_in_file(data)
    if secrets:
        raise ConfigError(_problems([f"{where}{line}" for line in secrets]))
    token = _ENV.set(environment)
    quote = data.get("quote_currency")
    quote_token = _QUOTE.set(quote if isinstance(quote, str) else "USDT")
    try:
        config = BotConfig(**data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, data, where)) from None
    except SettingsError as exc:
        raise ConfigError(where + _environment_error(exc, environment)) from None
    except (ArithmeticError, TypeError, ValueError) as exc:
        # A value no validator foresaw: still one line, never a traceback.
        raise ConfigError(f"{where}a value cannot be used: {type(exc).__name__}: {exc}") from None
    finally:
        _ENV.reset(token)
        _QUOTE.reset(quote_token)
    # From here on no log line, audit record, stored or served text of this process carries them.
    register_secrets(config.secrets())
    return config.resolve(config_dir, data_dir)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
        return tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a text file in UTF-8 (the byte at offset {exc.start} is not UTF-8)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _environment_error(error: SettingsError, env: Mapping[str, str]) -> str:
    """Name the variables behind a setting the environment gave in a form that cannot be read
    (a list or a table must be JSON); never their values, which may be secrets."""
    match = re.search(r'field "([^"]+)"', str(error))
    field = match.group(1) if match else ""
    prefix = f"{ENV_PREFIX}{field}".upper()
    names = sorted(name for name in env if field and name.upper().startswith(prefix))
    cause = error.__cause__
    why = f" ({cause.msg} at character {cause.pos})" if isinstance(cause, JSONDecodeError) else ""
    where = ", ".join(names) or f"the environment variables of {field or 'a setting'}"
    return (
        f"{where}: cannot be read{why}; a list or a table in the environment is written as "
        f"JSON, e.g. {ENV_PREFIX}NOTIFICATIONS__URLS='[\"json://…\"]'"
    )


def check_live_allowed(config: BotConfig, cli_live: bool) -> Mode:
    """Live needs both `mode = "live"` in the config and `--live`; anything else is dry-run."""
    if cli_live and config.mode is not Mode.LIVE:
        raise ConfigError('--live was given but the config says mode = "dry-run"')
    if not cli_live:
        return Mode.DRY_RUN
    for name, account in config.accounts.items():
        if not account.simulator and not account.has_credentials:
            raise ConfigError(f"cannot trade live: {_missing_credentials(name, account)}")
    return Mode.LIVE


# -- conversions to the core's values ------------------------------------------------------


def to_sleeves(config: BotConfig) -> tuple[Sleeve, ...]:
    sleeves = []
    for s in config.sleeves:
        absolute = s.band if s.band is not None else config.trigger.band
        relative = s.relative_band if s.relative_band is not None else config.trigger.relative_band
        if s.relative_band is not None and s.band is None:
            absolute_or_none: Decimal | None = None  # a relative override alone means relative only
        else:
            absolute_or_none = absolute
        sleeves.append(
            Sleeve(
                name=s.name,
                kind=s.kind,
                components=s.components(config.quote_currency),
                band=Band(absolute=absolute_or_none, relative=relative),
                group=s.group,
            )
        )
    return tuple(sleeves)


def targets(config: BotConfig) -> dict[str, Decimal]:
    return {s.name: s.target for s in config.sleeves}


def nav_targets(config: BotConfig) -> dict[str, Decimal] | None:
    """Each sleeve's target as a share of NAV, as the bot will trade it; None when a strategy
    computes them from prices (risk parity). An overlay's hedge starts at 0 (bullish)."""
    strategy = config.strategy
    hedge = strategy.overlay.hedge_sleeve if strategy.overlay is not None else None
    if strategy.kind == "risk-parity":
        return None
    if strategy.kind == "static":
        weights = targets(config)
    else:
        grouped = [
            GroupedSleeve(s.name, s.group or Group.CORE, s.kind, s.target)
            for s in config.sleeves
            if s.name != hedge
        ]
        try:
            weights = dict(core_satellite(strategy.groups, grouped).targets)
        except StrategyError as exc:
            raise ConfigError(f"strategy core-satellite: {exc}") from None
    if hedge is not None:
        weights[hedge] = ZERO
    return weights


def instrument_keys(config: BotConfig) -> frozenset[InstrumentKey]:
    return frozenset(c.key for s in config.sleeves for c in s.components(config.quote_currency))


def trigger_rule(config: BotConfig) -> TriggerRule:
    t = config.trigger
    return TriggerRule(
        kind=t.kind, interval=t.interval, cron=t.cron, cooldown=t.cooldown, min_drift=t.min_drift
    )


def exchange_family(exchange: str) -> str:
    """The exchange an account belongs to: Binance spot and USDⓈ-M are one exchange."""
    return "binance" if exchange in ("binance", "binanceusdm") else exchange


def wallet_pairs(config: BotConfig) -> tuple[VenueWallets, ...]:
    return tuple(
        VenueWallets(
            f"{exchange_family(config.accounts[p.spot].exchange)} ({p.spot}+{p.futures})",
            exchange_family(config.accounts[p.spot].exchange),
            p.spot,
            p.futures,
        )
        for p in config.collateral.venues
    )


def collateral_options(config: BotConfig) -> CollateralOptions:
    c, planner = config.collateral, planner_options(config)
    return CollateralOptions(
        leverage=c.leverage,
        min_liquidation_distance=c.min_liquidation_distance,
        maintenance_rate=c.maintenance_rate,
        fee_buffer=planner.buy_fee_buffer,
        cash_reserve=planner.cash_reserve,
        max_transfer_fraction_cycle=c.max_transfer_fraction_cycle,
        max_transfer_fraction_day=c.max_transfer_fraction_day,
        min_transfer=c.min_transfer,
    )


def planner_options(config: BotConfig) -> PlannerOptions:
    p = config.planner
    # The planner never plans a buy that the risk engine's cash-reserve check would deny.
    reserve = max(p.cash_reserve, config.risk.min_cash_reserve or ZERO)
    return PlannerOptions(to=p.to, buy_fee_buffer=p.buy_fee_buffer, cash_reserve=reserve)


def risk_limits(config: BotConfig) -> RiskLimits:
    r = config.risk
    return RiskLimits(
        max_order_notional=r.max_order_notional,
        max_order_fraction=r.max_order_fraction,
        max_turnover_cycle=r.max_turnover_cycle,
        max_turnover_day=r.max_turnover_day,
        max_leverage=r.max_leverage,
        max_gross_exposure=r.max_gross_exposure,
        allowed_symbols=frozenset(r.allowed_symbols) if r.allowed_symbols is not None else None,
        max_quote_age=r.max_quote_age,
        max_mark_deviation=r.max_mark_deviation,
        max_spread=r.max_spread,
        max_touch_deviation=r.max_touch_deviation,
        max_basis=r.max_basis,
        max_price_jump=r.max_price_jump,
        price_confirm_cycles=r.price_confirm_cycles,
        min_cash_reserve=r.min_cash_reserve,
        max_orders_per_minute=r.max_orders_per_minute,
        max_drawdown=r.max_drawdown,
        drawdown_window=r.drawdown_window,
        min_liquidation_distance=r.min_liquidation_distance,
        max_margin_ratio=r.max_margin_ratio,
        slicing=config.execution.slicing,
    )


def check_instruments(config: BotConfig, known: Mapping[str, set[str]]) -> None:
    """Every sleeve instrument must be a market of its account (known: account → symbols)."""
    for index, sleeve in enumerate(config.sleeves):
        for component in sleeve.components(config.quote_currency):
            symbols = known.get(component.key.account, set())
            if component.key.symbol not in symbols:
                raise ConfigError(
                    f"sleeves[{index}] ({sleeve.name}): {component.key.symbol} is not a market "
                    f"on account {component.key.account}"
                )
