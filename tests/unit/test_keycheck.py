"""Judging an API key's permissions against the config: pure, property-tested."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app.keycheck import KeyNeeds, check_keys, judge_key
from bot.config import AccountConfig
from bot.core.domain import MarketType
from bot.core.errors import ExchangeUnavailable
from bot.exchange.permissions import (
    KeyInfoUnavailable,
    KeyPermissions,
    KeyUnreadable,
    binance_permissions,
    bitget_permissions,
)

needs = st.builds(KeyNeeds, st.booleans(), st.booleans(), st.booleans())
granted = st.builds(KeyPermissions, st.booleans(), st.booleans(), st.booleans(), st.booleans())


@given(needs, granted, st.booleans())
def test_a_key_is_refused_exactly_when_it_lacks_a_need_or_may_withdraw_unallowed(
    need: KeyNeeds, key: KeyPermissions, allow: bool
) -> None:
    verdict = judge_key("a", need, key, allow_withdrawals=allow)
    lacks = (
        (need.spot_trading and not key.spot_trading)
        or (need.futures_trading and not key.futures_trading)
        or (need.universal_transfer and not key.universal_transfer)
    )
    assert (verdict.refusal is not None) == (lacks or (key.withdrawals and not allow))
    assert (verdict.warning is not None) == (verdict.refusal is None and key.withdrawals)
    for text in (verdict.refusal, verdict.warning):
        assert text is None or (text.startswith("accounts.a: ") and "\n" not in text)


def test_the_refusal_names_everything_missing_in_one_line() -> None:
    verdict = judge_key(
        "usdm",
        KeyNeeds(spot_trading=False, futures_trading=True, universal_transfer=True),
        KeyPermissions(
            spot_trading=True, futures_trading=False, universal_transfer=False, withdrawals=True
        ),
        allow_withdrawals=False,
    )
    assert verdict.refusal == (
        "accounts.usdm: the API key lacks futures trading and universal transfer permission; "
        "the API key can withdraw funds, which a rebalancer never needs: create a key without "
        "withdrawals (or, at your own risk, set allow_withdrawal_permission = true)"
    )


def test_binance_restrictions_are_read_flag_by_flag() -> None:
    reply = {
        "ipRestrict": False,
        "createTime": 1698645219000,
        "enableReading": True,
        "enableSpotAndMarginTrading": True,
        "enableFutures": False,
        "permitsUniversalTransfer": True,
        "enableWithdrawals": "true",  # not the boolean true: not granted
        "enableInternalTransfer": False,
        "enableMargin": False,
        "enableVanillaOptions": False,
    }
    assert binance_permissions(reply) == KeyPermissions(
        spot_trading=True, futures_trading=False, universal_transfer=True, withdrawals=False
    )


def test_bitget_authorities_by_code_and_legacy_trade() -> None:
    codes = {"data": {"authorities": ["stor", "coor", "stow", "wwow"]}}
    assert bitget_permissions(codes) == KeyPermissions(
        spot_trading=True, futures_trading=False, universal_transfer=False, withdrawals=True
    )
    legacy = {"data": {"authorities": ["trade", "readonly"]}}
    assert bitget_permissions(legacy) == KeyPermissions(
        spot_trading=True, futures_trading=True, universal_transfer=True, withdrawals=False
    )


class _Client:
    apiKey = "k"


class _Account:
    """Stands for an ExchangeAccount whose key information read ends as given."""

    def __init__(self, exchange_id: str, outcome: BaseException) -> None:
        self.exchange_id = exchange_id
        self.client = _Client()
        self.outcome = outcome


def _sandbox_config(sandbox: bool) -> AccountConfig:
    return AccountConfig(exchange="binance", market=MarketType.SPOT, sandbox=sandbox)


async def test_an_unanswered_key_read_stops_a_real_account_and_only_warns_on_a_demo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def read(account: _Account) -> KeyPermissions:
        raise account.outcome

    monkeypatch.setattr("bot.app.keycheck.read_key_permissions", read)
    outage = KeyInfoUnavailable("ExchangeNotAvailable: binance GET … 503")
    accounts: Any = {"spot": _Account("binance", outage)}
    with pytest.raises(ExchangeUnavailable, match="permissions can be read"):
        await check_keys({"spot": _sandbox_config(False)}, accounts)
    # A demo environment's key endpoint answers 404, which ccxt files as an outage too.
    await check_keys({"spot": _sandbox_config(True)}, accounts)
    not_served: Any = {"spot": _Account("binance", KeyUnreadable("not served"))}
    await check_keys({"spot": _sandbox_config(False)}, not_served)
