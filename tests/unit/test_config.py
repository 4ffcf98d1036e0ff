"""Configuration: TOML + environment, one-line errors naming the field, secrets only from env."""

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.config import (
    BotConfig,
    check_instruments,
    check_live_allowed,
    collateral_options,
    load_config,
    risk_limits,
    targets,
    to_sleeves,
    trigger_rule,
    wallet_pairs,
)
from bot.core.domain import Mode
from bot.core.errors import ConfigError
from bot.portfolios import load_portfolios

ROOT = Path(__file__).resolve().parents[2]
SENTINEL = "sentinel-SECRET-8c1f0e"

BASE = """
portfolio = "test"

[accounts.spot]
exchange = "binance"
market = "spot"

[accounts.usdm]
exchange = "binanceusdm"
market = "swap"

[[sleeves]]
name = "btc"
kind = "spot"
account = "spot"
asset = "BTC"
target = 0.6

[[sleeves]]
name = "hedge"
kind = "futures"
account = "usdm"
symbol = "BTC/USDT:USDT"
target = -0.15
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> BotConfig:
    return load_config(write(tmp_path, text), env=env or {})


def error_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, env)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_weights_are_exact_decimals(tmp_path: Path) -> None:
    config = load(tmp_path, BASE)
    assert targets(config) == {"btc": Decimal("0.6"), "hedge": Decimal("-0.15")}
    assert config.mode is Mode.DRY_RUN


INVALID = [
    (
        "target given in percent",
        BASE.replace("target = 0.6", "target = 60"),
        "sleeves[0] (btc).target: 60 is not a fraction of NAV (use 0.6 for 60 %)",
    ),
    (
        "spot sleeve short",
        BASE.replace("target = 0.6", "target = -0.1"),
        "sleeves[0] (btc): target -0.1: a spot sleeve cannot be short",
    ),
    (
        "spot targets over 1",
        BASE + '[[sleeves]]\nname = "eth"\nkind = "spot"\naccount = "spot"\n'
        'asset = "ETH"\ntarget = 0.5\n',
        "spot targets sum to 1.1 > 1: cash would be negative",
    ),
    (
        "unknown sleeve kind",
        BASE.replace('kind = "spot"', 'kind = "options"'),
        "sleeves[0] (btc).kind",
    ),
    (
        "duplicate instrument",
        BASE + '[[sleeves]]\nname = "btc2"\nkind = "spot"\naccount = "spot"\n'
        'asset = "BTC"\ntarget = 0.1\n',
        "BTC/USDT on spot is already in sleeve 'btc'",
    ),
    (
        "duplicate sleeve name",
        BASE.replace('name = "hedge"', 'name = "btc"'),
        "the name 'btc' is used twice",
    ),
    ("band zero", BASE + "[trigger]\nband = 0\n", "trigger.band: must be > 0 and < 1, got 0"),
    ("band negative", BASE + "[trigger]\nband = -0.05\n", "trigger.band: must be > 0"),
    (
        "live without keys",
        'mode = "live"\n' + BASE,
        "mode is live but accounts.spot has no api_key/secret",
    ),
    (
        "secret in the file",
        BASE.replace('market = "spot"', 'market = "spot"\napi_key = "x"'),
        "accounts.spot.api_key: a secret is never read from the config file: remove it and set "
        "REBALANCE_ACCOUNTS__SPOT__API_KEY in the environment",
    ),
    (
        "unknown key",
        BASE.replace('portfolio = "test"', 'portfolio = "test"\nintervall = "10s"'),
        "intervall: unknown setting (a typo?)",
    ),
    (
        "unknown account",
        BASE.replace('account = "usdm"', 'account = "futures"'),
        "no account named 'futures'",
    ),
    (
        "futures sleeve on a spot account",
        BASE.replace('account = "usdm"', 'account = "spot"'),
        "a futures sleeve needs a swap account, 'spot' is spot",
    ),
    (
        "basket weights",
        BASE.replace(
            'symbol = "BTC/USDT:USDT"',
            'instruments = [{symbol = "A/USDT:USDT",'
            ' weight = 0.5}, {symbol = "B/USDT:USDT", weight = 0.4}]',
        ),
        "instrument weights sum to 0.9, not 1",
    ),
    (
        "bad duration",
        BASE.replace('portfolio = "test"', 'portfolio = "test"\ninterval = "soon"'),
        "interval: 'soon' is not a duration",
    ),
    (
        "calendar without schedule",
        BASE + '[trigger]\nkind = "calendar"\n',
        "a calendar trigger needs exactly one of `interval` or `cron`",
    ),
    (
        "bad cron",
        BASE + '[trigger]\nkind = "hybrid"\ncron = "every day"\n',
        "is not a valid 5-field cron",
    ),
    (
        "usdm as spot",
        BASE.replace(
            'exchange = "binanceusdm"\nmarket = "swap"', 'exchange = "binanceusdm"\nmarket = "spot"'
        ),
        "binanceusdm trades USDⓈ-M perpetuals only",
    ),
    ("bad TOML", BASE + "[trigger\n", "not valid TOML"),
    (
        "cash as a sleeve",
        BASE.replace('asset = "BTC"', 'asset = "USDT"'),
        "USDT is cash, not a sleeve",
    ),
    (
        "negative risk limit",
        BASE + "[risk]\nmax_gross_exposure = -1\n",
        "max_gross_exposure must not be negative",
    ),
    ("bad portfolio name", BASE.replace('"test"', '"my portfolio"'), "portfolio: 'my portfolio'"),
    # Numbers no duration can hold (they overflowed inside timedelta) and values no one means.
    (
        "interval beyond any clock",
        'interval = "100000000000000000000d"\n' + BASE,
        "interval: '100000000000000000000d' is too long (at most 3650 days)",
    ),
    ("interval of 1e400 seconds", "interval = 1e400\n" + BASE, "interval: inf is not a finite"),
    ("interval nan", "interval = nan\n" + BASE, "interval: nan is not a finite duration"),
    ("interval zero", "interval = 0\n" + BASE, "interval: interval must be at least 1 second"),
    ("negative duration", "interval = -5\n" + BASE, "interval: -5: a duration cannot be negative"),
    (
        "cooldown beyond any clock",
        BASE + '[trigger]\ncooldown = "1000000000000w"\n',
        "trigger.cooldown: '1000000000000w' is too long",
    ),
    (
        "calendar interval zero",
        BASE + '[trigger]\nkind = "calendar"\ninterval = "0s"\n',
        "trigger.interval: must be longer than 0 seconds, got 0 s",
    ),
    (
        "leverage zero",
        BASE + "[risk]\nmax_leverage = 0\n",
        "risk.max_leverage: must be more than 0 and at most 125",
    ),
    (
        "leverage negative",
        BASE + "[risk]\nmax_leverage = -1\n",
        "risk.max_leverage: must be more than 0 and at most 125",
    ),
    (
        "leverage absurd",
        BASE + "[risk]\nmax_leverage = 1000\n",
        "risk.max_leverage: must be more than 0 and at most 125 (no exchange offers more; each "
        "symbol's own bracket is checked when trading), got 1000",
    ),
    (
        "negative cash reserve",
        BASE + "[planner]\ncash_reserve = -0.05\n",
        "planner.cash_reserve: must be a fraction of NAV from 0 up to (not including) 1, got -0.05",
    ),
    (
        "cash reserve of all NAV",
        BASE + "[planner]\ncash_reserve = 1\n",
        "planner.cash_reserve: must be a fraction of NAV",
    ),
    (
        "fill timeout zero",
        BASE + "[execution]\nfill_timeout = 0\n",
        "execution.fill_timeout: must be longer than 0 seconds, got 0 s",
    ),
    (
        "lookup window zero",
        BASE + '[execution]\nlookup_window = "0s"\n',
        "execution.lookup_window: must be longer than 0 seconds",
    ),
    (
        "hold on NOT_PLACED longer than its lookups",
        BASE + '[execution]\nnot_placed_hold = "2d"\n',
        "execution.not_placed_hold: must be at most 1 day, got 172800 s",
    ),
    (
        "negative hold on NOT_PLACED",
        BASE + "[execution]\nnot_placed_hold = -1\n",
        "execution.not_placed_hold: -1: a duration cannot be negative",
    ),
    (
        "poll interval zero",
        BASE + '[execution]\npoll_interval = "0ms"\n',
        "execution.poll_interval: must be longer than 0 seconds",
    ),
    (
        "limit timeout zero",
        BASE + "[execution]\nlimit_timeout = 0\n",
        "execution.limit_timeout: must be longer than 0 seconds",
    ),
    (
        "request timeout zero",
        BASE.replace('market = "spot"', 'market = "spot"\ntimeout = "0s"'),
        "accounts.spot.timeout: must be longer than 0 seconds",
    ),
    (
        "drawdown window zero",
        BASE + '[risk]\ndrawdown_window = "0h"\n',
        "risk.drawdown_window: must be longer than 0 seconds",
    ),
    (
        "negative paper fee",
        BASE + "[execution.paper]\nspot_fee = -0.001\n",
        "execution.paper.spot_fee: a cost cannot be negative, got -0.001",
    ),
    ("target nan", BASE.replace("target = 0.6", "target = nan"), "target: nan is not a finite"),
    ("negative minimum drift", BASE + "[trigger]\nmin_drift = -1\n", "trigger.min_drift: must be"),
    (
        "cash reserve limit of all NAV",
        BASE + "[risk]\nmin_cash_reserve = 2\n",
        "risk.min_cash_reserve: must be a fraction of NAV from 0 up to (not including) 1, got 2",
    ),
    ("drawdown over 100 %", BASE + "[risk]\nmax_drawdown = 20\n", "risk.max_drawdown: must be"),
    (
        "negative futures cap",
        BASE + '[strategy]\nkind = "risk-parity"\n[strategy.risk_parity]\nfutures_gross_cap = -1\n',
        "strategy.risk_parity.futures_gross_cap: must not be negative, got -1",
    ),
]

# Files that are not text, and environment values that cannot be read: (content, env).
NOT_TEXT = BASE.encode().replace(b'"test"', b'"t\xffst"')
GARBAGE = bytes(range(256)) * 3
UNREADABLE = [
    (
        "invalid UTF-8",
        NOT_TEXT,
        {},
        "not a text file in UTF-8 (the byte at offset 15 is not UTF-8)",
    ),
    (
        "binary garbage",
        GARBAGE,
        {},
        "not a text file in UTF-8 (the byte at offset 128 is not UTF-8)",
    ),
    ("ASCII garbage", GARBAGE[:128], {}, "not valid TOML"),
    (
        "notification URLs not JSON",
        BASE.encode(),
        {"REBALANCE_NOTIFICATIONS__URLS": "not-json"},
        "REBALANCE_NOTIFICATIONS__URLS: cannot be read (Expecting value at character 0); a list",
    ),
    (
        "accounts not JSON",
        BASE.encode(),
        {"REBALANCE_ACCOUNTS": "{spot"},
        "REBALANCE_ACCOUNTS: cannot be read",
    ),
]
CLI_CASES = [(kind, text.encode(), {}, expected) for kind, text, expected in INVALID] + UNREADABLE


@pytest.mark.parametrize(("kind", "text", "expected"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_config_is_one_line_naming_the_field(
    tmp_path: Path, kind: str, text: str, expected: str
) -> None:
    assert expected in error_of(tmp_path, text)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml", env={})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        BASE,
        {
            "REBALANCE_RISK__MAX_LEVERAGE": "2",
            "REBALANCE_INTERVAL": "15m",
            "REBALANCE_MODE": "live",
            "REBALANCE_ACCOUNTS__SPOT__API_KEY": "k1",
            "REBALANCE_ACCOUNTS__SPOT__SECRET": "s1",
            "REBALANCE_ACCOUNTS__USDM__API_KEY": "k2",
            "REBALANCE_ACCOUNTS__USDM__SECRET": "s2",
        },
    )
    assert risk_limits(config).max_leverage == Decimal("2")
    assert config.interval.total_seconds() == 900
    assert config.mode is Mode.LIVE
    assert config.accounts["spot"].exchange == "binance"  # the file's table is merged, not replaced


def test_secrets_come_from_files_named_by_env(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SENTINEL + "\n")
    config = load(
        tmp_path,
        BASE,
        {
            "REBALANCE_ACCOUNTS__SPOT__API_KEY": "key",
            "REBALANCE_ACCOUNTS__SPOT__SECRET_FILE": str(secret_file),
        },
    )
    secret = config.accounts["spot"].secret
    assert secret is not None and secret.get_secret_value() == SENTINEL


def test_unreadable_secret_file_names_the_variable(tmp_path: Path) -> None:
    message = error_of(
        tmp_path, BASE, {"REBALANCE_ACCOUNTS__SPOT__SECRET_FILE": str(tmp_path / "x")}
    )
    assert "REBALANCE_ACCOUNTS__SPOT__SECRET_FILE: cannot read" in message


def test_an_empty_secret_file_variable_says_so(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE, {"REBALANCE_ACCOUNTS__SPOT__SECRET_FILE": " "})
    assert "REBALANCE_ACCOUNTS__SPOT__SECRET_FILE is empty" in message


def test_a_secret_set_both_directly_and_by_file_is_refused_without_its_value(
    tmp_path: Path,
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-the-file\n")
    env = {
        "REBALANCE_ACCOUNTS__SPOT__SECRET": SENTINEL,
        "REBALANCE_ACCOUNTS__SPOT__SECRET_FILE": str(secret_file),
    }
    message = error_of(tmp_path, BASE, env)
    assert (
        "REBALANCE_ACCOUNTS__SPOT__SECRET and REBALANCE_ACCOUNTS__SPOT__SECRET_FILE are both set"
        in message
    )
    assert SENTINEL not in message and "from-the-file" not in message


def test_empty_credentials_of_a_live_config_are_named_as_missing(tmp_path: Path) -> None:
    env = {
        "REBALANCE_MODE": "live",
        "REBALANCE_ACCOUNTS__SPOT__API_KEY": "",
        "REBALANCE_ACCOUNTS__SPOT__SECRET": "",
        "REBALANCE_ACCOUNTS__USDM__API_KEY": "k",
        "REBALANCE_ACCOUNTS__USDM__SECRET": "s",
    }
    message = error_of(tmp_path, BASE, env)
    assert "accounts.spot has no api_key/secret" in message
    assert "REBALANCE_ACCOUNTS__SPOT__API_KEY, REBALANCE_ACCOUNTS__SPOT__SECRET" in message


def test_secret_never_appears_in_repr_dump_or_errors(tmp_path: Path) -> None:
    env = {
        "REBALANCE_ACCOUNTS__SPOT__API_KEY": SENTINEL,
        "REBALANCE_ACCOUNTS__SPOT__SECRET": SENTINEL,
        "REBALANCE_SERVER__TOKEN": SENTINEL,
    }
    config = load(tmp_path, BASE, env)
    outputs = [repr(config), str(config), config.model_dump_json(), repr(config.accounts["spot"])]
    broken = BASE.replace("target = 0.6", "target = 60")
    outputs.append(error_of(tmp_path, broken, env))
    assert all(SENTINEL not in text for text in outputs)


def test_live_needs_both_the_config_and_the_flag(tmp_path: Path) -> None:
    dry = load(tmp_path, BASE)
    assert check_live_allowed(dry, cli_live=False) is Mode.DRY_RUN
    with pytest.raises(ConfigError, match="--live was given"):
        check_live_allowed(dry, cli_live=True)
    env = {
        f"REBALANCE_ACCOUNTS__{a}__{f}": "x"
        for a in ("SPOT", "USDM")
        for f in ("API_KEY", "SECRET")
    }
    live = load(tmp_path, 'mode = "live"\n' + BASE, env)
    assert check_live_allowed(live, cli_live=False) is Mode.DRY_RUN
    assert check_live_allowed(live, cli_live=True) is Mode.LIVE


def test_instruments_are_checked_against_loaded_markets(tmp_path: Path) -> None:
    config = load(tmp_path, BASE)
    check_instruments(config, {"spot": {"BTC/USDT"}, "usdm": {"BTC/USDT:USDT"}})
    with pytest.raises(
        ConfigError, match=r"sleeves\[1\] \(hedge\): BTC/USDT:USDT is not a market on account usdm"
    ):
        check_instruments(config, {"spot": {"BTC/USDT"}, "usdm": set()})


def test_sleeve_bands_fall_back_to_the_trigger_band(tmp_path: Path) -> None:
    config = load(tmp_path, BASE.replace("target = -0.15", "target = -0.15\nrelative_band = 0.25"))
    btc, hedge = to_sleeves(config)
    assert btc.band.width(Decimal("0.6")) == Decimal("0.05")
    assert hedge.band.width(Decimal("-0.15")) == Decimal("0.0375")
    assert trigger_rule(config).cooldown.total_seconds() == 3600


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "config").glob("*.toml")))
def test_example_configs_are_valid(name: str) -> None:
    assert load_portfolios(ROOT / "config" / name, env={}).configs


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **(env or {})},
    )


def test_check_config_cli_accepts_the_paper_config() -> None:
    result = run_cli("check-config", "config/paper.toml")
    assert result.returncode == 0, result.stderr
    assert "bitcoin" in result.stdout and " 60.00% " in result.stdout


# In a process of its own: what an operator sees, whatever escapes (a traceback would show here).
SUBPROCESS_KINDS = {
    "target given in percent", "unknown sleeve kind", "interval beyond any clock",
    "interval of 1e400 seconds", "cooldown beyond any clock", "leverage zero", "leverage absurd",
    "negative cash reserve", "fill timeout zero", "invalid UTF-8", "binary garbage",
    "notification URLs not JSON",
}  # fmt: skip
SUBPROCESS_CASES = [case for case in CLI_CASES if case[0] in SUBPROCESS_KINDS]


@pytest.mark.parametrize(
    ("kind", "content", "env", "expected"), SUBPROCESS_CASES, ids=[c[0] for c in SUBPROCESS_CASES]
)
def test_check_config_cli_exits_2_with_one_line(
    tmp_path: Path, kind: str, content: bytes, env: dict[str, str], expected: str
) -> None:
    path = tmp_path / "bot.toml"
    path.write_bytes(content)
    result = run_cli("check-config", str(path), env=env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expected in result.stderr
    for value in env.values():
        assert value not in result.stderr  # an environment value may be a secret


def test_check_config_without_a_file_is_a_usage_error() -> None:
    result = run_cli("check-config")
    assert result.returncode == 2 and "needs a config file" in result.stderr


@pytest.mark.parametrize(
    ("kind", "content", "env", "expected"), CLI_CASES, ids=[c[0] for c in CLI_CASES]
)
def test_every_invalid_kind_exits_2_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    content: bytes,
    env: dict[str, str],
    expected: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "bot.toml"
    path.write_bytes(content)
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("rebalance-bot: invalid configuration: ")
    assert expected in err


PAIR = """
[collateral]
leverage = 2

[[collateral.venues]]
spot = "spot"
futures = "{futures}"
"""


def test_a_spot_and_a_futures_account_of_one_exchange_pair_as_wallets(tmp_path: Path) -> None:
    config = load(tmp_path, BASE + PAIR.format(futures="usdm"))
    (venue,) = wallet_pairs(config)
    assert (venue.exchange, venue.spot_account, venue.futures_account) == (
        "binance",
        "spot",
        "usdm",
    )
    assert collateral_options(config).leverage == Decimal(2)


def test_wallets_of_two_exchanges_are_refused_as_a_pair(tmp_path: Path) -> None:
    text = (
        BASE + '\n[accounts.bg]\nexchange = "bitget"\nmarket = "swap"\n' + PAIR.format(futures="bg")
    )
    assert "are not one exchange account (transfers never cross exchanges)" in error_of(
        tmp_path, text
    )
    assert "is not a swap account" in error_of(tmp_path, BASE + PAIR.format(futures="spot"))


def test_collateral_can_be_enabled_only_with_a_wallet_pair(tmp_path: Path) -> None:
    enabled = PAIR.format(futures="usdm").replace("[collateral]", "[collateral]\nenabled = true")
    assert load(tmp_path, BASE + enabled).collateral.enabled
    alone = "\n[collateral]\nenabled = true\n"
    assert "no [[collateral.venues]] pairs a spot and a futures account" in error_of(
        tmp_path, BASE + alone
    )


def test_leverage_and_margin_mode_belong_to_futures_accounts(tmp_path: Path) -> None:
    swap = 'market = "swap"\nleverage = 4\nmargin_mode = "isolated"'
    config = load(tmp_path, BASE.replace('market = "swap"', swap))
    assert (config.accounts["usdm"].leverage, config.accounts["usdm"].margin_mode) == (
        4,
        "isolated",
    )
    spot = 'market = "spot"\nleverage = 4'
    assert "leverage and margin_mode apply to swap (futures) accounts only" in error_of(
        tmp_path, BASE.replace('market = "spot"', spot)
    )
    assert "margin_mode" in error_of(
        tmp_path, BASE.replace('market = "swap"', 'market = "swap"\nmargin_mode = "portfolio"')
    )
    assert "accounts.usdm.leverage" in error_of(
        tmp_path, BASE.replace('market = "swap"', 'market = "swap"\nleverage = 126')
    )


def test_an_account_leverage_below_the_collateral_plans_is_refused(tmp_path: Path) -> None:
    low = BASE.replace('market = "swap"', 'market = "swap"\nleverage = 1')
    message = error_of(tmp_path, low + PAIR.format(futures="usdm"))
    assert "collateral.leverage 2 is more than accounts.usdm.leverage 1" in message
    high = BASE.replace('market = "swap"', 'market = "swap"\nleverage = 2')
    assert load(tmp_path, high + PAIR.format(futures="usdm")).accounts["usdm"].leverage == 2


def test_the_confirming_read_of_new_prices_waits_a_second_by_default_and_at_most_30(
    tmp_path: Path,
) -> None:
    assert load(tmp_path, BASE).risk.price_confirm_delay.total_seconds() == 1
    at_once = load(tmp_path, BASE + '[risk]\nprice_confirm_delay = "0s"\n')
    assert at_once.risk.price_confirm_delay.total_seconds() == 0
    message = error_of(tmp_path, BASE + '[risk]\nprice_confirm_delay = "2m"\n')
    assert "price_confirm_delay must be at most 30 s" in message
