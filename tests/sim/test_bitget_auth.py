"""Bitget request signing as the simulator checks it: base64 HMAC-SHA256 over timestamp + METHOD +
path (+ "?" + query | body), plus the key's passphrase and a 30-second timestamp window."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from rebalance_sim.auth import (
    ApiKey,
    AuthError,
    AuthFailure,
    KeyStore,
    Permission,
    sign_bitget,
)

SECRET = "s3cr3t" * 8
KEY = ApiKey(
    "a1b2c3d4e5f6a7b8c9d0",
    "acct",
    "bitget",
    frozenset({Permission.READ, Permission.TRADE}),
    SecretStr(SECRET),
    SecretStr("phrase123"),
)
NOW = 1_717_372_800_000
PATH = "/api/v2/spot/trade/orderInfo"
QUERY = "?clientOid=rb_1&symbol=BTCUSDT"


def headers(timestamp: int = NOW, **changes: str) -> dict[str, str]:
    values = {
        "ACCESS-KEY": KEY.api_key,
        "ACCESS-SIGN": sign_bitget(SECRET, str(timestamp), "GET", PATH, QUERY),
        "ACCESS-TIMESTAMP": str(timestamp),
        "ACCESS-PASSPHRASE": "phrase123",
    }
    values.update(changes)
    return values


def verify(sent: dict[str, str], tail: str = "GET" + PATH + QUERY, wall: int = NOW) -> ApiKey:
    return KeyStore([KEY]).verify_bitget(
        sent, tail, wall_ms=wall, venue="bitget", need=Permission.TRADE
    )


def test_a_correctly_signed_request_opens_its_account() -> None:
    assert verify(headers()).account == "acct"


def test_a_post_signs_the_json_body() -> None:
    body = '{"symbol":"BTCUSDT","side":"buy"}'
    path = "/api/v2/spot/trade/place-order"
    sent = headers(**{"ACCESS-SIGN": sign_bitget(SECRET, str(NOW), "POST", path, body)})
    assert verify(sent, "POST" + path + body).account == "acct"


@pytest.mark.parametrize(
    ("changes", "failure"),
    [
        ({"ACCESS-KEY": ""}, AuthFailure.MISSING_KEY),
        ({"ACCESS-KEY": "f" * 20}, AuthFailure.UNKNOWN_KEY),
        ({"ACCESS-SIGN": ""}, AuthFailure.MISSING_SIGNATURE),
        ({"ACCESS-SIGN": "AAAA"}, AuthFailure.BAD_SIGNATURE),
        ({"ACCESS-TIMESTAMP": "soon"}, AuthFailure.MISSING_TIMESTAMP),
        ({"ACCESS-PASSPHRASE": ""}, AuthFailure.MISSING_PASSPHRASE),
        ({"ACCESS-PASSPHRASE": "phrase124"}, AuthFailure.BAD_PASSPHRASE),
    ],
)
def test_each_defect_is_named(changes: dict[str, str], failure: AuthFailure) -> None:
    with pytest.raises(AuthError) as refused:
        verify(headers(**changes))
    assert refused.value.failure is failure


def test_the_signature_covers_the_query() -> None:
    with pytest.raises(AuthError) as refused:
        verify(headers(), "GET" + PATH + "?clientOid=rb_2&symbol=BTCUSDT")
    assert refused.value.failure is AuthFailure.BAD_SIGNATURE


@pytest.mark.parametrize("offset", [-30_001, 30_001])
def test_a_timestamp_more_than_30_seconds_off_is_refused(offset: int) -> None:
    with pytest.raises(AuthError) as refused:
        verify(headers(), wall=NOW + offset)
    assert refused.value.failure is AuthFailure.TIMESTAMP_OUTSIDE_WINDOW
    assert verify(headers(), wall=NOW + offset // 2).account == "acct"


def test_a_read_only_key_may_read_but_not_trade() -> None:
    read_only = ApiKey(
        "ffeeddccbbaa99887766",
        "acct",
        "bitget",
        frozenset({Permission.READ}),
        SecretStr(SECRET),
        SecretStr("phrase123"),
    )
    store = KeyStore([read_only])
    sent = headers(**{"ACCESS-KEY": read_only.api_key})
    tail = "GET" + PATH + QUERY
    assert store.verify_bitget(sent, tail, wall_ms=NOW, venue="bitget", need=Permission.READ)
    with pytest.raises(AuthError) as refused:
        store.verify_bitget(sent, tail, wall_ms=NOW, venue="bitget", need=Permission.TRADE)
    assert refused.value.failure is AuthFailure.PERMISSION_DENIED


def test_the_secret_and_passphrase_stay_out_of_repr() -> None:
    assert SECRET not in repr(KEY)
    assert "phrase123" not in repr(KEY)
