"""Loading a config: the TOML file read, secrets refused in it, the environment applied,
and every mistake reported as one line that names the field."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from json import JSONDecodeError
from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)
from pydantic_settings import (
    SettingsError,
)

from bot.config.fields import (
    ENV_PREFIX,
    SECRET_FIELDS,
    VALIDATION_ENV,
    VALIDATION_KEYS,
    VALIDATION_QUOTE,
)
from bot.config.settings import BotConfig, missing_credentials
from bot.core.domain import (
    Mode,
)
from bot.core.errors import ConfigError
from bot.logs import register_secrets


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
    need_keys: bool = True,
) -> BotConfig:
    """One portfolio's settings (from a file, or one of several in it) validated with the
    environment's overrides; `where` prefixes each problem (`portfolios[2] (b)`). Without
    `need_keys` (a command that never reaches an account) a live config loads without its
    trading keys."""
    secrets = _secrets_in_file(data)
    if secrets:
        raise ConfigError(_problems([f"{where}{line}" for line in secrets]))
    token = VALIDATION_ENV.set(environment)
    quote = data.get("quote_currency")
    quote_token = VALIDATION_QUOTE.set(quote if isinstance(quote, str) else "USDT")
    keys_token = VALIDATION_KEYS.set(need_keys)
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
        VALIDATION_ENV.reset(token)
        VALIDATION_QUOTE.reset(quote_token)
        VALIDATION_KEYS.reset(keys_token)
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
            raise ConfigError(f"cannot trade live: {missing_credentials(name, account)}")
    return Mode.LIVE


# -- conversions to the core's values ------------------------------------------------------
