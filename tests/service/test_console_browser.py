"""The web console in headless Chromium (Debian's package, driven by Playwright) against the
real service: sign in, a running pipeline with its status and lag chart, Get Stage State, a
dry-run then a delete while paused, a restore; and another org that sees none of it.

Screenshots go to test-artifacts/console/ (or $STREAMCALC_TEST_ARTIFACTS/console), printed
at the start. CI installs chromium (.ci/ensure-servers); without it these tests fail, never skip.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import (
    APP_KEY,
    APP_SECRET,
    IN,
    ORG,
    STAGE,
    Service,
    other_org,
    record,
    released,
    running_service,
)
from playwright.sync_api import Browser, Page, expect, sync_playwright

from streamcalc.service.app import CONSOLE_DIR

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("STREAMCALC_TEST_ARTIFACTS") or Path(__file__).parents[2] / "test-artifacts")
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the console tests need Debian's chromium (apt-get install chromium)"
        )
    expect.set_options(timeout=TIMEOUT_MS)  # a loaded CI machine: the pages refresh every 2 s
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def shots() -> Path:
    directory = ARTIFACTS / "console"
    directory.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots: {directory}")
    return directory


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    context.close()


def sign_in(page: Page, service: Service, org: str, app_key: str, app_secret: str) -> None:
    page.goto(f"{service.url}/console/")
    page.get_by_label("Org ID").fill(org)
    page.get_by_label("App key").fill(app_key)
    page.get_by_label("App secret").fill(app_secret)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Pipelines")).to_be_visible()


def confirm(page: Page, title: str, button: str) -> None:
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_role("heading")).to_have_text(re.compile(title))
    dialog.get_by_role("button", name=button).click()
    expect(dialog).to_have_count(0)


def look_up(page: Page, assets: str) -> None:
    page.get_by_label("Asset IDs").fill(assets)
    page.get_by_label("Point IDs").fill("p")
    page.get_by_role("button", name="Look up").click()


def test_operator_story_in_the_console(tmp_path: Path, page: Page, shots: Path) -> None:
    with running_service(tmp_path) as service, service.client() as client:
        pid = released(client)
        client.save_pipeline(pid, name="energy sums")
        client.release_pipeline(pid)
        client.start_pipeline(pid)
        client.produce(IN, [record("a1", 1.0), record("a2", 2.0), record("a1", "oops", 5)])  # type: ignore[arg-type]

        sign_in(page, service, ORG, APP_KEY, APP_SECRET)
        row = page.get_by_role("row").filter(has_text="energy sums")
        expect(row.locator("[data-status]")).to_have_text("RUNNING")
        storage = page.evaluate("() => JSON.stringify([sessionStorage, localStorage])")
        assert APP_SECRET not in storage and "token" in storage  # the secret is never kept
        page.screenshot(path=shots / "1-pipelines.png", full_page=True)

        row.get_by_role("link", name="energy sums").click()
        expect(page.locator(".header [data-status]")).to_have_text("RUNNING")
        page.wait_for_function("() => +document.querySelector('.lag-chart polyline')?.dataset.points >= 2")
        expect(page.locator(".dag [data-stage]")).to_have_count(4)
        expect(page.locator(f'.dag [data-stage="{STAGE}"]')).to_contain_text("rejected 1")
        expect(page.get_by_role("row").filter(has_text="oops")).to_have_count(1)
        page.screenshot(path=shots / "2-pipeline-running.png", full_page=True)

        look_up(page, "a1,a2,nobody")
        expect(page.locator(".state-result")).to_contain_text("2 key(s) hold state")

        page.locator(".header").get_by_role("button", name="Pause").click()
        confirm(page, "Pause energy sums", "Pause")
        expect(page.locator(".header [data-status]")).to_have_text("PAUSED")

        page.get_by_label("Asset IDs").fill("a1,nobody")
        page.get_by_role("button", name="Delete…").click()
        expect(page.locator("dialog[open]")).to_contain_text("1 key(s) hold state")  # the dry run
        page.screenshot(path=shots / "3-delete-dry-run.png", full_page=True)
        confirm(page, r"Delete 1 key\(s\)", "Delete")
        expect(page.locator(".state-result")).to_contain_text("Deleted 1 key(s)")
        assert [i["assetId"] for i in client.get_stage_state(pid, STAGE, ["a1", "a2"], ["p"])] == ["a2"]

        page.get_by_role("button", name="Restore").click()
        confirm(page, r"Restore 1 key\(s\)", "Restore")
        expect(page.locator(".state-result")).to_contain_text("Restored 1 key(s)")
        look_up(page, "a1,a2")
        expect(page.locator(".state-result")).to_contain_text("2 key(s) hold state")
        for action in ("deleteStageState", "restoreStageState"):
            expect(page.get_by_role("row").filter(has_text=action)).to_have_count(1)
        page.screenshot(path=shots / "4-restored.png", full_page=True)


def test_another_org_sees_none_of_it(tmp_path: Path, page: Page, shots: Path) -> None:
    with running_service(tmp_path) as service, service.client() as client:
        pid = released(client)
        account = other_org(service)

        page.goto(f"{service.url}/console/")
        page.get_by_label("Org ID").fill(ORG)  # another org's id with o2's account: refused
        page.get_by_label("App key").fill(account.app_key)
        page.get_by_label("App secret").fill(account.app_secret)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("61106")

        sign_in(page, service, "o2", account.app_key, account.app_secret)
        expect(page.get_by_text("No pipelines in this org.")).to_be_visible()
        page.goto(f"{service.url}/console/#/pipeline/{pid}")
        expect(page.get_by_role("alert").first).to_contain_text("61108")
        page.screenshot(path=shots / "5-other-org.png", full_page=True)


def test_the_console_is_served_whole_and_offline(tmp_path: Path) -> None:
    """Every file from the package, as a browser loads modules; nothing from elsewhere."""
    files = sorted(p for p in CONSOLE_DIR.iterdir() if p.is_file())
    assert {p.suffix for p in files} == {".html", ".js", ".css"}
    with running_service(tmp_path) as service:
        assert httpx.get(f"{service.url}/console", follow_redirects=True).url.path == "/console/"
        for path in files:
            response = httpx.get(f"{service.url}/console/{path.name}")
            assert response.status_code == 200 and response.content == path.read_bytes()
            if path.suffix == ".js":
                assert response.headers["content-type"].startswith("text/javascript")  # modules need it
            assert not re.search(r"(src|href|import[^;]*from)\s*=?\s*[\"']?(https?:)?//", response.text), path
