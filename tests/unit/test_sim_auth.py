"""Request signing and key permissions, as Binance checks them."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from rebalance_sim.auth import ApiKey, AuthError, AuthFailure, KeyStore, Permission, sign

SECRET = "s3cr3t" * 8
NOW = 1_700_000_000_000
READ = frozenset({Permission.READ})
TRADE = frozenset({Permission.READ, Permission.TRADE})


@pytest.fixture
def keys() -> KeyStore:
    return KeyStore(
        [
            ApiKey("K" * 64, "main", "binance", TRADE, SecretStr(SECRET)),
            ApiKey("R" * 64, "main", "binance", READ, SecretStr(SECRET + "r")),
            ApiKey("B" * 64, "other", "bitget", TRADE, SecretStr(SECRET)),
        ]
    )


def signed(query: str, secret: str = SECRET) -> tuple[str, dict[str, str]]:
    payload = f"{query}&signature={sign(secret, query)}"
    params = dict(pair.split("=", 1) for pair in payload.split("&"))
    return payload, params


def verify(
    keys: KeyStore,
    payload: str,
    params: dict[str, str],
    *,
    header: str | None = "K" * 64,
    need: Permission = Permission.READ,
    wall_ms: int = NOW,
) -> ApiKey:
    return keys.verify(header, payload, params, wall_ms=wall_ms, venue="binance", need=need)


def failure(call: object) -> AuthFailure:
    with pytest.raises(AuthError) as err:
        call()  # type: ignore[operator]
    return err.value.failure


def test_a_correctly_signed_request_opens_its_account(keys: KeyStore) -> None:
    payload, params = signed(f"timestamp={NOW}&symbol=BTCUSDT&recvWindow=10000")
    assert verify(keys, payload, params).account == "main"


def test_the_signature_covers_the_raw_string_as_sent(keys: KeyStore) -> None:
    # Percent-encoding is part of what was signed: the server must not re-encode.
    payload, params = signed(f"timestamp={NOW}&symbols=%5B%22BTCUSDT%22%5D")
    assert verify(keys, payload, params).account == "main"
    tampered = payload.replace("BTCUSDT", "ETHUSDT")
    assert failure(lambda: verify(keys, tampered, params)) is AuthFailure.BAD_SIGNATURE


def test_a_wrong_secret_is_a_bad_signature(keys: KeyStore) -> None:
    payload, params = signed(f"timestamp={NOW}", secret="not-the-secret")
    assert failure(lambda: verify(keys, payload, params)) is AuthFailure.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, AuthFailure.MISSING_KEY),
        ("short", AuthFailure.BAD_KEY_FORMAT),
        ("Z" * 64, AuthFailure.UNKNOWN_KEY),
        ("B" * 64, AuthFailure.WRONG_VENUE),
    ],
)
def test_key_problems_are_told_apart(
    keys: KeyStore, header: str | None, expected: AuthFailure
) -> None:
    payload, params = signed(f"timestamp={NOW}")
    assert failure(lambda: verify(keys, payload, params, header=header)) is expected


@pytest.mark.parametrize(
    ("sent_at", "window", "expected"),
    [
        (NOW + 999, "5000", None),
        (NOW + 1000, "5000", AuthFailure.TIMESTAMP_AHEAD),
        (NOW - 5000, "5000", None),
        (NOW - 5001, "5000", AuthFailure.TIMESTAMP_OUTSIDE_WINDOW),
        (NOW - 5001, None, AuthFailure.TIMESTAMP_OUTSIDE_WINDOW),
        (NOW - 59_000, "60000", None),
        (NOW, "60001", AuthFailure.BAD_RECV_WINDOW),
    ],
)
def test_timestamps_must_fall_inside_the_recv_window(
    keys: KeyStore, sent_at: int, window: str | None, expected: AuthFailure | None
) -> None:
    query = f"timestamp={sent_at}" + (f"&recvWindow={window}" if window else "")
    payload, params = signed(query)
    if expected is None:
        assert verify(keys, payload, params).account == "main"
    else:
        assert failure(lambda: verify(keys, payload, params)) is expected


def test_a_request_without_timestamp_or_signature_is_refused(keys: KeyStore) -> None:
    assert failure(lambda: verify(keys, "a=1", {"a": "1"})) is AuthFailure.MISSING_TIMESTAMP
    query = f"timestamp={NOW}"
    assert failure(lambda: verify(keys, query, {"timestamp": str(NOW)})) is (
        AuthFailure.MISSING_SIGNATURE
    )


def test_a_read_only_key_may_read_but_not_trade(keys: KeyStore) -> None:
    payload, params = signed(f"timestamp={NOW}", secret=SECRET + "r")
    assert verify(keys, payload, params, header="R" * 64).read_only
    denied = failure(lambda: verify(keys, payload, params, header="R" * 64, need=Permission.TRADE))
    assert denied is AuthFailure.PERMISSION_DENIED


def test_the_secret_is_not_in_the_keys_repr(keys: KeyStore) -> None:
    key = keys.keys_of("main")[0]
    assert SECRET not in repr(key)
    assert SECRET not in str(keys.all_keys())


def test_duplicate_or_malformed_keys_are_refused(keys: KeyStore) -> None:
    with pytest.raises(ValueError, match="already in use"):
        keys.add(ApiKey("K" * 64, "x", "binance", READ, SecretStr("y")))
    with pytest.raises(ValueError, match="letters or digits"):
        keys.add(ApiKey("bad key!", "x", "binance", READ, SecretStr("y")))
