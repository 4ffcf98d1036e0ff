"""Configuration: a TOML file plus environment overrides, validated into one `BotConfig`.

The config is the operator's interface, so every mistake is reported as one line that names the
field and says what is wrong (`sleeves[2] (eth).target: 60 is not a fraction of NAV ...`).

Sources, strongest first: environment variables `REBALANCE_<FIELD>` with `__` between nested
names (`REBALANCE_RISK__MAX_LEVERAGE=2`, `REBALANCE_ACCOUNTS__SPOT__API_KEY=...`); files named
by `REBALANCE_..._FILE` variables (Docker secrets: the file's content is the value); the TOML
file. Secrets (API keys, secrets, passphrases, the server token, notification URLs) are only
read from the environment or `*_FILE` files: a secret written in the TOML file is an error.

The package: `fields` (shared names and field types), `sections` (one model a section),
`settings` (`BotConfig`), `load` (reading and reporting), `derive` (the core's values).
"""

from __future__ import annotations

from bot.config.derive import (
    check_instruments,
    collateral_options,
    instrument_keys,
    nav_targets,
    planner_options,
    risk_limits,
    targets,
    to_sleeves,
    trigger_rule,
    wallet_pairs,
)
from bot.config.fields import (
    ENV_PREFIX,
    EXCHANGES,
    MAX_LEVERAGE,
    NOT_PLACED_RECHECK,
    SECRET_FIELDS,
    exchange_family,
)
from bot.config.load import check_live_allowed, load_config, read_toml, validate
from bot.config.sections import (
    AccountConfig,
    CollateralConfig,
    ExecutionConfig,
    InstrumentWeight,
    NotificationsConfig,
    OverlayConfig,
    PaperConfig,
    PlannerConfig,
    RiskConfig,
    RiskParityConfig,
    ServerConfig,
    SimulatorConfig,
    SleeveConfig,
    StrategyConfig,
    TriggerConfig,
    WalletPairConfig,
)
from bot.config.settings import BotConfig

__all__ = [
    "ENV_PREFIX",
    "EXCHANGES",
    "MAX_LEVERAGE",
    "NOT_PLACED_RECHECK",
    "SECRET_FIELDS",
    "AccountConfig",
    "BotConfig",
    "CollateralConfig",
    "ExecutionConfig",
    "InstrumentWeight",
    "NotificationsConfig",
    "OverlayConfig",
    "PaperConfig",
    "PlannerConfig",
    "RiskConfig",
    "RiskParityConfig",
    "ServerConfig",
    "SimulatorConfig",
    "SleeveConfig",
    "StrategyConfig",
    "TriggerConfig",
    "WalletPairConfig",
    "check_instruments",
    "check_live_allowed",
    "collateral_options",
    "exchange_family",
    "instrument_keys",
    "load_config",
    "nav_targets",
    "planner_options",
    "read_toml",
    "risk_limits",
    "targets",
    "to_sleeves",
    "trigger_rule",
    "validate",
    "wallet_pairs",
]
