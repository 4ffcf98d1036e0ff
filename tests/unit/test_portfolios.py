"""Configs of several portfolios: `[[portfolios]]`, a directory of portfolio files, followers
of a model portfolio, keys per portfolio, and `--portfolio NAME` on every command."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.config import targets
from bot.core.errors import ConfigError, UsageError
from bot.portfolios import load_portfolio, load_portfolios

ROOT = Path(__file__).resolve().parents[2]
SENTINEL = "sentinel-SECRET-19f7a2"


def portfolio(
    name: str, *, extra: str = "", sleeves: bool = True, exchange: str = "binance"
) -> str:
    text = (
        f'[[portfolios]]\nportfolio = "{name}"\n{extra}\n'
        f'[portfolios.accounts.spot]\nexchange = "{exchange}"\nmarket = "spot"\n'
    )
    if sleeves:
        text += (
            '[[portfolios.sleeves]]\nname = "btc"\nkind = "spot"\naccount = "spot"\n'
            'asset = "BTC"\ntarget = 0.5\n'
        )
    return text


TOP = 'interval = "30s"\ndata_dir = "root"\n[risk]\nmax_order_notional = 1000\n\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_classic_config_is_one_portfolio_unchanged() -> None:
    loaded = load_portfolios(ROOT / "config" / "paper.toml", env={})
    assert loaded.names == ["paper"]
    assert loaded.configs[0].data_dir == Path("data")
    assert load_portfolio(ROOT / "config" / "paper.toml", name=None, env={}).portfolio == "paper"
    assert load_portfolio(ROOT / "config" / "paper.toml", name="paper", env={}).portfolio == "paper"


def test_each_portfolio_inherits_the_top_level_and_keeps_its_own_data(tmp_path: Path) -> None:
    path = write(tmp_path, TOP + portfolio("a") + portfolio("b", extra='interval = "10s"'))
    a, b = load_portfolios(path, env={}).configs
    assert (a.portfolio, b.portfolio) == ("a", "b")
    assert a.interval.total_seconds() == 30 and b.interval.total_seconds() == 10
    assert a.risk.max_order_notional == b.risk.max_order_notional == 1000
    assert (a.data_dir, b.data_dir) == (Path("root/a"), Path("root/b"))
    assert a.kill_switch_file == Path("root/a/HALT") != b.kill_switch_file
    only = load_portfolios(path, env={}, data_dir=tmp_path / "d", only="b").configs
    assert [c.portfolio for c in only] == ["b"] and only[0].data_dir == tmp_path / "d" / "b"


def test_a_follower_takes_the_model_targets_and_brings_its_own_accounts(tmp_path: Path) -> None:
    follower = portfolio("client", extra='follow = "model"', sleeves=False, exchange="bitget")
    path = write(tmp_path, TOP + portfolio("model") + follower)
    loaded = load_portfolios(path, env={})
    model, client = loaded.configs
    assert loaded.follows == {"client": "model"}
    assert targets(client) == targets(model)
    assert client.accounts["spot"].exchange == "bitget"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            TOP + portfolio("a") + portfolio("a"),
            "portfolios[1].portfolio: the name 'a' is used twice",
        ),
        (TOP + portfolio("a", extra='follow = "nobody"'), "follow: no portfolio named 'nobody'"),
        (
            TOP + portfolio("m") + portfolio("f", extra='follow = "m"'),
            "portfolios[1] (f): sleeves: a follower takes it from its model",
        ),
        (
            TOP + portfolio("a", extra="[portfolios.server]\nport = 1\n"),
            "portfolios[0] (a): server: set [server] once at the top level",
        ),
        (
            TOP + portfolio("a") + portfolio("b", extra="interval = 0"),
            "portfolios[1] (b): interval",
        ),
        ("portfolios = 3\n", "portfolios: write each portfolio as a [[portfolios]] table"),
    ],
)
def test_a_bad_set_of_portfolios_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = write(tmp_path, text)
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "command",
    [
        ["plan"],
        ["once"],
        ["halt"],
        ["resume"],
        ["reduce"],
        ["audit", "verify"],
        ["check-config"],
    ],
)
def test_an_unknown_portfolio_name_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = write(tmp_path, TOP + portfolio("a") + portfolio("b"))
    assert main([*command, "--config", str(path), "--portfolio", "zed"]) == 2
    err = capsys.readouterr().err
    assert "--portfolio zed: no such portfolio" in err and "(a, b)" in err, err
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", [["plan"], ["once"], ["halt"], ["audit", "verify"]])
def test_a_command_on_one_portfolio_asks_which_of_several(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = write(tmp_path, TOP + portfolio("a") + portfolio("b"))
    assert main([*command, "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "name one with --portfolio (a, b)" in err, err


def test_a_classic_config_refuses_another_portfolio_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = ROOT / "config" / "paper.toml"
    assert main(["plan", "--config", str(path), "--portfolio", "other"]) == 2
    assert "holds one portfolio, 'paper'" in capsys.readouterr().err


def test_keys_are_read_per_portfolio_and_never_shared(tmp_path: Path) -> None:
    path = write(tmp_path, TOP + portfolio("a-1") + portfolio("b"))
    env = {
        "REBALANCE_PORTFOLIOS__A_1__ACCOUNTS__SPOT__API_KEY": SENTINEL,
        "REBALANCE_PORTFOLIOS__A_1__ACCOUNTS__SPOT__SECRET": SENTINEL + "s",
    }
    a, b = load_portfolios(path, env=env).configs
    assert a.accounts["spot"].api_key is not None
    assert a.accounts["spot"].api_key.get_secret_value() == SENTINEL
    assert b.accounts["spot"].api_key is None
    with pytest.raises(ConfigError, match="reads keys per portfolio"):
        load_portfolios(path, env={"REBALANCE_ACCOUNTS__SPOT__API_KEY": SENTINEL})


def test_a_secret_in_a_portfolio_table_is_refused(tmp_path: Path) -> None:
    secret = f'accounts.x.api_key = "{SENTINEL}"'
    path = write(tmp_path, TOP + portfolio("a", extra=secret) + portfolio("b"))
    with pytest.raises(ConfigError) as caught:
        load_portfolios(path, env={})
    assert "portfolios[0] (a): accounts.x.api_key: a secret is never read" in str(caught.value)
    assert SENTINEL not in str(caught.value)


def test_a_directory_holds_one_portfolio_per_file(tmp_path: Path) -> None:
    folder = tmp_path / "portfolios"
    folder.mkdir()
    (folder / "shared.toml").write_text(TOP, encoding="utf-8")
    for name in ("b", "a"):
        table = portfolio(name).replace("[[portfolios]]\n", "").replace("portfolios.", "")
        (folder / f"{name}.toml").write_text(table, encoding="utf-8")
    loaded = load_portfolios(folder, env={})
    assert loaded.names == ["a", "b"]
    assert all(c.risk.max_order_notional == 1000 for c in loaded.configs)
    with pytest.raises(UsageError, match="name one with --portfolio"):
        load_portfolio(folder, name=None, env={})


def test_two_portfolios_never_share_an_exchange_account(tmp_path: Path) -> None:
    path = write(tmp_path, TOP + portfolio("a") + portfolio("b"))
    same = {
        f"REBALANCE_PORTFOLIOS__{name}__ACCOUNTS__SPOT__{field}": f"{SENTINEL}-{field}"
        for name in ("A", "B")
        for field in ("API_KEY", "SECRET")
    }
    with pytest.raises(ConfigError) as caught:
        load_portfolios(path, env=same)
    message = str(caught.value)
    assert message == (
        "b.accounts.spot is the same exchange account as a.accounts.spot: an account "
        "belongs to one portfolio"
    )
    other = dict(same, REBALANCE_PORTFOLIOS__B__ACCOUNTS__SPOT__API_KEY="another-key")
    assert load_portfolios(path, env=other).names == ["a", "b"]


def test_two_portfolios_never_share_a_simulator_account(tmp_path: Path) -> None:
    top = TOP + "[simulator]\nenabled = true\n\n"
    sim = "simulator = true\nsim_account = 'main'\n"
    text = top + portfolio("a") + portfolio("b")
    text = text.replace('market = "spot"\n', 'market = "spot"\n' + sim)
    with pytest.raises(ConfigError, match=r"b\.accounts\.spot is the same exchange account as a"):
        load_portfolios(write(tmp_path, text), env={})


def test_a_follower_follows_the_model_as_the_environment_sets_it(tmp_path: Path) -> None:
    follower = portfolio("client-a", extra='follow = "model"', sleeves=False, exchange="bitget")
    path = write(tmp_path, TOP + portfolio("model") + follower + portfolio("own"))
    env = {
        "REBALANCE_PORTFOLIOS__MODEL__TRIGGER__BAND": "0.1",
        "REBALANCE_PORTFOLIOS__MODEL__PLANNER__CASH_RESERVE": "0.02",
        "REBALANCE_PORTFOLIOS__MODEL__SLEEVES": (
            '[{"name": "eth", "kind": "spot", "account": "spot", "asset": "ETH", "target": 0.3}]'
        ),
        "REBALANCE_PORTFOLIOS__MODEL__INTERVAL": "5s",  # the model's own, not followed
    }
    model, client, own = load_portfolios(path, env=env).configs
    assert model.trigger.band == client.trigger.band == Decimal("0.1")
    assert model.planner.cash_reserve == client.planner.cash_reserve == Decimal("0.02")
    assert targets(client) == targets(model) and [s.asset for s in client.sleeves] == ["ETH"]
    assert (model.interval.total_seconds(), client.interval.total_seconds()) == (5, 30)
    assert own.trigger.band == Decimal("0.05")  # not a follower: the model's are not its own
    alone = load_portfolio(path, name="client-a", env=env)
    assert alone.trigger.band == Decimal("0.1") and targets(alone) == targets(model)


def test_a_follower_refuses_a_followed_setting_of_its_own_in_the_environment(
    tmp_path: Path,
) -> None:
    follower = portfolio("client-a", extra='follow = "model"', sleeves=False)
    path = write(tmp_path, TOP + portfolio("model", exchange="bitget") + follower)
    env = {"REBALANCE_PORTFOLIOS__CLIENT_A__TRIGGER__BAND": "0.1"}
    with pytest.raises(ConfigError) as caught:
        load_portfolios(path, env=env)
    assert str(caught.value) == (
        "REBALANCE_PORTFOLIOS__CLIENT_A__TRIGGER__BAND: client-a follows model and takes "
        "its trigger from it (set REBALANCE_PORTFOLIOS__MODEL__TRIGGER__BAND)"
    )


@pytest.mark.parametrize(
    ("variable", "hint"),
    [
        ("REBALANCE_PORTFOLIOS__MODLE__TRIGGER__BAND", " (did you mean MODEL?)"),
        ("REBALANCE_PORTFOLIOS__NOPE__ACCOUNTS__SPOT__API_KEY", ""),
        ("REBALANCE_PORTFOLIOS__0__ACCOUNTS__SPOT__SECRET_FILE", ""),
        ("rebalance_portfolios__client_b__interval", " (did you mean CLIENT_A?)"),
    ],
)
def test_a_variable_naming_no_portfolio_of_the_config_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], variable: str, hint: str
) -> None:
    follower = portfolio("client-a", extra='follow = "model"', sleeves=False, exchange="bitget")
    path = write(tmp_path, TOP + portfolio("model") + follower)
    env = {variable: SENTINEL, "REBALANCE_PORTFOLIOS__CLIENT_A__INTERVAL": "10s"}
    with pytest.raises(ConfigError) as caught:
        load_portfolios(path, env=env, only="model")
    assert str(caught.value) == (
        f"{variable}: names no portfolio of this config{hint}; its portfolios are "
        "model, client-a (REBALANCE_PORTFOLIOS__<NAME>__..., the name in capitals, - as _)"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(variable, SENTINEL)
        assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert variable in err and SENTINEL not in err and err.count("\n") == 1, err


def test_a_portfolio_variable_beside_a_config_of_one_portfolio_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = ROOT / "config" / "paper.toml"
    env = {"REBALANCE_PORTFOLIOS__PAPER__TRIGGER__BAND": "0.1"}
    with pytest.raises(ConfigError) as caught:
        load_portfolios(path, env=env)
    assert str(caught.value) == (
        f"REBALANCE_PORTFOLIOS__PAPER__TRIGGER__BAND: {path} holds one portfolio, 'paper', "
        "whose settings are read from REBALANCE_TRIGGER__BAND"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REBALANCE_PORTFOLIOS__NOPE__ACCOUNTS__SPOT__API_KEY", SENTINEL)
        assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "REBALANCE_PORTFOLIOS__NOPE__ACCOUNTS__SPOT__API_KEY: " in err, err
    assert "REBALANCE_ACCOUNTS__SPOT__API_KEY" in err and SENTINEL not in err
    assert err.count("\n") == 1
