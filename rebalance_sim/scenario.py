"""Simulator scenarios: the TOML file that describes one simulated market and its accounts.

A scenario says how time runs (clock), how prices move (assets, correlation, regimes, replay),
which markets exist with which filters (each venue's real filters, `rebalance_sim.reference`; a
coin a venue has no data for is refused, not invented, unless it is one of the optional
synthetic `ALT001…` assets for large portfolios or the scenario gives its sizes), the fee
schedule, the book model, funding, request budgets, faults and the accounts with their venue,
keys (and Bitget passphrases, and whether a Bitget account is unified) and starting balances.
`load_scenario` validates it and reports the first problem in one line naming the field.
Everything missing has a sensible default, so an empty file is a valid scenario.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
import tomllib
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from rebalance_sim.auth import Permission
from rebalance_sim.clock import ClockMode
from rebalance_sim.engine import (
    Bracket,
    FundingModel,
    InstrumentId,
    MarginMode,
    Market,
    MarketKind,
    MarketRules,
    brackets_from_tiers,
)
from rebalance_sim.errors import SimConfigError
from rebalance_sim.faults import FaultKind, FaultRule
from rebalance_sim.prices import (
    AssetSpec,
    PathSpec,
    PathSpecError,
    Regime,
    RegimeState,
    markov_regimes,
)
from rebalance_sim.reference import (
    BINANCE_PERP,
    BINANCE_SPOT,
    BITGET_PERP,
    BITGET_SPOT,
    BitgetPerp,
    BitgetSpot,
)
from rebalance_sim.tables import rows

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class ScenarioError(SimConfigError):
    """The scenario file is unreadable or invalid; the message names the field."""


def _to_ms(value: Any) -> Any:
    """Instants: epoch milliseconds, an ISO 8601 string, a TOML datetime (UTC if naive), or
    "now" (the wall clock: exchange time then starts at the real time, to the millisecond)."""
    if value == "now":
        return int(time.time() * 1000)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"not an ISO 8601 instant: {value!r}") from exc
        return _to_ms(moment)
    return value


def _duration_ms(value: Any) -> Any:
    """Durations: milliseconds, or a number with a unit (`250ms`, `30s`, `1m`, `8h`, `1d`)."""
    if isinstance(value, str):
        text = value.strip()
        for unit in ("ms", "s", "m", "h", "d"):
            if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
                return int(float(text[: -len(unit)]) * _UNITS_MS[unit])
        raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 30s, 1m, 8h, 1d)")
    return value


Instant = Annotated[int, BeforeValidator(_to_ms)]
Duration = Annotated[int, BeforeValidator(_duration_ms)]
PositiveDecimal = Annotated[Decimal, Field(gt=0)]
NonNegativeDecimal = Annotated[Decimal, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClockConfig(_Model):
    mode: ClockMode = ClockMode.REALTIME
    start: Instant = Field(default_factory=lambda: _to_ms("2024-01-01T00:00:00Z"))
    speed: float = Field(default=1.0, gt=0)
    step: Duration = Field(default=60_000, gt=0, description="resolution of the price path")


class AssetConfig(_Model):
    price: float = Field(gt=0)
    drift: float = 0.0
    vol: float = Field(default=0.6, ge=0)
    daily_volume: float = Field(default=50_000_000.0, gt=0, description="quote value per day")


class RegimeConfig(_Model):
    name: str
    start: Instant
    end: Instant | None = None
    drift: dict[str, float] = Field(default_factory=dict)
    vol_mult: dict[str, float] = Field(default_factory=dict)


class RegimeStateConfig(_Model):
    name: str
    mean_days: float = Field(ge=1)
    drift: dict[str, float] = Field(default_factory=dict)
    vol_mult: dict[str, float] = Field(default_factory=dict)


class MarkovConfig(_Model):
    """Regimes drawn by a seeded Markov chain over days (bull/bear switching)."""

    horizon_days: int = Field(default=730, ge=1, description="days after the clock start")
    states: list[RegimeStateConfig] = Field(min_length=2)


class MarketOverride(_Model):
    tick_size: PositiveDecimal | None = None
    step_size: PositiveDecimal | None = None
    min_qty: PositiveDecimal | None = None
    max_qty: PositiveDecimal | None = None
    market_max_qty: PositiveDecimal | None = None
    min_notional: Decimal | None = Field(default=None, ge=0)
    max_leverage: int | None = Field(default=None, ge=1, le=125)


class MarketsConfig(_Model):
    quote: str = "USDT"
    spot: list[str] | None = None  # base assets with a spot market; default: every asset
    perp: list[str] | None = None  # base assets with a perpetual; default: every asset
    synthetic: int = Field(default=0, ge=0, le=999, description="ALT001… assets to generate")
    spot_overrides: dict[str, MarketOverride] = Field(default_factory=dict)
    perp_overrides: dict[str, MarketOverride] = Field(default_factory=dict)


class FeesConfig(_Model):
    spot_maker: Decimal = Field(default=Decimal("0.001"), ge=0)
    spot_taker: Decimal = Field(default=Decimal("0.001"), ge=0)
    futures_maker: Decimal = Field(default=Decimal("0.0002"), ge=0)
    futures_taker: Decimal = Field(default=Decimal("0.0005"), ge=0)


class BookConfig(_Model):
    spread_bps: Decimal = Field(default=Decimal(2), ge=0)
    slippage_bps_per_100k: Decimal = Field(default=Decimal(1), ge=0)
    top_notional: PositiveDecimal = Decimal(250_000)
    partial_fill_fraction: Decimal | None = Field(default=None, gt=0, le=1)


class FundingConfig(_Model):
    interval: Duration = Field(default=8 * 3_600_000, gt=0)
    rate: Decimal = Decimal("0.0001")
    rates: dict[str, Decimal] = Field(default_factory=dict)


class RateLimitsConfig(_Model):
    spot_weight_per_minute: int = Field(default=6000, ge=1)
    futures_weight_per_minute: int = Field(default=2400, ge=1)
    spot_orders_per_10s: int = Field(default=100, ge=1)
    futures_orders_per_10s: int = Field(default=300, ge=1)
    ban_after: int = Field(default=10, ge=0, description="429s tolerated before a 418 ban")
    ban: Duration = Field(default=120_000, gt=0)
    bitget_scale: float = Field(
        default=1.0, gt=0, description="multiplies Bitget's per-endpoint requests per second"
    )


class FaultConfig(_Model):
    kind: FaultKind
    endpoint: str = "*"
    probability: float = Field(default=0.0, ge=0, le=1)
    next: int = Field(default=0, ge=0, description="fire on the next N matching calls")
    latency: Duration = Field(default=0, ge=0)
    fill_fraction: Decimal = Field(default=Decimal("0.5"), gt=0, lt=1)
    gap_factor: float = Field(default=1.0, gt=0)
    gap_asset: str | None = None
    hide_lookups: int = Field(default=0, ge=0)
    hide: Duration = Field(default=0, ge=0)
    hide_listed: bool = False
    executed: bool = False

    @model_validator(mode="after")
    def _fires(self) -> FaultConfig:
        if self.probability == 0 and self.next == 0:
            raise ValueError("a fault needs `probability` > 0 or `next` > 0")
        return self

    def rule(self) -> FaultRule:
        """The rule: the same fields, its durations named for their unit."""
        fields = self.model_dump(exclude={"latency", "hide"})
        return FaultRule(**fields, latency_ms=self.latency, hide_ms=self.hide)


class FaultsConfig(_Model):
    clock_skew: int = Field(default=0, description="ms added to the server's wall clock")
    rules: list[FaultConfig] = Field(default_factory=list)


class PositionConfig(_Model):
    asset: str
    amount: Decimal
    entry_price: PositiveDecimal
    leverage: int | None = Field(default=None, ge=1, le=125)
    margin_mode: MarginMode = MarginMode.CROSS


class AccountConfig(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    venue: Literal["binance", "bitget"] = "binance"
    uta: bool = Field(
        default=False, description="Bitget: a unified trading account (API v3), else classic (v2)"
    )
    api_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{16,128}$")
    api_secret: SecretStr | None = None
    passphrase: SecretStr | None = Field(default=None, description="Bitget: the key's passphrase")
    read_only_passphrase: SecretStr | None = None
    permissions: list[Permission] = Field(
        default_factory=lambda: [
            Permission.READ,
            Permission.TRADE,
            Permission.FUTURES,
            Permission.TRANSFER,
        ]
    )
    read_only_key: bool = Field(default=True, description="also issue a read-only key")
    read_only_api_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{16,128}$")
    read_only_api_secret: SecretStr | None = None
    spot: dict[str, NonNegativeDecimal] = Field(default_factory=dict)
    futures_wallet: Decimal = Field(default=Decimal(0), ge=0)
    funding: dict[str, PositiveDecimal] = Field(
        default_factory=dict, description="Binance: the funding wallet's balances"
    )
    earn_flexible: dict[str, PositiveDecimal] = Field(
        default_factory=dict, description="Simple Earn flexible (Bitget: flexible savings)"
    )
    earn_locked: dict[str, PositiveDecimal] = Field(
        default_factory=dict, description="Simple Earn locked (Bitget: fixed savings)"
    )
    leverage: dict[str, int] = Field(default_factory=dict)
    hedge_mode: bool = Field(
        default=False, description="the account holds long and short positions apart"
    )
    positions: list[PositionConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _secret_with_key(self) -> AccountConfig:
        if (self.api_key is None) != (self.api_secret is None):
            raise ValueError("give both api_key and api_secret, or neither")
        if (self.read_only_api_key is None) != (self.read_only_api_secret is None):
            raise ValueError("give both read_only_api_key and read_only_api_secret, or neither")
        if self.venue != "bitget":
            if self.uta:
                raise ValueError("uta applies to bitget accounts only")
            if self.passphrase is not None or self.read_only_passphrase is not None:
                raise ValueError("a passphrase applies to bitget accounts only")
        return self


def _default_accounts() -> list[AccountConfig]:
    return [
        AccountConfig(
            name="main",
            spot={"USDT": Decimal(10_000), "BTC": Decimal("0.1"), "ETH": Decimal(1)},
            futures_wallet=Decimal(5_000),
        )
    ]


class Scenario(_Model):
    """A whole simulated market; `load_scenario` builds one from TOML."""

    clock: ClockConfig = ClockConfig()
    history_days: int = Field(default=400, ge=1)
    correlation: float | list[list[float]] = 0.5
    assets: dict[str, AssetConfig] = Field(default_factory=dict)
    regimes: list[RegimeConfig] = Field(default_factory=list)
    markov: MarkovConfig | None = None
    replay: dict[str, str] = Field(default_factory=dict)
    markets: MarketsConfig = MarketsConfig()
    fees: FeesConfig = FeesConfig()
    book: BookConfig = BookConfig()
    funding: FundingConfig = FundingConfig()
    rate_limits: RateLimitsConfig = RateLimitsConfig()
    faults: FaultsConfig = FaultsConfig()
    accounts: list[AccountConfig] = Field(default_factory=_default_accounts)

    @field_validator("correlation")
    @classmethod
    def _correlation(cls, value: float | list[list[float]]) -> float | list[list[float]]:
        if isinstance(value, float | int) and not -1 <= value <= 1:
            raise ValueError("must be within [-1, 1]")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.markov is not None and self.regimes:
            raise ValueError("give either scheduled `regimes` or `markov` regimes, not both")
        names = [a.name for a in self.accounts]
        if len(set(names)) != len(names):
            raise ValueError("account names must be unique")
        assets = set(self.asset_specs(seed=0))
        for field_name, listed in (("spot", self.markets.spot), ("perp", self.markets.perp)):
            unknown = sorted(set(listed or ()) - assets)
            if unknown:
                raise ValueError(f"markets.{field_name} names unknown assets {unknown}")
        return self

    def asset_specs(self, seed: int) -> dict[str, AssetConfig]:
        """Configured assets (default: the built-in majors) plus synthetic ones."""
        assets = dict(self.assets) if self.assets else dict(DEFAULT_ASSETS)
        rng = random.Random(f"synthetic:{seed}")
        for index in range(1, self.markets.synthetic + 1):
            price = round(10 ** rng.uniform(-2.0, 2.5), 6)
            vol = round(rng.uniform(0.7, 1.4), 3)
            assets[f"ALT{index:03d}"] = AssetConfig(price=price, vol=vol, daily_volume=5e6)
        return assets


def load_scenario(source: str | Path | Mapping[str, Any] | None) -> Scenario:
    """A scenario from a TOML path, a parsed mapping, or defaults for None."""
    if source is None:
        return Scenario()
    if isinstance(source, Mapping):
        data: Mapping[str, Any] = source
        where = "scenario"
    else:
        path = Path(source)
        where = str(path)
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise ScenarioError(f"{where}: cannot read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{where}: not valid TOML: {exc}") from exc
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        raise ScenarioError(f"{where}: {location}: {error['msg']}") from None
    if scenario.replay and not isinstance(source, Mapping):
        # Replay files are named relative to the scenario file.
        base = Path(source).parent
        replay = {asset: str(base / path) for asset, path in scenario.replay.items()}
        scenario = scenario.model_copy(update={"replay": replay})
    return scenario


# -- market defaults -------------------------------------------------------------------------

D = Decimal

DEFAULT_ASSETS: dict[str, AssetConfig] = {
    "BTC": AssetConfig(price=60_000.0, vol=0.6),
    "ETH": AssetConfig(price=3_000.0, vol=0.75),
    "SOL": AssetConfig(price=150.0, vol=1.0),
    "BNB": AssetConfig(price=550.0, vol=0.7),
    "XRP": AssetConfig(price=0.55, vol=0.9),
    "DOGE": AssetConfig(price=0.15, vol=1.1),
    "ADA": AssetConfig(price=0.45, vol=0.95),
    "LINK": AssetConfig(price=15.0, vol=1.0),
    "AVAX": AssetConfig(price=30.0, vol=1.05),
    "DOT": AssetConfig(price=7.0, vol=0.95),
    "LTC": AssetConfig(price=80.0, vol=0.85),
}

# Leverage brackets: notional floor, max leverage and maintenance margin ratio of each tier, for
# BTC, ETH, the other major perpetuals and the rest.
_TIERS_TABLE = """
    tiers  floor          leverage  maintenance
    BTC    0              125       0.004
    BTC    50_000         100       0.005
    BTC    600_000        75        0.0065
    BTC    3_000_000      50        0.01
    BTC    12_000_000     25        0.02
    BTC    70_000_000     20        0.025
    BTC    100_000_000    10        0.05
    BTC    230_000_000    5         0.1
    BTC    480_000_000    4         0.125
    BTC    600_000_000    3         0.15
    BTC    800_000_000    2         0.25
    BTC    1_200_000_000  1         0.5
    ETH    0              125       0.005
    ETH    50_000         100       0.0065
    ETH    600_000        75        0.01
    ETH    3_000_000      50        0.02
    ETH    12_000_000     25        0.05
    ETH    50_000_000     20        0.1
    ETH    65_000_000     10        0.125
    ETH    150_000_000    5         0.15
    ETH    320_000_000    4         0.25
    ETH    400_000_000    1         0.5
    major  0              75        0.01
    major  5_000          50        0.015
    major  50_000         25        0.02
    major  600_000        20        0.025
    major  1_600_000      10        0.05
    major  2_000_000      5         0.1
    major  5_000_000      4         0.125
    major  10_000_000     2         0.25
    major  20_000_000     1         0.5
    small  0              20        0.025
    small  5_000          10        0.05
    small  25_000         5         0.1
    small  100_000        4         0.125
    small  250_000        2         0.25
    small  1_000_000      1         0.5
"""


def _tier_table(table: str) -> dict[str, list[tuple[Decimal, int, Decimal]]]:
    tiers: dict[str, list[tuple[Decimal, int, Decimal]]] = {}
    for name, floor, leverage, ratio in rows(table)[1]:
        tiers.setdefault(name, []).append((D(floor), int(leverage), D(ratio)))
    return tiers


_TIERS = _tier_table(_TIERS_TABLE)


def _tiers(asset: str, max_leverage: int | None) -> tuple[Bracket, ...]:
    tiers = _TIERS.get(asset, _TIERS["major" if asset in BINANCE_PERP else "small"])
    if max_leverage is not None:
        tiers = [(floor, min(leverage, max_leverage), ratio) for floor, leverage, ratio in tiers]
    return brackets_from_tiers(tiers)


def derived_filters(price: float, *, perp: bool) -> tuple[str, ...]:
    """Filters for an asset without a built-in table, scaled to its price (5 significant
    digits of price, a lot worth about a cent to ten cents)."""
    magnitude = math.floor(math.log10(price))
    tick = D(10) ** (magnitude - 4)
    step = D(10) ** min(max(-magnitude - 2, -8), 3)
    max_qty = D(10) ** max(0, 7 - magnitude)
    return (str(tick), str(step), str(step), str(max_qty), str(max_qty / 10), "5")


def _rules(
    filters: Sequence[str | Decimal], override: MarketOverride | None, brackets: tuple[Bracket, ...]
) -> MarketRules:
    """Rules from (tick, step, min qty, max qty, market max qty, min notional), overridden."""
    tick, step, min_qty, max_qty, market_max, min_notional = (D(v) for v in filters)
    if override is not None:
        tick = override.tick_size or tick
        step = override.step_size or step
        min_qty = override.min_qty or max(min_qty, step)
        max_qty = override.max_qty or max_qty
        market_max = override.market_max_qty or market_max
        if override.min_notional is not None:
            min_notional = override.min_notional
    return MarketRules(
        tick_size=tick,
        min_price=tick,
        max_price=D(10) ** 7 if tick < 1 else D(10) ** 9,
        step_size=step,
        min_qty=min_qty,
        max_qty=max_qty,
        market_max_qty=market_max,
        min_notional=min_notional,
        brackets=brackets,
    )


def _overrides(scenario: Scenario, kind: MarketKind) -> dict[str, MarketOverride]:
    markets = scenario.markets
    return markets.spot_overrides if kind is MarketKind.SPOT else markets.perp_overrides


def _listed(
    scenario: Scenario, seed: int, kind: MarketKind, venue: str, known: Collection[str]
) -> list[tuple[str, bool]]:
    """(asset, whether its real filters are known) of each asset with a `kind` market on `venue`.

    An asset without real filters on the venue is listed only if it is synthetic (invented on
    purpose) or the scenario gives its tick and step sizes; else, if the scenario names it
    (in `assets` or the market list) and has an account on the venue, the scenario is refused,
    and an asset it did not name (a default) is simply not listed there."""
    assets = scenario.asset_specs(seed)
    named = getattr(scenario.markets, kind.value)
    overrides = _overrides(scenario, kind)
    synthetic = {f"ALT{n:03d}" for n in range(1, scenario.markets.synthetic + 1)}
    trading = venue in {account.venue for account in scenario.accounts}
    result: list[tuple[str, bool]] = []
    for asset in named if named is not None else list(assets):
        if asset == scenario.markets.quote:
            continue
        override = overrides.get(asset)
        if asset in known:
            result.append((asset, True))
        elif asset in synthetic or (override and override.tick_size and override.step_size):
            result.append((asset, False))
        elif trading and (asset in scenario.assets or named is not None):
            title = {"binance": "Binance", "bitget": "Bitget"}[venue]
            field = f"markets.{kind.value}_overrides.{asset}"
            raise ScenarioError(
                f"scenario: {asset}: the simulator knows no real {title} {kind.value} filters "
                f"for {asset} (it knows {', '.join(sorted(known))}); set {field}.tick_size and "
                f"{field}.step_size, or leave {asset} out"
            )
    return result


def build_markets(scenario: Scenario, seed: int, listed_ms: int) -> list[Market]:
    """Every spot and perpetual market of the scenario, with Binance's filters."""
    assets = scenario.asset_specs(seed)
    markets: list[Market] = []
    for kind, table in ((MarketKind.SPOT, BINANCE_SPOT), (MarketKind.PERP, BINANCE_PERP)):
        perp = kind is MarketKind.PERP
        for asset, known in _listed(scenario, seed, kind, "binance", table):
            filters = table[asset][:6] if known else derived_filters(assets[asset].price, perp=perp)
            override = _overrides(scenario, kind).get(asset)
            brackets = _tiers(asset, override.max_leverage if override else None) if perp else ()
            instrument = InstrumentId(kind, asset, scenario.markets.quote)
            markets.append(Market(instrument, _rules(filters, override, brackets), listed_ms))
    return markets


def _places(price_places: int, qty_places: int) -> tuple[Decimal, Decimal]:
    """Bitget's tick and lot: powers of ten of its price and quantity precisions."""
    return D(1).scaleb(-price_places), D(1).scaleb(-qty_places)


def _bitget_places(price: float) -> tuple[int, int]:
    """(price places, quantity places) for a synthetic asset or one whose tick and step the
    scenario gives: five significant digits of price, a lot worth about a cent to ten cents."""
    magnitude = math.floor(math.log10(price))
    return max(0, 4 - magnitude), min(max(magnitude + 2, 0), 8)


def _bitget_derived_spot(price: float) -> BitgetSpot:
    price_places, qty_places = _bitget_places(price)
    return BitgetSpot(price_places, qty_places, D(10) ** 10, D(1), "derived")


def _bitget_derived_perp(price: float) -> BitgetPerp:
    price_places, qty_places = _bitget_places(price)
    max_qty = D(10) ** max(0, 7 - math.floor(math.log10(price)))
    min_qty = D(1).scaleb(-qty_places)
    return BitgetPerp(price_places, qty_places, min_qty, max_qty, max_qty / 10, 20, D(5), "derived")


def build_bitget_markets(scenario: Scenario, seed: int, listed_ms: int) -> list[Market]:
    """The scenario's instruments with Bitget's symbol configuration: price and quantity
    precisions as ccxt reads them, Bitget's minimum notional (1 USDT on spot, 5 on
    perpetuals). The scenario's per-asset overrides apply to both venues."""
    assets = scenario.asset_specs(seed)
    quote = scenario.markets.quote
    markets: list[Market] = []
    for asset, known in _listed(scenario, seed, MarketKind.SPOT, "bitget", BITGET_SPOT):
        spot = BITGET_SPOT[asset] if known else _bitget_derived_spot(assets[asset].price)
        tick, step = _places(spot.price_places, spot.qty_places)
        filters = (tick, step, step, spot.max_qty, spot.max_qty, spot.min_notional)
        rules = _rules(filters, scenario.markets.spot_overrides.get(asset), ())
        markets.append(Market(InstrumentId(MarketKind.SPOT, asset, quote), rules, listed_ms))
    for asset, known in _listed(scenario, seed, MarketKind.PERP, "bitget", BITGET_PERP):
        perp = BITGET_PERP[asset] if known else _bitget_derived_perp(assets[asset].price)
        override = scenario.markets.perp_overrides.get(asset)
        lever = perp.max_leverage
        max_leverage = (
            min(lever, override.max_leverage) if override and override.max_leverage else lever
        )
        tick, step = _places(perp.price_places, perp.qty_places)
        filters = (tick, step, perp.min_qty, perp.max_qty, perp.market_max, perp.min_notional)
        rules = _rules(filters, override, _tiers(asset, max_leverage))
        markets.append(Market(InstrumentId(MarketKind.PERP, asset, quote), rules, listed_ms))
    return markets


def path_spec(scenario: Scenario, seed: int) -> PathSpec:
    """The price-path definition of the scenario (raises ScenarioError if it is inconsistent)."""
    assets = scenario.asset_specs(seed)
    try:
        regimes = tuple(
            Regime(r.name, r.start, r.end, dict(r.drift), dict(r.vol_mult))
            for r in scenario.regimes
        )
        if scenario.markov is not None:
            start = scenario.clock.start
            history = (start - scenario.history_days * 86_400_000) // 86_400_000 * 86_400_000
            states = [
                RegimeState(s.name, s.mean_days, dict(s.drift), dict(s.vol_mult))
                for s in scenario.markov.states
            ]
            horizon = start + scenario.markov.horizon_days * 86_400_000
            regimes = markov_regimes(states, history, horizon, seed)
        return PathSpec(
            assets=tuple(
                AssetSpec(name, a.price, a.drift, a.vol, a.daily_volume)
                for name, a in assets.items()
            ),
            t0_ms=scenario.clock.start,
            step_ms=scenario.clock.step,
            history_days=scenario.history_days,
            correlation=scenario.correlation,
            regimes=regimes,
            replay=dict(scenario.replay),
        )
    except PathSpecError as exc:
        raise ScenarioError(f"scenario prices: {exc}") from None


def funding_model(scenario: Scenario) -> FundingModel:
    funding = scenario.funding
    return FundingModel(funding.interval, funding.rate, dict(funding.rates))


def derive_secret_material(seed: int, account: str, role: str) -> tuple[str, str]:
    """A deterministic (api key, secret) pair: 64 alphanumeric characters each, like Binance's.
    Derived from the seed, so only ever fit for a local simulator."""
    key = hashlib.sha256(f"sim-key:{seed}:{account}:{role}".encode()).hexdigest()
    secret = hashlib.sha256(f"sim-secret:{seed}:{account}:{role}".encode()).hexdigest()
    return key, secret


def derive_passphrase(seed: int, account: str, role: str) -> str:
    """A deterministic Bitget passphrase (16 letters and digits), derived from the seed."""
    return hashlib.sha256(f"sim-passphrase:{seed}:{account}:{role}".encode()).hexdigest()[:16]
