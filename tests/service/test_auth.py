"""The EnOS token service and request signature checks, on a manual clock."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from streamcalc.catalog import TokenGrant
from streamcalc.catalog.sqlite import SqliteCatalog
from streamcalc.clock import ManualClock
from streamcalc.errors import StreamcalcError
from streamcalc.service.auth import Authenticator, AuthError, Principal
from streamcalc.signing import sha256_hex, sign, token_request_encryption

ORG = "o15520323695671"
APP_KEY = "5acb82e7-a11e-4300-9164-c8b20b638e8b"
APP_SECRET = "8d2d0c8e-1b5a-4bfb-9d1e-2f4c3b6a7e90"
QUERY = [("orgId", ORG), ("action", "start")]
BODY = b'{"kafkaRate": 1000}'


@pytest.fixture
def catalog(catalog_factory: Callable[..., SqliteCatalog]) -> SqliteCatalog:
    catalog = catalog_factory()
    catalog.create_account(ORG, APP_KEY, APP_SECRET)
    catalog.create_account("o-other", "other-key", "other-secret")
    return catalog


@pytest.fixture
def auth(authenticator_factory: Callable[..., Authenticator], catalog: SqliteCatalog) -> Authenticator:
    return authenticator_factory(catalog)


def get_token(auth: Authenticator, ts: int, key: str = APP_KEY, secret: str = APP_SECRET) -> tuple[str, int]:
    return auth.get_token(key, token_request_encryption(key, ts, secret), ts)


def refresh(
    auth: Authenticator, ts: int, token: str, key: str = APP_KEY, secret: str = APP_SECRET
) -> tuple[str, int]:
    return auth.refresh_token(key, token_request_encryption(key, ts, secret), ts, token)


def call(
    auth: Authenticator,
    token: str,
    ts: int,
    *,
    query: list[tuple[str, str]] = QUERY,
    body: bytes = BODY,
    secret: str = APP_SECRET,
) -> Principal:
    return auth.verify(token, str(ts), sign(token, query, body, ts, secret), query, body)


def code_of(action: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(AuthError) as info:
        action()
    return info.value.code, info.value.msg


# token service


def test_get_token_saves_only_the_hash(
    auth: Authenticator, catalog: SqliteCatalog, manual_clock: ManualClock
) -> None:
    token, expire = get_token(auth, manual_clock.wall_ms())

    assert len(token) == 64 and int(token, 16) >= 0
    assert expire == 7200
    assert catalog.token(sha256_hex(token.encode())) == TokenGrant(
        APP_KEY, manual_clock.wall_ms() + 7_200_000
    )
    assert catalog.token(token) is None


def test_same_token_while_unexpired_then_a_new_one(auth: Authenticator, manual_clock: ManualClock) -> None:
    token, _ = get_token(auth, manual_clock.wall_ms())
    manual_clock.advance(100)

    assert get_token(auth, manual_clock.wall_ms()) == (token, 7100)

    manual_clock.advance(7100)
    new_token, expire = get_token(auth, manual_clock.wall_ms())
    assert new_token != token and expire == 7200


def test_a_restarted_service_issues_a_new_token_and_the_old_one_stays_valid(
    authenticator_factory: Callable[..., Authenticator], catalog: SqliteCatalog, manual_clock: ManualClock
) -> None:
    before, _ = get_token(authenticator_factory(catalog), manual_clock.wall_ms())
    restarted = authenticator_factory(catalog)
    manual_clock.advance(1)

    after, _ = get_token(restarted, manual_clock.wall_ms())

    assert after != before
    assert call(restarted, before, manual_clock.wall_ms()) == Principal(ORG, APP_KEY)


def test_get_token_cleans_up_expired_tokens(
    auth: Authenticator, catalog: SqliteCatalog, manual_clock: ManualClock
) -> None:
    catalog.save_token("stale", TokenGrant(APP_KEY, manual_clock.wall_ms() - 1))

    get_token(auth, manual_clock.wall_ms())

    assert catalog.token("stale") is None


def test_replayed_token_request_is_1001(auth: Authenticator, manual_clock: ManualClock) -> None:
    ts = manual_clock.wall_ms()
    encryption = token_request_encryption(APP_KEY, ts, APP_SECRET)
    auth.get_token(APP_KEY, encryption, ts)

    assert code_of(lambda: auth.get_token(APP_KEY, encryption, ts))[0] == 1001
    manual_clock.advance(1)
    assert code_of(lambda: auth.get_token(APP_KEY, encryption, ts))[0] == 1001


def test_unknown_app_key_is_1002(auth: Authenticator, manual_clock: ManualClock) -> None:
    assert code_of(lambda: get_token(auth, manual_clock.wall_ms(), key="nobody"))[0] == 1002


def test_wrong_secret_is_1003(auth: Authenticator, manual_clock: ManualClock) -> None:
    assert code_of(lambda: get_token(auth, manual_clock.wall_ms(), secret="guess"))[0] == 1003


def test_upper_case_encryption_is_1003(auth: Authenticator, manual_clock: ManualClock) -> None:
    ts = manual_clock.wall_ms()
    encryption = token_request_encryption(APP_KEY, ts, APP_SECRET).upper()

    assert code_of(lambda: auth.get_token(APP_KEY, encryption, ts))[0] == 1003


@pytest.mark.parametrize("offset_s", [-301, 301, -3600])
def test_timestamp_outside_the_window_is_1004(
    auth: Authenticator, manual_clock: ManualClock, offset_s: int
) -> None:
    code, msg = code_of(lambda: get_token(auth, manual_clock.wall_ms() + offset_s * 1000))

    assert code == 1004 and "window" in msg


@pytest.mark.parametrize("offset_s", [-300, 300])
def test_timestamp_at_the_window_edge_is_accepted(
    auth: Authenticator, manual_clock: ManualClock, offset_s: int
) -> None:
    token, _ = get_token(auth, manual_clock.wall_ms() + offset_s * 1000)

    assert token


def test_non_numeric_timestamp_is_1004(auth: Authenticator) -> None:
    assert code_of(lambda: auth.get_token(APP_KEY, "ab" * 32, "12x"))[0] == 1004


def test_malformed_json_values_are_refused_not_crashing(
    auth: Authenticator, manual_clock: ManualClock
) -> None:
    ts = manual_clock.wall_ms()
    good = token_request_encryption(APP_KEY, ts, APP_SECRET)
    bad_values: list[tuple[object, object, object, int]] = [
        (APP_KEY, good, None, 1202),
        (APP_KEY, good, "9" * 5000, 1004),
        (APP_KEY, good, 1.5e12, 1004),
        (APP_KEY, good, True, 1004),
        (APP_KEY, 12345, ts, 1003),
        (None, good, ts, 1202),
    ]

    for key, encryption, timestamp, code in bad_values:
        assert code_of(lambda: auth.get_token(key, encryption, timestamp))[0] == code  # type: ignore[arg-type]  # noqa: B023
    assert code_of(lambda: auth.verify("t", "9" * 5000, "s", [], b"")) == (
        401,
        "timestamp outside the allowed window",
    )


def test_timestamp_as_digits_text_is_accepted(auth: Authenticator, manual_clock: ManualClock) -> None:
    ts = str(manual_clock.wall_ms())

    token, _ = auth.get_token(APP_KEY, token_request_encryption(APP_KEY, ts, APP_SECRET), ts)

    assert token


@pytest.mark.parametrize("empty", ["appKey", "encryption", "timestamp"])
def test_empty_parameter_is_1202(auth: Authenticator, manual_clock: ManualClock, empty: str) -> None:
    ts = manual_clock.wall_ms()
    args: dict[str, str | int] = {
        "appKey": APP_KEY,
        "encryption": token_request_encryption(APP_KEY, ts, APP_SECRET),
        "timestamp": ts,
    }
    args[empty] = ""

    code, msg = code_of(
        lambda: auth.get_token(str(args["appKey"]), str(args["encryption"]), args["timestamp"])
    )

    assert code == 1202 and empty in msg


def test_refresh_issues_a_new_token(
    auth: Authenticator, catalog: SqliteCatalog, manual_clock: ManualClock
) -> None:
    token, _ = get_token(auth, manual_clock.wall_ms())
    manual_clock.advance(600)

    new_token, expire = refresh(auth, manual_clock.wall_ms(), token)

    assert new_token != token and expire == 7200
    assert catalog.token(sha256_hex(new_token.encode())) == TokenGrant(
        APP_KEY, manual_clock.wall_ms() + 7_200_000
    )
    manual_clock.advance(1)
    assert get_token(auth, manual_clock.wall_ms())[0] == new_token  # the current token is the refreshed one
    assert call(auth, token, manual_clock.wall_ms()) == Principal(ORG, APP_KEY)  # old one runs out on its own


def test_refresh_with_a_token_of_another_app_key_is_1204(
    auth: Authenticator, manual_clock: ManualClock
) -> None:
    other, _ = get_token(auth, manual_clock.wall_ms(), key="other-key", secret="other-secret")

    assert code_of(lambda: refresh(auth, manual_clock.wall_ms(), other))[0] == 1204
    assert code_of(lambda: refresh(auth, manual_clock.wall_ms() + 1, "not-a-token"))[0] == 1204


def test_refresh_with_an_expired_token_is_1203(
    authenticator_factory: Callable[..., Authenticator], catalog: SqliteCatalog, manual_clock: ManualClock
) -> None:
    auth = authenticator_factory(catalog, token_ttl_s=60)
    token, _ = get_token(auth, manual_clock.wall_ms())
    manual_clock.advance(60)

    assert code_of(lambda: refresh(auth, manual_clock.wall_ms(), token))[0] == 1203


def test_refresh_checks_the_request_like_get(auth: Authenticator, manual_clock: ManualClock) -> None:
    token, _ = get_token(auth, manual_clock.wall_ms())
    ts = manual_clock.wall_ms() + 1

    assert code_of(lambda: refresh(auth, ts, token, secret="guess"))[0] == 1003
    assert code_of(lambda: refresh(auth, ts - 400_000, token))[0] == 1004
    assert code_of(lambda: refresh(auth, ts, ""))[0] == 1202
    refresh(auth, ts, token)
    assert code_of(lambda: refresh(auth, ts, token))[0] == 1001


# signed API calls


def test_the_documented_signature_verifies(catalog: SqliteCatalog) -> None:
    doc_ts = 1572574909697
    catalog.create_account("o-doc", "doc-key", "xxxappSecretxxx")
    catalog.save_token(sha256_hex(b"xxxxaaaxxxx"), TokenGrant("doc-key", doc_ts + 1000))
    auth = Authenticator(catalog, ManualClock(doc_ts))
    body = '{\n  "count": 20,\n  "page": 1,\n  "desc": "描述"\n}'.encode()
    query = [("k3", "v3"), ("k1", "v1"), ("k2", "v2")]
    signature = "59828328f6c1f9771015dc74e4929ae30f518a35a3d2353972c2ea46556fc981"

    assert auth.verify("xxxxaaaxxxx", "1572574909697", signature, query, body) == Principal(
        "o-doc", "doc-key"
    )


def test_a_signed_call_names_its_org(auth: Authenticator, manual_clock: ManualClock) -> None:
    token, _ = get_token(auth, manual_clock.wall_ms())
    other, _ = get_token(auth, manual_clock.wall_ms(), key="other-key", secret="other-secret")

    assert call(auth, token, manual_clock.wall_ms()) == Principal(ORG, APP_KEY)
    assert call(auth, other, manual_clock.wall_ms(), secret="other-secret") == Principal(
        "o-other", "other-key"
    )


def test_reordered_query_parameters_still_verify(auth: Authenticator, manual_clock: ManualClock) -> None:
    token, _ = get_token(auth, manual_clock.wall_ms())
    ts = manual_clock.wall_ms()
    query = [("pageSize", "5"), ("orgId", ORG), ("ifReleased", "true")]
    signature = sign(token, query, b"", ts, APP_SECRET)

    assert auth.verify(token, ts, signature, list(reversed(query)), b"") == Principal(ORG, APP_KEY)


def test_any_changed_byte_or_secret_is_an_invalid_signature(
    auth: Authenticator, manual_clock: ManualClock
) -> None:
    token, _ = get_token(auth, manual_clock.wall_ms())
    ts = manual_clock.wall_ms()
    signature = sign(token, QUERY, BODY, ts, APP_SECRET)
    forged = [
        lambda: auth.verify(token, ts, signature, QUERY, BODY.replace(b"1000", b"1001")),
        lambda: auth.verify(token, ts, signature, [*QUERY, ("x", "1")], BODY),
        lambda: auth.verify(token, ts + 1, signature, QUERY, BODY),
        lambda: auth.verify(token, ts, signature.upper(), QUERY, BODY),
        lambda: call(auth, token, ts, secret="guess"),
    ]

    for attempt in forged:
        assert code_of(attempt) == (401, "invalid signature")
    assert call(auth, token, ts) == Principal(ORG, APP_KEY)  # none of them used up the real one


def test_replayed_call_is_rejected_until_its_timestamp_leaves_the_window(
    auth: Authenticator, manual_clock: ManualClock
) -> None:
    token, _ = get_token(auth, manual_clock.wall_ms())
    ts = manual_clock.wall_ms()
    call(auth, token, ts)

    assert code_of(lambda: call(auth, token, ts)) == (401, "replayed request")
    manual_clock.advance(300)
    assert code_of(lambda: call(auth, token, ts)) == (401, "replayed request")
    manual_clock.advance(0.001)
    assert code_of(lambda: call(auth, token, ts)) == (401, "timestamp outside the allowed window")


def test_replay_memory_drops_entries_older_than_the_window(
    auth: Authenticator, manual_clock: ManualClock
) -> None:
    token, _ = get_token(auth, manual_clock.wall_ms())
    for i in range(50):
        call(auth, token, manual_clock.wall_ms() - i)
    assert len(auth._calls) == 50

    manual_clock.advance(301)
    call(auth, token, manual_clock.wall_ms())

    assert len(auth._calls) == 1


def test_stale_or_future_call_is_rejected(auth: Authenticator, manual_clock: ManualClock) -> None:
    token, _ = get_token(auth, manual_clock.wall_ms())
    now = manual_clock.wall_ms()

    for ts in (now - 301_000, now + 301_000):
        assert code_of(lambda: call(auth, token, ts)) == (401, "timestamp outside the allowed window")  # noqa: B023
    assert code_of(lambda: auth.verify(token, "soon", "ab", QUERY, BODY))[0] == 401


def test_expired_or_unknown_token_is_rejected(
    authenticator_factory: Callable[..., Authenticator], catalog: SqliteCatalog, manual_clock: ManualClock
) -> None:
    auth = authenticator_factory(catalog, token_ttl_s=60)
    token, _ = get_token(auth, manual_clock.wall_ms())
    assert call(auth, token, manual_clock.wall_ms()) == Principal(ORG, APP_KEY)
    manual_clock.advance(60)

    assert code_of(lambda: call(auth, token, manual_clock.wall_ms())) == (401, "access token expired")
    assert code_of(lambda: call(auth, "f" * 64, manual_clock.wall_ms())) == (401, "invalid access token")


@pytest.mark.parametrize(
    ("token", "ts", "signature", "missing"),
    [("", "1", "s", "apim-accesstoken"), ("t", "", "s", "apim-timestamp"), ("t", "1", "", "apim-signature")],
)
def test_missing_header_is_named(
    auth: Authenticator, token: str, ts: str, signature: str, missing: str
) -> None:
    assert code_of(lambda: auth.verify(token, ts, signature, [], b"")) == (401, f"missing {missing}")


def test_bearer_token(
    authenticator_factory: Callable[..., Authenticator], catalog: SqliteCatalog, manual_clock: ManualClock
) -> None:
    auth = authenticator_factory(catalog, token_ttl_s=60)
    token, _ = get_token(auth, manual_clock.wall_ms())

    assert auth.verify_bearer(token) == Principal(ORG, APP_KEY)
    assert code_of(lambda: auth.verify_bearer("f" * 64)) == (401, "invalid access token")
    assert code_of(lambda: auth.verify_bearer(""))[0] == 401
    manual_clock.advance(60)
    assert code_of(lambda: auth.verify_bearer(token)) == (401, "access token expired")


def test_auth_error_is_a_streamcalc_error() -> None:
    error = AuthError(1003, "encryption invalid")

    assert isinstance(error, StreamcalcError)
    assert (error.code, error.msg, str(error)) == (1003, "encryption invalid", "1003: encryption invalid")


def test_options_are_checked(catalog: SqliteCatalog) -> None:
    with pytest.raises(ValueError):
        Authenticator(catalog, token_ttl_s=0)
    with pytest.raises(ValueError):
        Authenticator(catalog, window_s=0)


def test_nothing_secret_is_logged(
    auth: Authenticator, manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ts = manual_clock.wall_ms()
    token, _ = get_token(auth, ts)
    signature = sign(token, QUERY, BODY, ts, APP_SECRET)
    auth.verify(token, ts, signature, QUERY, BODY)
    for attempt in (
        lambda: auth.verify(token, ts, signature, QUERY, BODY),
        lambda: get_token(auth, ts + 1, secret="guess"),
        lambda: refresh(auth, ts + 2, "bad-token"),
    ):
        code_of(attempt)

    assert caplog.records  # issuing and failures are logged ...
    for secret in (
        APP_SECRET,
        token,
        signature,
        "bad-token",
        token_request_encryption(APP_KEY, ts, APP_SECRET),
    ):
        assert secret not in caplog.text  # ... without secrets
