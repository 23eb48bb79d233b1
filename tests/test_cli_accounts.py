"""`streamcalc accounts create`: one JSON object on stdout, into the catalog of the data dir."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from typer.testing import CliRunner

from streamcalc.catalog import Account
from streamcalc.catalog.sqlite import open_catalog
from streamcalc.cli import app

runner = CliRunner()


def create(org_id: str, data_dir: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["accounts", "create", "--org-id", org_id, "--data-dir", str(data_dir)])
    return result.exit_code, result.stdout


def stored(data_dir: Path, app_key: str) -> Account | None:
    catalog = open_catalog(data_dir)
    try:
        return catalog.account(app_key)
    finally:
        catalog.close()


def test_create_prints_exactly_one_json_object(tmp_path: Path) -> None:
    code, out = create("o15520323695671", tmp_path / "data")

    assert code == 0, out
    assert len(out.strip().splitlines()) == 1
    doc = json.loads(out)
    assert set(doc) == {"orgId", "appKey", "appSecret"}
    assert doc["orgId"] == "o15520323695671"
    assert uuid.UUID(doc["appKey"]).version == 4 and uuid.UUID(doc["appSecret"]).version == 4
    account = stored(tmp_path / "data", doc["appKey"])
    assert account is not None and (account.org_id, account.app_secret) == (doc["orgId"], doc["appSecret"])


def test_each_run_creates_another_account(tmp_path: Path) -> None:
    first, second = (json.loads(create("o1", tmp_path)[1]) for _ in range(2))

    assert first["appKey"] != second["appKey"] and first["appSecret"] != second["appSecret"]
    assert stored(tmp_path, first["appKey"]) is not None and stored(tmp_path, second["appKey"]) is not None


def test_an_empty_org_is_refused(tmp_path: Path) -> None:
    code, out = create(" ", tmp_path)

    assert code == 2 and out == ""


def test_a_separate_process_creates_an_account_while_a_catalog_is_open(tmp_path: Path) -> None:
    catalog = open_catalog(tmp_path)
    try:
        catalog.create_account("o1", "service-key", "service-secret")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "streamcalc.cli",
                "accounts",
                "create",
                "--org-id",
                "o2",
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)

        account = catalog.account(doc["appKey"])
        assert account is not None and (account.org_id, account.app_secret) == ("o2", doc["appSecret"])
    finally:
        catalog.close()
