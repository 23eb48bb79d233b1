"""EnOS request signatures, shared by the service (to verify) and the client SDK (to sign).

Pure functions on the standard library only, so the SDK can use them without importing the
service. The scheme is the documented EnOS token authentication (shared/reference/enos-api.md
§3.5 b): lower-case hex SHA-256 over plain concatenations, no separators.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def token_request_encryption(app_key: str, timestamp: int | str, app_secret: str) -> str:
    """The `encryption` of a token get/refresh request: sha256(appKey + timestamp + appSecret)."""
    return sha256_hex(f"{app_key}{timestamp}{app_secret}".encode())


def params_data(query: Iterable[tuple[str, str]]) -> str:
    """Query parameters sorted by name (ties by value), as `name1value1name2value2...`.

    Names and values are the decoded ones (what the URL means, not its percent-encoding).
    """
    return "".join(name + value for name, value in sorted(query))


def sign(
    token: str, query: Iterable[tuple[str, str]], body: bytes, timestamp: int | str, app_secret: str
) -> str:
    """The `apim-signature` header: sha256(accessToken + paramsData + body + timestamp + appSecret).

    The body takes part byte for byte, so a client must sign exactly the bytes it sends.
    """
    digest = hashlib.sha256()
    for part in (
        token.encode(),
        params_data(query).encode(),
        body,
        str(timestamp).encode(),
        app_secret.encode(),
    ):
        digest.update(part)
    return digest.hexdigest()


__all__ = ["params_data", "sha256_hex", "sign", "token_request_encryption"]
