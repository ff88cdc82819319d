"""`inflow demo` as a new user meets it: the real command, Chromium on /demo, Atlassian's all.js.

The frames load all.js from the demo (sandbox/demo/vendor: the atlassian-connect-js package's
client, what Atlassian's CDN serves), so the page's host side (sandbox/demo/static/demo.js) is
checked against the real client, and with Atlassian's CDN out of reach, as offline.
"""
from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from connect.db import Database
from plugin.models.social import Feedback, Kudos, Question
from tests.browser.conftest import ALL_JS, ARTIFACTS
from tests.conftest import ROOT, free_port
from tests.runtime.helpers import INFLOW, base_env, wait_for

pytestmark = pytest.mark.browser

CONNECT_JS = (ROOT / "tests" / "node" / "node_modules" / "atlassian-connect-js" / "dist"
              / "iframe.js")
VENDORED = ROOT / "sandbox" / "demo" / "vendor" / "all.js.gz"
# A slice keeps the suite quick; the banner must then say it is one.
ISSUES, PAGES = 1500, 300
ISSUE = "AMQ-2319"  # has a known earlier duplicate (AMQ-2094) within the slice
READY = re.compile(r"Inflow's demo is ready after (\d+) s: (\S+)/demo")


@dataclass
class Demo:
    """The running `inflow demo`: its address, data directory and log."""

    url: str
    folder: Path
    log: Path
    seconds: int

    def db(self) -> Database:
        return Database(f"sqlite:///{self.folder / 'inflow.db'}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`inflow demo` on a free port, until its ready line (it stops on SIGINT like serve)."""
    folder = tmp_path_factory.mktemp("demo")
    log = folder.parent / "demo.log"
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([*INFLOW, "demo", "--issues", str(ISSUES), "--pages", str(PAGES),
                                 "--dir", str(folder / "data")], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, env=base_env(PORT=str(port)))
    try:
        found = wait_for(lambda: READY.search(log.read_text(errors="replace"))
                         or proc.poll() is not None, 180, "the demo's ready line")
        assert isinstance(found, re.Match), log.read_text(errors="replace")[-3000:]
        yield Demo(f"http://localhost:{port}", folder / "data", log, int(found.group(1)))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_demos_all_js_is_the_atlassian_connect_js_packages() -> None:
    assert CONNECT_JS.exists(), f"{CONNECT_JS} is missing: run `make node`"
    assert gzip.decompress(VENDORED.read_bytes()) == CONNECT_JS.read_bytes()


@pytest.fixture
def page(browser: Any, demo: Demo) -> Iterator[Any]:
    """A browser page that cannot reach Atlassian's CDN: the demo serves its frames all.js."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(int(os.environ.get("PWTO", "20000")))
    tab.route(ALL_JS, lambda route: route.abort())
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert errors == []  # neither the page nor all.js in the frames threw


def _frame(tab: Any, title: str) -> Any:
    frame = tab.frame_locator(f'iframe[title="{title}"]')
    frame.locator("main").wait_for()
    return frame


def test_picking_an_issue_shows_experts_and_similar_issues_and_helped_is_recorded(
        page: Any, demo: Demo) -> None:
    page.goto(f"{demo.url}/demo")
    assert page.get_by_text("Sandbox site — real public data (Apache ActiveMQ issues, Hyperledger "
                            "wiki), not your Atlassian site").is_visible()
    assert page.get_by_text(f"{ISSUES:,} of the 4,649 ActiveMQ issues").is_visible()
    viewer = page.locator("#as").input_value()
    with page.expect_navigation():
        page.select_option("#issue", ISSUE)
    page.get_by_role("heading", level=1, name=re.compile("Specifying an IP")).wait_for()

    experts = _frame(page, "Ask an expert")
    experts.get_by_role("button", name="Ask").first.wait_for()
    reuse = _frame(page, "Reuse suggestions")
    suggestions = reuse.get_by_role("link", name=re.compile(r"^AMQ-\d+ "))
    suggestions.first.wait_for()
    keys = {text.split()[0] for text in suggestions.all_inner_texts()}
    assert len(keys) >= 3 and ISSUE not in keys
    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # README's docs/img/issue-view.png is a copy
    page.set_viewport_size({"width": 1280, "height": 1400})
    page.screenshot(path=str(ARTIFACTS / "issue-view.png"))

    helped = reuse.get_by_role("button", name="Helped").first
    helped.click()
    reuse.locator('button[aria-pressed="true"]').first.wait_for()
    reuse.get_by_text("Thanks for the feedback.").first.wait_for()
    db = demo.db()
    try:
        with db.session() as session:
            feedback = session.scalars(select(Feedback)).one()
            assert (feedback.account_id, feedback.verdict) == (viewer, "helped")
    finally:
        db.dispose()


def test_ask_link_and_thanks_reach_the_sandbox_site_and_show_on_the_page(page: Any,
                                                                         demo: Demo) -> None:
    page.goto(f"{demo.url}/demo?issue={ISSUE}&as=gtully")
    experts = _frame(page, "Ask an expert")
    experts.get_by_role("button", name="Ask").first.click()
    experts.get_by_label("Your question to", exact=False).first.fill(
        "Does binding to 127.0.0.1 work on trunk now?")
    experts.get_by_role("button", name="Send question").first.click()
    experts.locator(".status", has_text="Question posted as your comment.").first.wait_for()
    reuse = _frame(page, "Reuse suggestions")
    reuse.get_by_role("button", name="Link as duplicate").first.click()
    reuse.get_by_text("Linked ", exact=False).first.wait_for()
    contributors = _frame(page, "Contributors")
    contributors.get_by_role("button", name="Thank").first.click()
    contributors.get_by_label("Message to", exact=False).first.fill("Thanks for the pointer")
    contributors.get_by_role("button", name="Send thanks").first.click()
    contributors.locator(".status", has_text="Thanks sent.").first.wait_for()

    page.goto(f"{demo.url}/demo/sent?as=gtully")
    page.get_by_text("Does binding to 127.0.0.1 work on trunk now?").wait_for()
    assert page.locator("li", has_text=f"{ISSUE} duplicate").count() == 1
    page.goto(f"{demo.url}/demo?issue={ISSUE}&as=gtully")  # the comment is on the issue too
    assert page.locator(".comments li.posted", has_text="Does binding").count() == 1
    db = demo.db()
    try:
        with db.session() as session:
            question = session.scalars(select(Question)).one()
            kudos = session.scalars(select(Kudos).where(Kudos.kind == "thanks")).one()
        assert question.asker_account_id == kudos.from_account_id == "gtully"
    finally:
        db.dispose()


def test_a_confluence_page_has_the_byline_item_and_the_macros(page: Any, demo: Demo) -> None:
    signed: list[str] = []  # the byline dialog's URL is signed when it opens, as Confluence does
    page.on("request", lambda r: signed.append(r.url) if "/demo/frame?" in r.url else None)
    page.goto(f"{demo.url}/demo/page")
    byline = page.get_by_role("button", name=re.compile(r"^Inflow: \d+ experts? · \d+ related$"))
    byline.wait_for()  # the page has loaded and asked for the byline's title
    assert signed == []
    byline.click()
    _frame(page, "Inflow for this page").get_by_role("heading").first.wait_for()
    assert len(signed) == 1
    assert "&jwt=" in page.locator('iframe[title="Inflow for this page"]').get_attribute("src")
    for name in ("Ask an expert", "Related work", "Contributors and kudos"):
        _frame(page, name)


def test_the_admin_page_is_for_the_project_admin_and_the_personal_page_for_anyone(
        page: Any, demo: Demo) -> None:
    page.goto(f"{demo.url}/demo/admin")
    _frame(page, "Inflow project settings").get_by_role("button", name="Save settings").wait_for()
    page.goto(f"{demo.url}/demo/admin?as=gtully")
    _frame(page, "Inflow project settings").get_by_text(
        "Only administrators of this project can see Inflow's settings.").wait_for()
    page.goto(f"{demo.url}/demo/me?as=gtully")
    _frame(page, "Your Inflow page").get_by_role("button", name="Download my data").wait_for()


def test_bad_input_gets_a_clear_4xx(demo: Demo) -> None:
    for path, status, text in (("/demo?issue=not-a-key", 400, "An issue key looks like"),
                               ("/demo?issue=AMQ-999999", 404, "No issue AMQ-999999"),
                               ("/demo?as=someone-else", 400, "not one of the sandbox"),
                               ("/demo/page?page=abc", 400, "A page id is a number")):
        response = requests.get(demo.url + path, timeout=30)
        assert (response.status_code, text in response.text) == (status, True), path
    response = requests.get(f"{demo.url}/demo/token?product=bitbucket", timeout=30)
    assert response.status_code == 400 and response.json()["error"] == "bad_request"
