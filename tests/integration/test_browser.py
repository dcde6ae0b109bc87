"""The demo page in Debian's Chromium (driven by Playwright), served by the demo project's own
``runserver`` against the real Keycloak."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, delete_user_named, demo_environment, free_port, wait_until_up

pytestmark = [pytest.mark.keycloak, pytest.mark.browser]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "artifacts" / "browser"


STAFF_USER, STAFF_PASSWORD = "browser-staff", "a-test-only-password-8c1f"


@pytest.fixture(scope="module")
def demo_server(keycloak_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = demo_environment(keycloak_server, tmp_path_factory.mktemp("demo"))
    manage = [sys.executable, "manage.py"]
    staff = (
        "from django.contrib.auth.models import User; "
        f"User.objects.create_user({STAFF_USER!r}, password={STAFF_PASSWORD!r}, is_staff=True)"
    )
    subprocess.run([*manage, "shell", "-c", staff], cwd=ROOT, env=env, check=True, timeout=120)
    server = subprocess.Popen(
        [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_up(url)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def test_demo_page_in_chromium(demo_server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            outside: list[str] = []
            page.on(
                "request",
                lambda r: outside.append(r.url) if not r.url.startswith(demo_server) else None,
            )
            page.goto(demo_server)

            expect(page.locator("#token-client")).to_contain_text("django-service")
            expect(page.locator("#users tbody tr")).to_have_count(10)
            expect(page.locator("#range")).to_have_text("1–10 of 30")
            page.screenshot(path=str(SCREENSHOTS / "demo-page.png"), full_page=True)

            page.click("#next")
            expect(page.locator("#range")).to_have_text("11–20 of 30")
            first_row_page_two = page.locator("#users tbody tr").first.inner_text()
            page.click("#previous")
            expect(page.locator("#range")).to_have_text("1–10 of 30")
            assert page.locator("#users tbody tr").first.inner_text() != first_row_page_two

            page.fill("input[name=search]", "hopper")
            page.click("button[type=submit]")
            expect(page.locator("#users tbody tr")).to_have_count(1)
            expect(page.locator("#users tbody")).to_contain_text("grace.hopper@example.com")
            expect(page.locator("#range")).to_have_text("1–1 of 1")
            page.screenshot(path=str(SCREENSHOTS / "demo-search.png"), full_page=True)

            assert "eyJ" not in page.content()  # the token (a JWT) is never on the page
            assert outside == []  # no external CSS, JS or fonts
        finally:
            browser.close()
    assert Path(SCREENSHOTS / "demo-page.png").stat().st_size > 10_000


@pytest.fixture
def new_username(real_keycloak: str) -> Iterator[str]:
    """A username for the form to create; that user is deleted at the end, whatever happened."""
    username = f"browser-{uuid.uuid4().hex[:10]}"
    yield username
    delete_user_named(username)


def test_create_user_form_in_chromium(demo_server: str, new_username: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            # Writes need a staff user, whatever the anonymous switch says: sign in first.
            page.goto(f"{demo_server}admin/login/?next=/")
            page.fill("input[name=username]", STAFF_USER)
            page.fill("input[name=password]", STAFF_PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(demo_server)
            form = page.locator("#create-user")
            form.locator("input[name=username]").fill(new_username)
            form.locator("input[name=email]").fill(f"{new_username}@example.com")
            form.locator("input[name=first_name]").fill("Browser")
            form.locator("input[name=last_name]").fill("Made")
            form.locator("button[type=submit]").click()

            expect(page.locator(".message.success")).to_have_text(f"Created user {new_username!r}.")
            expect(page.locator("#users tbody tr")).to_have_count(1)
            expect(page.locator("#users tbody")).to_contain_text(f"{new_username}@example.com")
            page.screenshot(path=str(SCREENSHOTS / "demo-create-user.png"), full_page=True)

            page.goto(demo_server)  # the list without a search now counts one more user
            expect(page.locator("#range")).to_have_text("1–10 of 31")
            form.locator("input[name=username]").fill(new_username)  # once more: a conflict
            form.locator("button[type=submit]").click()
            expect(page.locator(".message.error")).to_contain_text("User exists with same username")
        finally:
            browser.close()
