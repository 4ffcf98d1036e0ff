"""`BotConfig`: the sections together, read from the environment (and `*_FILE` files) over
the TOML file, with the checks that span sections."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bot.config.fields import (
    ENV_PREFIX,
    NAME_PATTERN,
    PORTFOLIO_PATTERN,
    VALIDATION_ENV,
    VALIDATION_KEYS,
    Duration,
    exchange_family,
)
from bot.config.sections import (
    AccountConfig,
    CollateralConfig,
    ExecutionConfig,
    NotificationsConfig,
    PlannerConfig,
    RiskConfig,
    ServerConfig,
    SimulatorConfig,
    SleeveConfig,
    StrategyConfig,
    TriggerConfig,
)
from bot.core.domain import (
    ZERO,
    InstrumentKey,
    MarketType,
    Mode,
    SleeveKind,
)
from bot.core.errors import ConfigError


class _MappedEnvSource(EnvSettingsSource):
    """Environment variables from a given mapping, with `*_FILE` variables read from files."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = VALIDATION_ENV.get()
        expanded: dict[str, str | None] = {}
        named: dict[str, str] = {}  # each setting's variable, to name both of a pair
        for key, value in env.items():
            upper = key.upper()
            if not upper.startswith(ENV_PREFIX) or upper == f"{ENV_PREFIX}HALT":
                continue
            from_file = upper.endswith("_FILE")
            setting = key[: -len("_FILE")].lower() if from_file else key.lower()
            if setting in named:
                first, second = sorted((named[setting], key))
                raise ConfigError(f"{first} and {second} are both set: set one of them")
            named[setting] = key
            expanded[setting] = _read_secret_file(key, value) if from_file else value
        return expanded


def _read_secret_file(variable: str, path: str) -> str:
    if not path.strip():
        raise ConfigError(f"{variable} is empty: it should name the file that holds the value")
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
        if not PORTFOLIO_PATTERN.match(value):
            raise ValueError(f"{value!r}: use 1-64 letters, digits, _ or -")
        return value

    @field_validator("accounts")
    @classmethod
    def _account_names(cls, value: dict[str, AccountConfig]) -> dict[str, AccountConfig]:
        if not value:
            raise ValueError("at least one account is needed")
        for name in value:
            if not NAME_PATTERN.match(name):
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
        if self.mode is Mode.LIVE and VALIDATION_KEYS.get():
            for name, account in self.accounts.items():
                if not account.simulator and not account.has_credentials:
                    raise ValueError(f"mode is live but {missing_credentials(name, account)}")
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


def missing_credentials(name: str, account: AccountConfig) -> str:
    fields = ["api_key", "secret"] + (["password"] if account.exchange == "bitget" else [])
    missing = [f for f in fields if not getattr(account, f)]  # unset, or set to ""
    variables = ", ".join(f"{ENV_PREFIX}ACCOUNTS__{name.upper()}__{f.upper()}" for f in missing)
    return f"accounts.{name} has no {'/'.join(missing)} (set {variables} or *_FILE)"
