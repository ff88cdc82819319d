"""A real Inflow server, the fake host, and Debian's Chromium driven by Playwright."""
from __future__ import annotations

import dataclasses
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from connect.db import Database
from connect.impersonation import TOKENS
from plugin import search
from plugin.config import Settings
from plugin.content.normalize import confluence_page_to_doc
from plugin.matching.store import remember_people, upsert_item
from plugin.services.permissions import CACHE
from sandbox.site import data
from sandbox.site.server import FakeHost
from tests.conftest import ROOT, TenantAuth, build_app, install_tenant
from tests.jwt_helpers import host_token, signed_url
from tests.panels.conftest import activemq_issues, adopt_fake_host, seeded_database  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 # The host page is fulfilled by a route (no address), so Chromium's local network
                 # access checks would block the loopback iframe a real Jira page may embed.
                 "--disable-features=LocalNetworkAccessChecks"]
ALL_JS = "https://connect-cdn.atl-paas.net/all.js"
AXE = ROOT / "tests" / "node" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "tests" / "artifacts"

# A tiny stand-in for Atlassian's all.js: context tokens signed by the test, theme from the host.
AP_STUB = """window.AP = {
  context: { getToken: function (cb) { setTimeout(function () { cb(%(token)s); }, 0); } },
  resize: function () {},
  theming: { initializeTheming: function () {
    document.documentElement.setAttribute("data-color-mode", %(mode)s); } }
};"""


@dataclass
class Stack:
    """The running app (real HTTP), its database, the fake host and the installed tenant."""

    url: str
    db: Database
    host: FakeHost
    tenants: dict[str, TenantAuth]
    keys: list[str]
    page_ids: list[str] = field(default_factory=list)
    product: str = "jira"
    viewer: str = "aco"
    mode: str = "light"
    app: Any = None  # the Flask app behind `url` (a test may point it at Redis)

    @property
    def tenant(self) -> TenantAuth:
        """The installation the host page is currently acting for (Jira or Confluence)."""
        return self.tenants[self.product]

    def ap_stub(self) -> str:
        """all.js as the test serves it: a fresh context JWT for the current viewer."""
        token = host_token(self.tenant.client_key, self.tenant.secret, "GET", "/",
                           sub=self.viewer, context=True, ttl=600)
        return AP_STUB % {"token": f'"{token}"', "mode": f'"{self.mode}"'}

    def signed(self, path: str) -> str:
        """The iframe URL as the host signs it for the viewer."""
        return signed_url(self.tenant.client_key, self.tenant.secret, "GET", self.url + path,
                          sub=self.viewer)


PAGES = 200


def _wiki(db: Database, host: FakeHost) -> TenantAuth:
    """The fake site's Confluence installed too, with some Hyperledger pages learned."""
    pages = data.confluence_pages()[:PAGES]
    host.load_confluence_pages(pages)
    install_tenant(db, "confluence", base_url="https://seed.atlassian.net/wiki")
    tenant = adopt_fake_host(db, host, "confluence")
    spaces = {space["id"]: space["key"] for space in data.confluence_spaces()}
    with db.session() as session:
        for page in pages:
            upsert_item(session, tenant.tenant_id, confluence_page_to_doc(
                page, tenant.base_url, space_key=spaces.get(page.get("spaceId"))))
        # Pages carry only account ids; names come from the site's users, as the pipeline's do.
        remember_people(session, tenant.tenant_id,
                        [(u["accountId"], u["displayName"]) for u in data.confluence_users()])
    assert search.catch_up(db)
    return tenant


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory,
          seeded_database: tuple[Path, list[str]],  # noqa: F811
          activemq_issues: list[dict[str, Any]]) -> Iterator[Stack]:  # noqa: F811
    """Inflow behind a real werkzeug server on loopback, with the fake Jira site installed."""
    host = FakeHost().start()
    TOKENS.clear()
    CACHE.clear()
    path = tmp_path_factory.mktemp("browser") / "inflow.db"
    shutil.copy(seeded_database[0], path)
    shutil.copytree(seeded_database[0].parent / "index", path.parent / "index")
    app = build_app(f"sqlite:///{path}", INFLOW_APP_KEY=host.app_key,
                    INFLOW_AUTH_SERVER_URL=host.url)
    db: Database = app.extensions["inflow.db"]
    # The whole module's tests share the stack, so its index stays beside its database.
    search.bind(db, dataclasses.replace(Settings.from_env(), index_dir=path.parent / "index"))
    host.load_jira_issues(activemq_issues)
    tenants = {"jira": adopt_fake_host(db, host), "confluence": _wiki(db, host)}
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Stack(f"http://127.0.0.1:{server.server_port}", db, host, tenants,
                    seeded_database[1], [str(p["id"]) for p in data.confluence_pages()[:PAGES]],
                    app=app)
    finally:
        server.shutdown()
        thread.join(5)
        db.dispose()
        host.stop()
        TOKENS.clear()
        CACHE.clear()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium; a missing browser fails the run (CI installs it), never skips."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make browser`"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _host_page(browser: Any, stack: Stack, bypass_csp: bool) -> Any:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True,
                                  bypass_csp=bypass_csp)
    page = context.new_page()
    page.set_default_timeout(int(os.environ.get("PWTO","15000")))
    page.route(ALL_JS, lambda route: route.fulfill(status=200, body=stack.ap_stub(),
                                                   content_type="application/javascript"))
    pages: dict[str, str] = {}
    page.route(f"{stack.host.url}/host/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body=pages[route.request.url]))

    def open_view(path: str, width: int = 360, height: int = 700) -> Any:
        url = f"{stack.host.url}/host/{len(pages)}"
        pages[url] = (f'<!doctype html><html lang="en"><head><title>Host</title></head>'
                      f'<body style="margin:16px;background:#F7F8F9">'
                      f'<iframe id="inflow" title="Inflow" src="{stack.signed(path)}" '
                      f'style="width:{width}px;height:{height}px;border:0;background:#fff">'
                      f'</iframe></body></html>')
        page.goto(url)
        frame = page.frame_locator("#inflow")
        frame.locator("main").wait_for()
        return frame

    page.open_view = open_view  # type: ignore[attr-defined]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return page


@pytest.fixture
def host_page(browser: Any, stack: Stack) -> Iterator[Any]:
    """A page on the host's origin (our CSP enforced); `open_view(path)` frames an Inflow view."""
    page = _host_page(browser, stack, bypass_csp=False)
    yield page
    page.context.close()


@pytest.fixture
def audit_page(browser: Any, stack: Stack) -> Iterator[Any]:
    """Like host_page, but lets the test inject axe-core inline into the frame."""
    page = _host_page(browser, stack, bypass_csp=True)
    yield page
    page.context.close()


def inflow_frame(page: Any) -> Any:
    """The Frame object of the Inflow iframe (for axe and evaluate)."""
    return next(f for f in page.frames if f != page.main_frame)


def run_axe(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations in the Inflow frame."""
    frame = inflow_frame(page)
    frame.add_script_tag(path=str(AXE))
    result = frame.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"]][:3]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def shoot(page: Any, name: str) -> None:
    """Save a screenshot of the framed view under tests/artifacts/."""
    page.locator("#inflow").screenshot(path=str(ARTIFACTS / f"{name}.png"))
