"""Which portfolios a config holds: one (the classic file), several (`[[portfolios]]`, or a
directory of portfolio files), and the followers of a model portfolio.

A file without `[[portfolios]]` is one portfolio, exactly as before. A file with it holds
several: its top-level settings are the defaults of every portfolio (interval, quote currency,
risk, ...), each `[[portfolios]]` table adds or overrides its own (a name, accounts, sleeves
or a strategy, limits). `[simulator]` and `[server]` belong to the process and are set only at
the top level. Each portfolio keeps its own data under `<data_dir>/<portfolio>` (state, audit
chain, trading state, kill switch file, single-writer lock) unless it names its own
`data_dir`. A directory is the same thing spread over files: `shared.toml` (optional) holds the
top level, every other `*.toml` one portfolio table.

A follower (`follow = "model"`) takes the model portfolio's targets: its sleeves, strategy,
trigger and planner come from the model's table and the model's variables
(`REBALANCE_PORTFOLIOS__<MODEL>__TRIGGER__...`), and the process computes the model's targets
once per recompute for every follower; each follower brings its own accounts (with the account
names the model's sleeves use) and trades them at its own NAV.

Secrets stay in the environment. In a file of several portfolios, an account's keys are read
from `REBALANCE_PORTFOLIOS__<NAME>__ACCOUNTS__<ACCOUNT>__API_KEY` (the portfolio's name in
capitals, `-` as `_`; `*_FILE` as usual): the plain `REBALANCE_ACCOUNTS__...` variables would
give every portfolio the same keys, so there they are an error, as is a variable naming no
portfolio of the config (a misspelt name nothing would read); beside a file of one portfolio,
which reads `REBALANCE_...`, every `REBALANCE_PORTFOLIOS__...` variable is. One exchange account (a
simulator account, or a key) belongs to one portfolio of the config.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config import ENV_PREFIX, BotConfig, exchange_family, read_toml, validate
from bot.core.errors import ConfigError, UsageError
from bot.core.symbols import closest

SHARED_FILE = "shared.toml"
PROCESS_SECTIONS = ("simulator", "server")  # one per process: top level only
FOLLOWED = ("sleeves", "strategy", "trigger", "planner", "cash_assets", "quote_currency")
_ACCOUNT_ENV = f"{ENV_PREFIX}ACCOUNTS__"
_PORTFOLIO_ENV = f"{ENV_PREFIX}PORTFOLIOS__"


@dataclass(frozen=True, slots=True)
class Portfolios:
    """The portfolios a config holds, in its order, and which follow a model."""

    configs: list[BotConfig]
    follows: dict[str, str] = field(default_factory=dict)  # follower -> model portfolio

    @property
    def names(self) -> list[str]:
        return [c.portfolio for c in self.configs]


def load_portfolios(
    path: Path,
    *,
    env: Mapping[str, str] | None = None,
    data_dir: Path | None = None,
    only: str | None = None,
    need_keys: bool = True,
) -> Portfolios:
    """Every portfolio of the config (or the one named `only`), validated; one line naming
    the portfolio and the field otherwise. `need_keys=False` (a command that never reaches an
    account: audit, backtest, download) loads a live config without its trading keys."""
    environment = dict(os.environ) if env is None else dict(env)
    shared, tables, config_dir = _read(path)
    if not tables:
        if only is not None and shared.get("portfolio") != only:
            raise UsageError(
                f"--portfolio {only}: {path} holds one portfolio, "
                f"{shared.get('portfolio', '(unnamed)')!r}"
            )
        _no_portfolio_variables(environment, path, shared.get("portfolio"))
        return Portfolios(
            [validate(shared, config_dir, environment, data_dir, need_keys=need_keys)]
        )
    names = _names(tables)
    if only is not None and only not in names:
        raise UsageError(f"--portfolio {only}: no such portfolio in {path} ({', '.join(names)})")
    unscoped = sorted(k for k in environment if k.upper().startswith(_ACCOUNT_ENV))
    if unscoped:
        raise ConfigError(
            f"{unscoped[0]}: a config of several portfolios reads keys per portfolio, from "
            f"{ENV_PREFIX}PORTFOLIOS__<NAME>__ACCOUNTS__..."
        )
    _no_stray_variables(environment, names)
    by_name = dict(zip(names, tables, strict=True))
    root = Path(shared.get("data_dir", "data")) if data_dir is None else data_dir
    configs = []
    follows: dict[str, str] = {}
    for index, (name, table) in enumerate(by_name.items()):
        if only is not None and name != only:
            continue
        where = f"portfolios[{index}] ({name}): "
        data = _portfolio_data(shared, table, by_name, where)
        data["data_dir"] = str(table.get("data_dir") or root / name)
        model = str(table["follow"]) if "follow" in table else None
        scoped = _scoped_env(environment, name, model)
        configs.append(validate(data, config_dir, scoped, where=where, need_keys=need_keys))
        if model is not None:
            follows[name] = model
    _one_owner_per_account(configs)
    return Portfolios(configs, follows)


def _no_stray_variables(environment: Mapping[str, str], names: list[str]) -> None:
    """A variable for a portfolio the config does not have (a misspelt name) would be read by
    none: refused, named (never its value, which may be a secret) with the names there are."""
    prefixes = [_env_prefix(name) for name in names]
    for key in sorted(environment):
        upper = key.upper()
        if not upper.startswith(_PORTFOLIO_ENV) or upper.startswith(tuple(prefixes)):
            continue
        given = upper[len(_PORTFOLIO_ENV) :].split("__", 1)[0]
        guess = closest(given, [p[len(_PORTFOLIO_ENV) : -2] for p in prefixes])
        hint = f" (did you mean {guess}?)" if guess else ""
        raise ConfigError(
            f"{key}: names no portfolio of this config{hint}; its portfolios are "
            f"{', '.join(names)} ({_PORTFOLIO_ENV}<NAME>__..., the name in capitals, - as _)"
        )


def _no_portfolio_variables(environment: Mapping[str, str], path: Path, name: object) -> None:
    """A config of one portfolio reads `REBALANCE_X`: a `REBALANCE_PORTFOLIOS__...` variable
    beside it would be read by nothing, so it is refused, naming the variable to set."""
    for key in sorted(environment):
        if key.upper().startswith(_PORTFOLIO_ENV):
            rest = key[len(_PORTFOLIO_ENV) :].split("__", 1)[-1]
            raise ConfigError(
                f"{key}: {path} holds one portfolio, {name or '(unnamed)'!r}, whose settings "
                f"are read from {ENV_PREFIX}{rest}"
            )


def _one_owner_per_account(configs: list[BotConfig]) -> None:
    """Two portfolios trading one exchange account would undo each other's trades: an
    account (a simulator account, or a key) belongs to one portfolio of the config."""
    owners: dict[tuple[str, str, str], str] = {}
    for config in configs:
        for name, account in config.accounts.items():
            if account.simulator:
                identity = f"simulator account {account.sim_account}"
            elif account.api_key is not None:
                identity = f"key {account.api_key.get_secret_value()}"
            else:
                continue  # no key yet (a rehearsal): nothing to compare
            key = (exchange_family(account.exchange), str(account.market), identity)
            where = f"{config.portfolio}.accounts.{name}"
            if key in owners:
                raise ConfigError(
                    f"{where} is the same exchange account as {owners[key]}: an account "
                    "belongs to one portfolio"
                )
            owners[key] = where


def load_portfolio(
    path: Path,
    *,
    name: str | None,
    env: Mapping[str, str] | None = None,
    data_dir: Path | None = None,
    need_keys: bool = True,
) -> BotConfig:
    """The one portfolio a command addresses: the file's only one, or the one `--portfolio`
    names (required when the file holds several)."""
    configs = load_portfolios(
        path, env=env, data_dir=data_dir, only=name, need_keys=need_keys
    ).configs
    if len(configs) > 1:
        names = ", ".join(c.portfolio for c in configs)
        raise UsageError(f"{path} holds several portfolios: name one with --portfolio ({names})")
    return configs[0]


def _read(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], Path]:
    """(top-level settings, portfolio tables, the directory relative paths start from)."""
    if path.is_dir():
        files = sorted(p for p in path.glob("*.toml") if p.name != SHARED_FILE)
        if not files:
            raise ConfigError(f"{path}: a directory of portfolios holds no *.toml file")
        shared_path = path / SHARED_FILE
        shared = read_toml(shared_path) if shared_path.is_file() else {}
        if "portfolios" in shared:
            raise ConfigError(f"{shared_path}: portfolios are the other files of {path}")
        return shared, [read_toml(p) for p in files], path
    data = read_toml(path)
    tables = data.pop("portfolios", None)
    if tables is None:
        return data, [], path.parent
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ConfigError("portfolios: write each portfolio as a [[portfolios]] table")
    return data, tables, path.parent


def _names(tables: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for index, table in enumerate(tables):
        name = table.get("portfolio")
        if not isinstance(name, str):
            raise ConfigError(f"portfolios[{index}].portfolio: required but missing")
        if name in names:
            raise ConfigError(f"portfolios[{index}].portfolio: the name {name!r} is used twice")
        names.append(name)
    return names


def _portfolio_data(
    shared: Mapping[str, Any],
    table: Mapping[str, Any],
    by_name: Mapping[str, Mapping[str, Any]],
    where: str,
) -> dict[str, Any]:
    """The top level, then the model's targets for a follower, then the portfolio's table."""
    for section in PROCESS_SECTIONS:
        if section in table:
            raise ConfigError(
                f"{where}{section}: set [{section}] once at the top level (one per process)"
            )
    data = _merge({k: v for k, v in shared.items() if k != "portfolio"}, {})
    own = dict(table)
    model_name = own.pop("follow", None)
    if model_name is not None:
        model = by_name.get(str(model_name))
        if model is None:
            raise ConfigError(f"{where}follow: no portfolio named {model_name!r}")
        if "follow" in model:
            raise ConfigError(f"{where}follow: {model_name!r} follows another portfolio itself")
        for key in FOLLOWED:
            if key in own:
                raise ConfigError(f"{where}{key}: a follower takes it from its model")
        data = _merge(data, {k: v for k, v in model.items() if k in FOLLOWED})
    return _merge(data, own)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; any other value (a list of sleeves, a number) replaces."""
    result = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = _merge(result[key], value)
        else:
            result[key] = value
    return result


def _env_prefix(name: str) -> str:
    """The start of a portfolio's own variables: `REBALANCE_PORTFOLIOS__<NAME>__`."""
    return f"{_PORTFOLIO_ENV}{name.upper().replace('-', '_')}__"


def _followed(rest: str) -> str | None:
    """The followed section a variable's remainder (`TRIGGER__BAND`) sets, if it sets one."""
    section = rest.upper().split("__", 1)[0].removesuffix("_FILE").lower()
    return section if section in FOLLOWED else None


def _scoped_env(
    environment: Mapping[str, str], name: str, model: str | None = None
) -> dict[str, str]:
    """The process's variables, with this portfolio's `REBALANCE_PORTFOLIOS__<NAME>__X` seen
    as `REBALANCE_X` and every other portfolio's left out; a follower sees its model's
    variables of what it follows (trigger, sleeves, ...) as its own, as it takes the model's
    table, and may not set those itself."""
    mine = _env_prefix(name)
    scoped = {k: v for k, v in environment.items() if not k.upper().startswith(_PORTFOLIO_ENV)}
    if model is not None:
        theirs = _env_prefix(model)
        for key, value in environment.items():
            if key.upper().startswith(theirs) and _followed(key[len(theirs) :]):
                scoped[ENV_PREFIX + key[len(theirs) :]] = value
    for key, value in environment.items():
        if not key.upper().startswith(mine):
            continue
        rest = key[len(mine) :]
        section = _followed(rest)
        if model is not None and section is not None:
            raise ConfigError(
                f"{key}: {name} follows {model} and takes its {section} from it "
                f"(set {_env_prefix(model)}{rest})"
            )
        scoped[ENV_PREFIX + rest] = value
    return scoped
