"""The librdkafka settings of a `kafka://` log: the brokers from the URL, everything else a
real cluster needs (SASL, SSL, client id, timeouts) passed through from the environment, so
credentials never sit in a URL that worker specs carry and messages print.

`STREAMCALC_KAFKA__<NAME>=value` sets librdkafka's `<name>` with `_` read as `.`, e.g.
STREAMCALC_KAFKA__SASL_USERNAME -> sasl.username, STREAMCALC_KAFKA__SECURITY_PROTOCOL ->
security.protocol. Worker processes inherit the environment, so they connect as the service does.
STREAMCALC_KAFKA_TIMEOUT_S (one underscore: not a librdkafka setting) bounds every wait on the
brokers but an append's, which message.timeout.ms bounds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

ENV_PREFIX = "STREAMCALC_KAFKA__"
TIMEOUT_ENV = "STREAMCALC_KAFKA_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_CLIENT_ID = "streamcalc"
_SECRET = re.compile(r"password|secret|token|\.pem$|\.key$|sasl\.oauthbearer\.config|jaas")
_BROKER = re.compile(r"[A-Za-z0-9.\-\[\]:]+:\d{1,5}")


def client_settings(url: str, environ: Mapping[str, str]) -> dict[str, str]:
    """bootstrap.servers from `kafka://host:port[,host:port...]`, client.id, then the
    environment's pass-through settings (which may override either)."""
    parsed = urlsplit(url.strip())
    if "@" in parsed.netloc:
        raise ValueError(
            "a kafka URL takes no credentials: set STREAMCALC_KAFKA__SASL_USERNAME and "
            "STREAMCALC_KAFKA__SASL_PASSWORD (and STREAMCALC_KAFKA__SECURITY_PROTOCOL) instead"
        )
    brokers = parsed.netloc.split(",")
    if parsed.path.strip("/") or parsed.query or not all(_BROKER.fullmatch(b) for b in brokers):
        raise ValueError("name the brokers as kafka://host:port[,host:port...]")
    settings = {"bootstrap.servers": ",".join(brokers), "client.id": DEFAULT_CLIENT_ID}
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            settings[name[len(ENV_PREFIX) :].lower().replace("_", ".")] = value
    return settings


def redacted(settings: Mapping[str, str]) -> dict[str, str]:
    """`settings` fit for a log line: secrets (passwords, keys, tokens) shown as `***`."""
    return {name: "***" if _SECRET.search(name) else value for name, value in settings.items()}


def answer_timeout_s(environ: Mapping[str, str]) -> float:
    """How long a call waits for the brokers before it fails (STREAMCALC_KAFKA_TIMEOUT_S, 10 s)."""
    value = float(environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    if value <= 0:
        raise ValueError(f"{TIMEOUT_ENV} must be positive, got {value}")
    return value
