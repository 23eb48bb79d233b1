"""EnOS token authentication: the token service and request signature checks (no web framework).

A service account gets an access token from `get_token` by proving it knows its appSecret
(`encryption`), then signs every API call with token, query, body, timestamp and appSecret
(`streamcalc.signing`). The catalog keeps only the SHA-256 of each token; the plaintext of
the current token per appKey lives in this process only, so EnOS's "same token while
unexpired" holds until a restart, after which a new token is issued. Replay memory is also
in process and bounded by the timestamp window: a request older than the window fails the
window check anyway, so it need not be remembered longer. Nothing here logs a secret, a
token or a signature.
"""

from __future__ import annotations

import heapq
import hmac
import logging
import secrets
import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

from streamcalc.catalog.base import Account, Catalog, TokenGrant
from streamcalc.clock import SYSTEM_CLOCK, Clock
from streamcalc.errors import StreamcalcError
from streamcalc.signing import sha256_hex, sign, token_request_encryption

# token service codes (EnOS apim-token-service)
REPLAYED_REQUEST = 1001
APP_KEY_NOT_FOUND = 1002
ENCRYPTION_INVALID = 1003
INVALID_PARAMETER = 1004
PARAMETER_EMPTY = 1202
TOKEN_EXPIRED = 1203
REFRESH_FAILED = 1204
# API call verification (gateway-level "Invalid authentication credentials")
UNAUTHORIZED = 401

DEFAULT_TOKEN_TTL_S = 7200
DEFAULT_WINDOW_S = 300
_MIN_REUSE_MS = 1000  # a cached token with less left than this is replaced, never answered with expire 0

_log = logging.getLogger(__name__)
K = TypeVar("K")


class AuthError(StreamcalcError):
    """An authentication failure with its EnOS code (1001-1204 token service, 401 API calls)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


@dataclass(frozen=True)
class Principal:
    """Who made a verified call: the service account and the org it acts for."""

    org_id: str
    app_key: str


class _ReplayGuard(Generic[K]):
    """Keys seen until their deadline (request timestamp + window); not thread-safe."""

    def __init__(self) -> None:
        self._deadlines: dict[K, int] = {}
        self._heap: list[tuple[int, K]] = []

    def __len__(self) -> int:
        return len(self._deadlines)

    def check_and_add(self, key: K, deadline_ms: int, now_ms: int) -> bool:
        """True if `key` is new (and now remembered), False if it is a replay."""
        while self._heap and self._heap[0][0] < now_ms:
            _, old = heapq.heappop(self._heap)
            self._deadlines.pop(old, None)
        if key in self._deadlines:
            return False
        self._deadlines[key] = deadline_ms
        heapq.heappush(self._heap, (deadline_ms, key))
        return True


class Authenticator:
    def __init__(
        self,
        catalog: Catalog,
        clock: Clock = SYSTEM_CLOCK,
        token_ttl_s: int = DEFAULT_TOKEN_TTL_S,
        window_s: int = DEFAULT_WINDOW_S,
    ) -> None:
        if token_ttl_s <= 0 or window_s <= 0:
            raise ValueError("token_ttl_s and window_s must be > 0")
        self._catalog = catalog
        self._clock = clock
        self._ttl_ms = token_ttl_s * 1000
        self._window_ms = window_s * 1000
        self._lock = threading.Lock()
        self._issued: dict[str, tuple[str, int]] = {}  # appKey -> (token, expires_ms)
        self._token_requests: _ReplayGuard[tuple[str, str]] = _ReplayGuard()
        self._calls: _ReplayGuard[tuple[str, str]] = _ReplayGuard()

    # token service

    def get_token(self, app_key: str, encryption: str, timestamp: int | str | None) -> tuple[str, int]:
        """(accessToken, seconds until it expires); the current token while it is unexpired."""
        self._check_token_request(app_key, encryption, timestamp)
        now = self._clock.wall_ms()
        with self._lock:
            current = self._issued.get(app_key)
            if current is not None and current[1] - now >= _MIN_REUSE_MS and self._still_saved(current[0]):
                return current[0], (current[1] - now) // 1000
            return self._issue(app_key, now)

    def refresh_token(
        self, app_key: str, encryption: str, timestamp: int | str | None, access_token: str
    ) -> tuple[str, int]:
        """A new token for `app_key` in exchange for a valid one of the same account."""
        if not access_token:
            raise AuthError(PARAMETER_EMPTY, "parameter empty: accessToken")
        self._check_token_request(app_key, encryption, timestamp)
        grant = self._catalog.token(sha256_hex(access_token.encode()))
        if grant is None or grant.app_key != app_key:
            raise self._reject(
                REFRESH_FAILED, "refresh failed: the access token is not one of this appKey", app_key
            )
        now = self._clock.wall_ms()
        if grant.expires_ms <= now:
            raise self._reject(TOKEN_EXPIRED, "access token expired", app_key)
        with self._lock:
            return self._issue(app_key, now)

    # API calls

    def verify(
        self,
        access_token: str,
        timestamp: int | str,
        signature: str,
        query: list[tuple[str, str]],
        body: bytes,
    ) -> Principal:
        """The caller of a signed request (apim-accesstoken, apim-timestamp, apim-signature headers).

        `timestamp` is hashed exactly as given (the header text); `query` holds the decoded
        query parameters and `body` the raw request body.
        """
        for value, header in (
            (access_token, "apim-accesstoken"),
            (str(timestamp), "apim-timestamp"),
            (signature, "apim-signature"),
        ):
            if not value:
                raise AuthError(UNAUTHORIZED, f"missing {header}")
        ts = _parse_timestamp(timestamp)
        now = self._clock.wall_ms()
        if ts is None or abs(now - ts) > self._window_ms:
            raise AuthError(UNAUTHORIZED, "timestamp outside the allowed window")
        token_hash = sha256_hex(access_token.encode())
        account = self._account_of(token_hash, now)
        expected = sign(access_token, query, body, timestamp, account.app_secret)
        if not _same(expected, signature):
            raise self._reject(UNAUTHORIZED, "invalid signature", account.app_key)
        with self._lock:
            fresh = self._calls.check_and_add((token_hash, signature), ts + self._window_ms, now)
        if not fresh:
            raise self._reject(UNAUTHORIZED, "replayed request", account.app_key)
        return Principal(account.org_id, account.app_key)

    def verify_bearer(self, token: str) -> Principal:
        """The caller of a request with `Authorization: Bearer <token>` (no signature)."""
        if not token:
            raise AuthError(UNAUTHORIZED, "missing access token")
        account = self._account_of(sha256_hex(token.encode()), self._clock.wall_ms())
        return Principal(account.org_id, account.app_key)

    # internals

    def _check_token_request(self, app_key: str, encryption: str, timestamp: int | str | None) -> None:
        """Raises the first failing check: 1202, 1004, 1002, 1003, then 1001 (replay)."""
        for value, name in ((app_key, "appKey"), (encryption, "encryption"), (timestamp, "timestamp")):
            if value is None or value == "":
                raise AuthError(PARAMETER_EMPTY, f"parameter empty: {name}")
        ts = _parse_timestamp(timestamp)
        if timestamp is None or ts is None:
            raise AuthError(INVALID_PARAMETER, "invalid parameter: timestamp must be epoch milliseconds")
        now = self._clock.wall_ms()
        if abs(now - ts) > self._window_ms:
            raise AuthError(INVALID_PARAMETER, "invalid parameter: timestamp outside the allowed window")
        account = self._catalog.account(app_key)
        if account is None:
            raise self._reject(APP_KEY_NOT_FOUND, "appKey does not exist", app_key)
        if not _same(token_request_encryption(app_key, timestamp, account.app_secret), encryption):
            raise self._reject(ENCRYPTION_INVALID, "encryption invalid", app_key)
        with self._lock:
            fresh = self._token_requests.check_and_add((app_key, encryption), ts + self._window_ms, now)
        if not fresh:
            raise self._reject(REPLAYED_REQUEST, "repeated request with duplicated encryption", app_key)

    def _issue(self, app_key: str, now: int) -> tuple[str, int]:
        """A new token, saved hashed; the caller holds the lock."""
        token = secrets.token_hex(32)
        expires = now + self._ttl_ms
        self._catalog.delete_expired_tokens(now)
        self._catalog.save_token(sha256_hex(token.encode()), TokenGrant(app_key, expires))
        self._issued[app_key] = (token, expires)
        _log.info("access token issued for appKey %r", app_key)
        return token, self._ttl_ms // 1000

    def _still_saved(self, token: str) -> bool:
        return self._catalog.token(sha256_hex(token.encode())) is not None

    def _account_of(self, token_hash: str, now: int) -> Account:
        grant = self._catalog.token(token_hash)
        if grant is None:
            raise AuthError(UNAUTHORIZED, "invalid access token")
        if grant.expires_ms <= now:
            raise AuthError(UNAUTHORIZED, "access token expired")
        account = self._catalog.account(grant.app_key)
        if account is None:
            raise AuthError(UNAUTHORIZED, "invalid access token")
        return account

    @staticmethod
    def _reject(code: int, msg: str, app_key: str) -> AuthError:
        _log.info("authentication failed for appKey %r: %s", app_key, msg)
        return AuthError(code, msg)


def _same(expected: str, given: str) -> bool:
    """Constant-time; False for a value that is not text (JSON can carry anything)."""
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())


def _parse_timestamp(timestamp: object) -> int | None:
    """Epoch ms from an int or up to 19 ASCII digits (headers and some JSON clients send text)."""
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        return timestamp
    if isinstance(timestamp, str) and len(timestamp) <= 19 and timestamp.isascii() and timestamp.isdigit():
        return int(timestamp)
    return None


__all__ = ["AuthError", "Authenticator", "Principal"]
