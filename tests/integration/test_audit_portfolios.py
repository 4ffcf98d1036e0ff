"""Two portfolios in one data directory: each its own audit chain, under its own lock.

Both bots run at once against the simulator (dry-run), their cycles interleaved, as two
processes sharing a data directory would. Each chain must verify on its own and hold only its
portfolio's records; the audit commands find each portfolio's log, and ask which one when the
directory holds several.
"""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app.wiring import open_app, utc_now
from bot.audit.layout import open_portfolio_audit, portfolio_audit_dir
from bot.audit.writer import read_records, verify
from bot.cli.main import main
from bot.core.domain import Mode
from bot.core.errors import StateError
from bot.store.state import StateStore
from tests.integration.loop_support import SEED_SCENARIO, load, write_config

CYCLES = 20
VOLATILE = SEED_SCENARIO.replace("vol = 0.55", "vol = 1.6").replace("vol = 0.70", "vol = 1.8")
PORTFOLIOS = ("alpha", "beta")


def _config(tmp_path: Path, portfolio: str) -> Path:
    """A config of its own directory (and simulator) whose data_dir is the shared one."""
    where = tmp_path / portfolio
    where.mkdir()
    path = write_config(where, scenario=VOLATILE, trigger='band = 0.02\ncooldown = "0s"')
    text = path.read_text(encoding="utf-8")
    text = text.replace('portfolio = "itest"', f'portfolio = "{portfolio}"')
    text = text.replace(f'data_dir = "{where / "data"}"', f'data_dir = "{tmp_path / "data"}"')
    path.write_text(text, encoding="utf-8")
    return path


async def test_two_portfolios_in_one_data_dir_keep_two_chains_that_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = {name: _config(tmp_path, name) for name in PORTFOLIOS}
    data = tmp_path / "data"
    async with contextlib.AsyncExitStack() as stack:
        apps = [
            await stack.enter_async_context(open_app(load(paths[name]), Mode.DRY_RUN))
            for name in PORTFOLIOS
        ]
        # The portfolio's lock covers its audit log: no second writer while the bot runs.
        with pytest.raises(StateError, match="already run by another process"):
            StateStore.open(data, "alpha", apps[0].cycle.clock)
        outcomes: dict[str, list[str]] = {name: [] for name in PORTFOLIOS}
        for _ in range(CYCLES):
            for name, app in zip(PORTFOLIOS, apps, strict=True):
                app.simulator.admin.advance(timedelta(hours=6))
                result = await app.cycle.run()
                outcomes[name].append(result.outcome)
    for name in PORTFOLIOS:
        assert "traded" in outcomes[name]  # paper fills were written, not only quiet cycles
        directory = portfolio_audit_dir(data, name)
        count, problem = verify(directory)
        assert problem is None, problem
        records = [r.record for r in read_records(directory)]
        assert count == len(records) > CYCLES * 5
        assert {r["portfolio"] for r in records} == {name}
        assert sum(r["event"] == "cycle_start" for r in records) == CYCLES
        assert sum(r["event"] == "paper_fill" for r in records) > 0

    # The commands: one log per portfolio, chosen by the config or by --portfolio.
    root = data / "audit"
    capsys.readouterr()
    assert main(["audit", "verify", "--dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "holds the audit logs of 2 portfolios (alpha, beta)" in err and "--portfolio" in err
    for name in PORTFOLIOS:
        assert main(["audit", "verify", "--config", str(paths[name]), "--json"]) == 0
        body = json.loads(capsys.readouterr().out)
        assert body["ok"] and body["records"] == len(list(read_records(root / name)))
        assert main(["audit", "verify", "--dir", str(root), "--portfolio", name]) == 0
        assert "audit log intact" in capsys.readouterr().out
        assert main(["audit", "summary", "--config", str(paths[name]), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["total"]["cycles"] == CYCLES
        assert main(["audit", "tail", "-n", "1", "--dir", str(root / name), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["portfolio"] == name
    assert main(["audit", "show", "last", "--dir", str(root), "--portfolio", "gamma"]) == 2
    err = capsys.readouterr().err
    assert "no audit log of portfolio 'gamma' (there are logs of: alpha, beta)" in err


def test_the_audit_log_is_opened_only_under_its_portfolios_lock(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path, "alpha", utc_now)
    store.close()
    with pytest.raises(StateError, match="opened under its lock only"):
        open_portfolio_audit(store, utc_now)
    assert not (tmp_path / "audit").exists()
