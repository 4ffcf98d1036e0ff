"""API keys of the simulator: which account a key opens, what it may do, and request signing.

Each key belongs to one account (sub-accounts are simply several accounts) and carries
permissions: `read` for account and order queries, `trade` for placing and cancelling. A request
is verified the way its venue does it:
- Binance (`verify`): the key from `X-MBX-APIKEY`, a hex HMAC-SHA256 over the raw parameter
  string exactly as sent (query string followed by body), and a `timestamp` parameter that must
  lie within `recvWindow` of the server's wall clock;
- Bitget (`verify_bitget`): headers `ACCESS-KEY`, `ACCESS-SIGN`, `ACCESS-TIMESTAMP` and
  `ACCESS-PASSPHRASE`; the signature is base64(HMAC-SHA256(secret, timestamp + METHOD + path +
  ("?" + query | body))), the path starting at `/api/` and the query as the client signed it
  (not percent-encoded); the timestamp must lie within 30 seconds of the server's clock.
The secret and the passphrase live only inside `ApiKey` (hidden from `repr`) and in a prepared
HMAC object; they never appear in a reply or a log line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import SecretStr

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
FUTURE_TOLERANCE_MS = 1_000  # Binance accepts timestamps up to 1 s ahead of its clock
BITGET_TIMESTAMP_WINDOW_MS = 30_000  # Bitget: ACCESS-TIMESTAMP within 30 s of its clock
_KEY_FORMAT = re.compile(r"^[A-Za-z0-9]{16,128}$")


class Permission(StrEnum):
    READ = "read"
    TRADE = "trade"


class AuthFailure(StrEnum):
    MISSING_KEY = "missing_key"
    BAD_KEY_FORMAT = "bad_key_format"
    UNKNOWN_KEY = "unknown_key"
    WRONG_VENUE = "wrong_venue"
    MISSING_SIGNATURE = "missing_signature"
    BAD_SIGNATURE = "bad_signature"
    MISSING_TIMESTAMP = "missing_timestamp"
    BAD_RECV_WINDOW = "bad_recv_window"
    TIMESTAMP_AHEAD = "timestamp_ahead"
    TIMESTAMP_OUTSIDE_WINDOW = "timestamp_outside_window"
    PERMISSION_DENIED = "permission_denied"
    MISSING_PASSPHRASE = "missing_passphrase"  # noqa: S105 - a failure's name, not a secret
    BAD_PASSPHRASE = "bad_passphrase"  # noqa: S105 - a failure's name, not a secret


class AuthError(Exception):
    def __init__(self, failure: AuthFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One key: the account it opens, its venue and permissions, its secret and (Bitget) the
    passphrase chosen when the key was created."""

    api_key: str
    account: str
    venue: str
    permissions: frozenset[Permission]
    secret: SecretStr = field(repr=False)
    passphrase: SecretStr | None = field(default=None, repr=False)

    @property
    def read_only(self) -> bool:
        return Permission.TRADE not in self.permissions


class KeyStore:
    """Looks keys up and verifies signed requests."""

    def __init__(self, keys: Iterable[ApiKey] = ()) -> None:
        self._keys: dict[str, ApiKey] = {}
        self._macs: dict[str, hmac.HMAC] = {}
        for key in keys:
            self.add(key)

    def add(self, key: ApiKey) -> None:
        if not _KEY_FORMAT.match(key.api_key):
            raise ValueError(f"API key for {key.account!r} must be 16-128 letters or digits")
        if key.api_key in self._keys:
            raise ValueError(f"API key of {key.account!r} is already in use")
        self._keys[key.api_key] = key
        secret = key.secret.get_secret_value().encode()
        self._macs[key.api_key] = hmac.new(secret, digestmod=hashlib.sha256)

    def lookup(self, api_key: str) -> ApiKey | None:
        return self._keys.get(api_key)

    def keys_of(self, account: str) -> list[ApiKey]:
        return [k for k in self._keys.values() if k.account == account]

    def all_keys(self) -> list[ApiKey]:
        return list(self._keys.values())

    def identify(self, header: str | None, venue: str) -> ApiKey:
        """The key named by the request header (no signature check)."""
        if not header:
            raise AuthError(AuthFailure.MISSING_KEY)
        if not _KEY_FORMAT.match(header):
            raise AuthError(AuthFailure.BAD_KEY_FORMAT)
        key = self._keys.get(header)
        if key is None:
            raise AuthError(AuthFailure.UNKNOWN_KEY)
        if key.venue != venue:
            raise AuthError(AuthFailure.WRONG_VENUE)
        return key

    def verify(
        self,
        header: str | None,
        payload: str,
        params: Mapping[str, str],
        *,
        wall_ms: int,
        venue: str,
        need: Permission,
    ) -> ApiKey:
        """Authenticate a signed request; raises AuthError saying what is wrong.

        `payload` is the raw parameter string as received; the signature is the HMAC of
        everything before `&signature=`, so parameters are never re-encoded."""
        key = self.identify(header, venue)
        timestamp = params.get("timestamp")
        if not timestamp or not timestamp.isdigit():
            raise AuthError(AuthFailure.MISSING_TIMESTAMP)
        window_text = params.get("recvWindow")
        window = DEFAULT_RECV_WINDOW_MS
        if window_text is not None:
            if not window_text.isdigit() or not 0 < int(window_text) <= MAX_RECV_WINDOW_MS:
                raise AuthError(AuthFailure.BAD_RECV_WINDOW)
            window = int(window_text)
        sent_at = int(timestamp)
        if sent_at >= wall_ms + FUTURE_TOLERANCE_MS:
            raise AuthError(AuthFailure.TIMESTAMP_AHEAD)
        if wall_ms - sent_at > window:
            raise AuthError(AuthFailure.TIMESTAMP_OUTSIDE_WINDOW)
        signed, separator, signature = payload.rpartition("&signature=")
        if not separator or not signature:
            raise AuthError(AuthFailure.MISSING_SIGNATURE)
        mac = self._macs[key.api_key].copy()
        mac.update(signed.encode())
        if not hmac.compare_digest(mac.hexdigest(), signature.lower()):
            raise AuthError(AuthFailure.BAD_SIGNATURE)
        if need not in key.permissions:
            raise AuthError(AuthFailure.PERMISSION_DENIED)
        return key

    def verify_bitget(
        self,
        headers: Mapping[str, str],
        prehash_tail: str,
        *,
        wall_ms: int,
        venue: str,
        need: Permission,
    ) -> ApiKey:
        """Authenticate a Bitget-signed request; raises AuthError saying what is wrong.

        `prehash_tail` is METHOD + path (from `/api/`) + ("?" + query | body), exactly as the
        client signed it; the timestamp header is prepended here."""
        header = headers.get("ACCESS-KEY")
        if not header:
            raise AuthError(AuthFailure.MISSING_KEY)
        signature = headers.get("ACCESS-SIGN")
        if not signature:
            raise AuthError(AuthFailure.MISSING_SIGNATURE)
        timestamp = headers.get("ACCESS-TIMESTAMP")
        if not timestamp or not timestamp.isdigit():
            raise AuthError(AuthFailure.MISSING_TIMESTAMP)
        passphrase = headers.get("ACCESS-PASSPHRASE")
        if not passphrase:
            raise AuthError(AuthFailure.MISSING_PASSPHRASE)
        key = self.identify(header, venue)
        if abs(wall_ms - int(timestamp)) > BITGET_TIMESTAMP_WINDOW_MS:
            raise AuthError(AuthFailure.TIMESTAMP_OUTSIDE_WINDOW)
        expected = key.passphrase.get_secret_value() if key.passphrase is not None else ""
        if not hmac.compare_digest(expected.encode(), passphrase.encode()):
            raise AuthError(AuthFailure.BAD_PASSPHRASE)
        mac = self._macs[key.api_key].copy()
        mac.update((timestamp + prehash_tail).encode())
        if not hmac.compare_digest(base64.b64encode(mac.digest()), signature.encode()):
            raise AuthError(AuthFailure.BAD_SIGNATURE)
        if need not in key.permissions:
            raise AuthError(AuthFailure.PERMISSION_DENIED)
        return key


def sign(secret: str, payload: str) -> str:
    """The signature a client appends as `&signature=…` (for tests and benchmarks)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def sign_bitget(secret: str, timestamp: str, method: str, path: str, query_or_body: str) -> str:
    """Bitget's `ACCESS-SIGN` for a request (for tests and benchmarks): `query_or_body` is
    "?" + the query string for a GET, or the JSON body for a POST."""
    prehash = timestamp + method.upper() + path + query_or_body
    digest = hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()
