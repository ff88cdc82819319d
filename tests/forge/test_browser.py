"""A Forge Custom UI page in Chromium, calling the real backend through a stubbed @forge/bridge."""
from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.middleware.shared_data import SharedDataMiddleware
from werkzeug.serving import make_server

from tests.conftest import ROOT
from tests.forge.build import build_ui
from tests.forge.conftest import ForgeInstall

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def served(full_app: Flask, tmp_path: Path) -> Iterator[str]:
    base, stop = serve(full_app, tmp_path)
    yield base
    stop()


@pytest.fixture
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() or shutil.which("node") is None:
        pytest.skip("Forge browser test NOT RUN: /usr/bin/chromium or node missing (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def serve(app: Flask, tmp_path: Path) -> tuple[str, Callable[[], None]]:
    """The backend and the stub-bridge UI build on one loopback origin (as Forge's proxy makes it)."""
    ui = build_ui(tmp_path / "ui", bridge=Path(__file__).with_name("bridge_stub.js"))
    server = make_server("127.0.0.1", 0, SharedDataMiddleware(app, {"/ui": str(ui)}), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_port}", stop


def open_page(browser: object, base: str, resource: str, token: str, context: dict,
              system_token: str = "system-token", user_token: str | None = None) -> object:
    page = browser.new_page()  # type: ignore[attr-defined]
    config = {"baseUrl": base, "token": token, "systemToken": f"Bearer {system_token}",
              "userToken": f"Bearer {user_token}" if user_token else None, "context": context}
    page.add_init_script(f"window.__INFLOW_FORGE_TEST__ = {json.dumps(config)};")
    page.goto(f"{base}/ui/{resource}/index.html")
    return page


def test_the_personal_page_saves_preferences_and_exports_through_forge_remote(
        browser: object, served: str, full_app: Flask, forge_install: ForgeInstall) -> None:
    from plugin.services.settings import preference

    page = open_page(browser, served, "personal-settings", forge_install.token(principal="acc-web"),
                     {"extension": {"type": "jira:personalSettingsPage"}})
    page.get_by_role("heading", name="Preferences").wait_for()
    page.get_by_label("Pause suggestions for", exact=False).fill("7")
    page.get_by_role("button", name="Save preferences").click()
    page.get_by_text("Saved: you will not be suggested until ", exact=False).wait_for()
    # Saving another choice leaves the pause as it is (the days field is empty again).
    page.get_by_label("Do not suggest me as an expert").check()
    page.get_by_role("button", name="Save preferences").click()
    page.get_by_text("Saved: you will not be suggested.").wait_for()
    page.get_by_role("button", name="Download my data").click()
    page.get_by_role("link", name="inflow-my-data.json").wait_for()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "forge-personal-settings.png"), full_page=True)
    with full_app.extensions["inflow.db"].session() as session:
        from sqlalchemy import select

        from connect.models import Tenant
        tenant = session.scalar(select(Tenant).where(
            Tenant.forge_installation_id == forge_install.installation_id))
        saved = preference(session, tenant.id, "acc-web")
        assert saved.opted_out is True and saved.paused_until is not None


def test_a_panel_with_a_bad_token_shows_the_refusal(browser: object, served: str,
                                                    forge_install: ForgeInstall) -> None:
    expired = forge_install.token(exp=1)
    page = open_page(browser, served, "issue-panel", expired,
                     {"extension": {"type": "jira:issuePanel", "issue": {"key": "INF-1"}}})
    page.get_by_role("alert").get_by_text("Forge token expired").wait_for()
