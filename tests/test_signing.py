"""The EnOS signature functions, against the documented worked example."""

from __future__ import annotations

import hashlib

from streamcalc.signing import params_data, sha256_hex, sign, token_request_encryption

# shared/reference/enos-api.md §3.5 (b)
DOC_TOKEN = "xxxxaaaxxxx"
DOC_SECRET = "xxxappSecretxxx"
DOC_TS = 1572574909697
DOC_QUERY = [("k3", "v3"), ("k1", "v1"), ("k2", "v2")]
DOC_BODY = '{\n  "count": 20,\n  "page": 1,\n  "desc": "描述"\n}'.encode()
DOC_SIGNATURE = "59828328f6c1f9771015dc74e4929ae30f518a35a3d2353972c2ea46556fc981"


def test_sign_matches_the_documented_example() -> None:
    assert sign(DOC_TOKEN, DOC_QUERY, DOC_BODY, DOC_TS, DOC_SECRET) == DOC_SIGNATURE
    assert sign(DOC_TOKEN, DOC_QUERY, DOC_BODY, str(DOC_TS), DOC_SECRET) == DOC_SIGNATURE


def test_sign_ignores_query_order_but_not_body_bytes() -> None:
    assert sign(DOC_TOKEN, list(reversed(DOC_QUERY)), DOC_BODY, DOC_TS, DOC_SECRET) == DOC_SIGNATURE
    assert sign(DOC_TOKEN, DOC_QUERY, DOC_BODY.replace(b"20", b"21"), DOC_TS, DOC_SECRET) != DOC_SIGNATURE
    assert sign(DOC_TOKEN, DOC_QUERY, DOC_BODY + b" ", DOC_TS, DOC_SECRET) != DOC_SIGNATURE


def test_params_data_sorts_by_name_then_value() -> None:
    assert params_data([("b", "2"), ("a", "9"), ("B", "1"), ("a", "1")]) == "B1a1a9b2"
    assert params_data([]) == ""


def test_sign_without_query_or_body() -> None:
    expected = hashlib.sha256(b"tok" + b"123" + b"sec").hexdigest()

    assert sign("tok", [], b"", 123, "sec") == expected


def test_token_request_encryption_is_lower_hex_sha256_of_key_timestamp_secret() -> None:
    key, secret = "5acb82e7-a11e-4300-9164-c8b20b638e8b", "s3cr3t"
    expected = hashlib.sha256(f"{key}{DOC_TS}{secret}".encode()).hexdigest()

    assert token_request_encryption(key, DOC_TS, secret) == expected
    assert expected == expected.lower() and len(expected) == 64
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
