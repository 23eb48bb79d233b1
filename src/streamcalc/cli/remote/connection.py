"""The options every remote command takes (--url, --org-id, --app-key, --app-secret), declared
once as the option group `Connection`, and the client they make."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

import httpx
import typer

from streamcalc.cli.output import fail
from streamcalc.client import EnosError, NotAnEnvelope, StreamcalcClient

DEFAULT_URL = "http://127.0.0.1:8080"
Url = Annotated[str, typer.Option("--url", envvar="STREAMCALC_URL", help="Base URL of the service.")]
OrgId = Annotated[str | None, typer.Option("--org-id", envvar="STREAMCALC_ORG_ID", help="Org (OU) id.")]
AppKey = Annotated[
    str | None, typer.Option("--app-key", envvar="STREAMCALC_APP_KEY", help="Service account.")
]
AppSecret = Annotated[
    str | None,
    typer.Option("--app-secret", envvar="STREAMCALC_APP_SECRET", help="Its secret; prefer the env var."),
]


@dataclass(frozen=True)
class Connection:
    """Where the service is and which service account calls it (an option group: see
    `streamcalc.cli.option_groups`)."""

    url: Url = DEFAULT_URL
    org_id: OrgId = None
    app_key: AppKey = None
    app_secret: AppSecret = None

    @contextmanager
    def client(self) -> Iterator[StreamcalcClient]:
        """A client for the block. Missing credentials exit 2 before any call; API and
        connection errors become a message on stderr and exit 1."""
        url, org_id, app_key, app_secret = self.url, self.org_id, self.app_key, self.app_secret
        if not (org_id and app_key and app_secret):
            given = {"org-id": org_id, "app-key": app_key, "app-secret": app_secret}
            missing = [
                f"--{n} (or STREAMCALC_{n.upper().replace('-', '_')})" for n, v in given.items() if not v
            ]
            fail(f"missing {', '.join(missing)}", 2)
        try:
            with StreamcalcClient(url, org_id, app_key, app_secret) as client:
                yield client
        except EnosError as e:
            fail(f"{e.code}: {e.msg}", 1)
        except httpx.ConnectError as e:
            fail(f"cannot connect to {url}: is the service running at {url}? ({e})", 1)
        except httpx.HTTPError as e:
            fail(f"{url}: {e}", 1)
        except NotAnEnvelope:
            fail(f"{url} did not answer with an API envelope: is it a streamcalc service?", 1)
