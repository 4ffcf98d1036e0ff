"""Bad data from the exchange: the cycle is skipped or the instrument left out, with the reason
audited; no order is ever computed from it. The simulator's replies are corrupted on their way
through ccxt (after parsing), as a misbehaving exchange or a parser change would."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app.wiring import open_app
from bot.audit.writer import read_records
from bot.core.domain import Mode
from tests.integration.loop_support import load, write_config


def _corrupt(client: Any, method: str, change: Callable[[Any], None]) -> None:
    original = getattr(client, method)

    async def corrupted(*args: Any, **kwargs: Any) -> Any:
        reply = await original(*args, **kwargs)
        change(reply)
        return reply

    setattr(client, method, corrupted)


def _ticker(symbol: str, field: str, value: Any) -> Callable[[Any], None]:
    def change(tickers: Any) -> None:
        if symbol in tickers:
            tickers[symbol][field] = value
            if field == "last":
                tickers[symbol]["close"] = value

    return change


def _set_balance(asset: str, value: Any) -> Callable[[Any], None]:
    def change(balance: Any) -> None:
        balance["free"][asset] = value

    return change


def _position(field: str, value: Any) -> Callable[[Any], None]:
    def change(positions: Any) -> None:
        for row in positions:
            row[field] = value

    return change


CASES = [
    ("NaN price of a held asset", "spot", "fetch_tickers", _ticker("ETH/USDT", "last", math.nan)),
    ("zero price", "spot", "fetch_tickers", _ticker("ETH/USDT", "last", 0.0)),
    ("negative price", "spot", "fetch_tickers", _ticker("BTC/USDT", "last", -1.0)),
    ("missing price", "spot", "fetch_tickers", _ticker("ETH/USDT", "last", None)),
    ("negative balance", "spot", "fetch_balance", _set_balance("USDT", -5.0)),
    ("NaN balance", "spot", "fetch_balance", _set_balance("BTC", math.nan)),
    ("position without mark", "usdm", "fetch_positions", _position("markPrice", None)),
    ("position with NaN PnL", "usdm", "fetch_positions", _position("unrealizedPnl", math.nan)),
]


@pytest.mark.parametrize(("case", "account", "method", "change"), CASES, ids=[c[0] for c in CASES])
async def test_bad_data_skips_the_cycle_and_sends_nothing(
    tmp_path: Path, case: str, account: str, method: str, change: Callable[[Any], None]
) -> None:
    config = load(write_config(tmp_path, mode="live"))
    async with open_app(config, Mode.LIVE) as app:
        _corrupt(app.accounts[account].client, method, change)
        result = await app.cycle.run()
        assert result.outcome in ("skipped", "error"), (case, result.outcome, result.reason)
        assert result.plan is None or not result.plan.legs
        assert app.simulator.admin.orders() == []
    records = [r.record for r in read_records(tmp_path / "data" / "audit")]
    end = [r for r in records if r["event"] == "cycle_end"][-1]
    assert end["outcome"] == result.outcome and end["reason"]


async def test_a_vanished_futures_market_leaves_its_leg_out_with_the_reason(tmp_path: Path) -> None:
    config = load(write_config(tmp_path, mode="live"))
    async with open_app(config, Mode.LIVE) as app:
        # DOGE's ticker disappears: the DOGE position cannot be valued, so NAV is incomplete.
        _corrupt(
            app.accounts["usdm"].client, "fetch_tickers", lambda t: t.pop("DOGE/USDT:USDT", None)
        )
        result = await app.cycle.run()
        assert result.snapshot is not None
        assert any("DOGE/USDT:USDT" in issue for issue in result.snapshot.issues)
        traded = {o.instrument.base for o in app.simulator.admin.orders()}
        assert "DOGE" not in traded
        if result.plan is not None:
            assert any(d.key.symbol == "DOGE/USDT:USDT" for d in result.plan.dropped)
