"""Backend URLs in messages and logs: a password never shows, wherever the URL carries it."""

from __future__ import annotations

import pytest

from streamcalc.backends.urls import redact


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
        ("postgresql://app:s3cret@db:5432/cat", "postgresql://app:***@db:5432/cat"),
        (
            "postgresql://app@db/cat?password=s3cret&sslmode=require",
            "postgresql://app@db/cat?password=***&sslmode=require",
        ),
        (
            "postgresql://db/cat?sslpassword=k&client_secret=x",
            "postgresql://db/cat?sslpassword=***&client_secret=***",
        ),
        ("rediss://u:p@h/0?ssl_ca_certs=/ca.pem", "rediss://u:***@h/0?ssl_ca_certs=/ca.pem"),
        ("kafka://b1:9092,b2:9092", "kafka://b1:9092,b2:9092"),
        ("lmdb:///data/state", "lmdb:///data/state"),
    ],
)
def test_redact_hides_every_password(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert "s3cret" not in redact(url)
