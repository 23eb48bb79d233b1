"""Backend URLs: which log, state and catalog a process uses, and where.

`--log`, `--state` and `--catalog` take a URL whose scheme names the backend:

| part | schemes | a bare scheme means |
|---|---|---|
| log | `embedded`, `memory`, `kafka` | `embedded`: the embedded log under the data dir |
| state | `lmdb`, `memory`, `redis`, `rediss` | `lmdb`: one LMDB store per pipeline under the data dir |
| catalog | `sqlite`, `memory`, `postgresql` | `sqlite`: one SQLite file under the data dir |

A file backend also takes an explicit place, `lmdb:///abs/dir` (or `lmdb:rel/dir`, from the
working directory). A server backend takes the server's URL as its client library does,
`redis://[user:password@]host:port/db` (`rediss://` for TLS),
`postgresql://user:password@host:port/db` (libpq's URL, query parameters too); a password in
it is never printed (`redact`). `kafka://host:port[,host:port...]` names the bootstrap
brokers; SASL, SSL and other librdkafka settings come from STREAMCALC_KAFKA__<NAME> variables
(`log/kafka_settings.py`), never from the URL. `memory` lives in one process only: for tests,
and for an API that runs no pipelines. URLs are resolved once, at start, to the absolute form
that worker processes receive in their spec, so every process of a service opens the same
backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from streamcalc.errors import StreamcalcError

Part = Literal["log", "state", "catalog"]


class BackendConfigError(StreamcalcError, ValueError):
    """A backend URL that names no backend of this release, or names it wrongly; fix the flag
    or the STREAMCALC_LOG / STREAMCALC_STATE / STREAMCALC_CATALOG variable."""


@dataclass(frozen=True)
class Scheme:
    module: str
    """The backend's module, imported only when the scheme is used (so lmdb loads only for lmdb)."""
    default_place: str | None
    """Under the data dir, for a bare scheme; None for a backend without a place (memory)."""
    shared: bool
    """Whether other processes reach the same data through the URL (worker processes need it)."""
    server: bool = False
    """A server's URL (host, credentials), handed to the backend whole; never under the data dir."""


SCHEMES: dict[Part, dict[str, Scheme]] = {
    "log": {
        "embedded": Scheme("streamcalc.log.embedded", "log", True),
        "memory": Scheme("streamcalc.log.memory", None, False),
        "kafka": Scheme("streamcalc.log.kafka", None, True, server=True),
    },
    "state": {
        "lmdb": Scheme("streamcalc.state.lmdb", "state", True),
        "memory": Scheme("streamcalc.state.memory", None, False),
        "redis": Scheme("streamcalc.state.redis", None, True, server=True),
        "rediss": Scheme("streamcalc.state.redis", None, True, server=True),
    },
    "catalog": {
        "sqlite": Scheme("streamcalc.catalog.sqlite", "catalog.sqlite3", True),
        "memory": Scheme("streamcalc.catalog.memory", None, False),
        "postgresql": Scheme("streamcalc.catalog.postgresql", None, True, server=True),
    },
}


class BackendUrls(msgspec.Struct, frozen=True):
    """Resolved URLs (`scheme:///absolute/place` or `memory`), as worker specs carry them."""

    log: str
    state: str
    catalog: str
    allow_volatile_state: bool = False
    """Run pipelines even on state that may lose acknowledged commits (`--allow-volatile-state`)."""

    @property
    def shared(self) -> bool:
        """Whether worker processes can open the same log and state."""
        return all(scheme_of(part, getattr(self, part)).shared for part in ("log", "state"))


def resolve(part: Part, url: str, data_dir: Path) -> str:
    """`url` in its absolute form; `BackendConfigError` naming the flag and the choices."""
    scheme_name, place = split(part, url)
    scheme = SCHEMES[part][scheme_name]
    if scheme.server:
        if not urlsplit(url.strip()).hostname:
            raise BackendConfigError(f"--{part} {redact(url)}: name the server, {scheme_name}://host:port")
        return url.strip()
    if scheme.default_place is None:
        if place:
            raise BackendConfigError(f"--{part} {url}: the {scheme_name} backend takes no place")
        return scheme_name
    path = Path(place) if place else data_dir / scheme.default_place
    return f"{scheme_name}://{path.resolve()}"


def split(part: Part, url: str) -> tuple[str, str]:
    """(scheme, place) of a URL whose scheme is one of `part`'s."""
    parsed = urlsplit(url.strip())
    name = parsed.scheme or url.strip()
    if name not in SCHEMES[part]:
        choices = ", ".join(SCHEMES[part])
        raise BackendConfigError(
            f"--{part} {redact(url)!r}: unknown backend {name!r}; this release has {choices}"
        )
    if not parsed.scheme:
        return name, ""
    if SCHEMES[part][name].server:
        return name, url.strip()
    if parsed.query or parsed.fragment:
        raise BackendConfigError(f"--{part} {url}: a {name} URL takes no query or fragment")
    return name, parsed.netloc + parsed.path


def scheme_of(part: Part, url: str) -> Scheme:
    return SCHEMES[part][split(part, url)[0]]


def redact(url: str) -> str:
    """`url` with any password replaced by `***`, for messages and logs: in the user info, and
    in a query parameter whose name holds "password" or "secret" (libpq's `?password=`,
    `?sslpassword=`)."""
    parsed = urlsplit(url.strip())
    query = "&".join(_redact_parameter(p) for p in parsed.query.split("&")) if parsed.query else ""
    if parsed.password is None and query == parsed.query:
        return url
    netloc = parsed.netloc
    if parsed.password is not None:
        netloc = f"{parsed.username or ''}:***@{netloc.rpartition('@')[2]}"
    return parsed._replace(netloc=netloc, query=query).geturl()


def _redact_parameter(parameter: str) -> str:
    name, eq, _ = parameter.partition("=")
    secret = eq and any(word in name.lower() for word in ("password", "secret"))
    return f"{name}=***" if secret else parameter
