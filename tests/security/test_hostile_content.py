"""Hostile content in, inert and bounded panels out.

A corpus of hostile issues (script tags, event handlers, `javascript:` links, attribute
break-outs, hostile names and avatars, huge and deeply nested ADF, oversized and invalid bodies)
goes in as signed webhooks, through the pipeline, and out through every Jira panel. The panels'
HTML is parsed: no script but the app's own, no `on*` attribute, no `javascript:` URL, and a
bounded size. Bodies the intake must refuse get a 4xx and store nothing.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from connect.db import Database
from connect.models import WebhookEvent
from plugin.models.content import Item
from plugin.pipeline import events
from plugin.services.permissions import CACHE
from sandbox.site import data
from sandbox.site.server import FakeHost
from tests.conftest import TenantAuth, build_app
from tests.sandbox_site import install_into

SCRIPT = '<script>alert("xss")</script>'
HANDLERS = '<img src=x onerror=alert(1)><svg onload=alert(2)><a href="#" onclick="alert(3)">x</a>'
LINKS = "[click me|javascript:alert(4)] <a href='javascript:alert(5)'>y</a> JaVaScRiPt:alert(6)"
BREAKOUT = '"><script>alert(7)</script><div title="'
HOSTILE = " ".join([SCRIPT, HANDLERS, LINKS, BREAKOUT])
OWN_SCRIPTS = ("/static/", "https://connect-cdn.atl-paas.net/")
MAX_PANEL_BYTES = 512 * 1024
WEBHOOK = "/webhooks/jira/issue_updated"


class Inspector(HTMLParser):
    """Collects what would execute in a browser: scripts, handlers, javascript: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[str] = []
        self.js_urls: list[str] = []
        self._in_script = False
        self.inline_code = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True
        for name, value in attrs:
            if name.lower().startswith("on"):
                self.handlers.append(f"<{tag} {name}={value!r}>")
            compact = "".join((value or "").split()).lower()
            if name.lower() in ("href", "src", "action", "formaction", "xlink:href") and \
                    compact.startswith(("javascript:", "vbscript:", "data:text/html")):
                self.js_urls.append(f"<{tag} {name}={value!r}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, text: str) -> None:
        if self._in_script:
            self.inline_code += text


def assert_inert(html: str, where: str) -> None:
    """No executable markup but the app's own external scripts."""
    inspector = Inspector()
    inspector.feed(html)
    foreign = [s for s in inspector.scripts if not (s.get("src") or "").startswith(OWN_SCRIPTS)]
    assert not foreign, f"{where}: foreign <script> {foreign}"
    assert not inspector.inline_code.strip(), f"{where}: inline script {inspector.inline_code[:200]}"
    assert not inspector.handlers, f"{where}: event handlers {inspector.handlers[:5]}"
    assert not inspector.js_urls, f"{where}: script URLs {inspector.js_urls[:5]}"


def _person(account: str, name: str) -> dict[str, Any]:
    return {"accountId": account, "name": account, "key": account, "displayName": name,
            "avatarUrls": {"48x48": "javascript:alert(8)"}}


def hostile_issues(base: dict[str, Any]) -> list[dict[str, Any]]:
    """Real issue bodies with hostile text in every field a panel can show."""
    issues = []
    for n, (summary, body) in enumerate([
            (f"Broker crash {SCRIPT}", HOSTILE),
            (f"Broker queue {HANDLERS}", f"{{html}}{HOSTILE}{{html}} {LINKS}"),
            (f"Broker link {LINKS}", "x" * 600_000 + HOSTILE),  # a big description, under 1 MiB
            (f"Broker {BREAKOUT}", "\u202e\u0000\ud7ff " + HOSTILE)], start=1):
        issue = copy.deepcopy(base)
        issue["key"], issue["id"] = f"AMQ-{9000 + n}", str(99000 + n)
        fields = issue["fields"]
        fields.update(summary=summary, description=body, labels=["<b>x</b>", "javascript:y"])
        evil = _person(f"evil-{n}", f"Mallory {SCRIPT}{HANDLERS}")
        fields.update(reporter=evil, creator=evil, assignee=_person(f"eve-{n}", BREAKOUT))
        fields["comment"] = {"comments": [
            {"id": str(n * 10 + c), "author": _person(f"c-{n}-{c}", f"Trudy {HANDLERS}"),
             "body": HOSTILE, "created": fields["created"], "updated": fields["created"]}
            for c in range(3)], "total": 3}
        issues.append(issue)
    return issues


def nested_adf(depth: int) -> dict[str, Any]:
    """An ADF document whose blockquotes nest `depth` deep, with hostile text at the bottom."""
    node: dict[str, Any] = {"type": "paragraph", "content": [{"type": "text", "text": HOSTILE}]}
    for _ in range(depth):
        node = {"type": "blockquote", "content": [node]}
    return {"type": "doc", "version": 1, "content": [node]}


def huge_adf(paragraphs: int) -> dict[str, Any]:
    """A flat ADF document of many hostile paragraphs, links and marks."""
    para = {"type": "paragraph", "content": [
        {"type": "text", "text": SCRIPT, "marks": [{"type": "link",
                                                    "attrs": {"href": "javascript:alert(9)"}}]},
        {"type": "text", "text": HANDLERS}]}
    return {"type": "doc", "version": 1, "content": [para] * paragraphs}


@pytest.fixture
def site(tmp_path: Path, fake_host: FakeHost) -> Iterator[tuple[Any, Database, TenantAuth]]:
    CACHE.clear()
    app = build_app(f"sqlite:///{tmp_path / 'inflow.db'}", INFLOW_APP_KEY=fake_host.app_key,
                    INFLOW_AUTH_SERVER_URL=fake_host.url)
    db: Database = app.extensions["inflow.db"]
    auth = install_into(fake_host, db, "jira")
    yield app, db, auth
    db.dispose()
    CACHE.clear()


def deliver(app: Any, auth: TenantAuth, body: bytes | dict[str, Any], n: int) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return app.test_client().post(WEBHOOK, data=raw, content_type="application/json", headers={
        **auth.headers("POST", WEBHOOK, sub=None), "X-Atlassian-Webhook-Identifier": f"h-{n}"})


def process_all(db: Database) -> None:
    with db.session() as session:
        pending = session.scalars(select(WebhookEvent.id).where(
            WebhookEvent.processed_at.is_(None))).all()
    for event_id in pending:
        with db.session() as session:
            events.process_event(session, event_id, lambda tenant: None)


def test_hostile_issues_come_out_of_every_panel_inert_and_bounded(
        site: tuple[Any, Database, TenantAuth], fake_host: FakeHost) -> None:
    app, db, auth = site
    real = data.jira_dataset("apache-activemq")[:30]
    issues = hostile_issues(real[0])
    fake_host.load_jira_issues(real + issues)
    for n, issue in enumerate(real + issues):
        body = {"webhookEvent": "jira:issue_updated", "issue": issue}
        assert deliver(app, auth, body, n).status_code == 202
    process_all(db)
    with db.session() as session:
        stored = set(session.scalars(select(Item.key)))
    assert {i["key"] for i in issues} <= stored
    client = app.test_client()
    shown = ""
    for issue in issues:
        for panel in ("experts", "reuse", "contributors"):
            url = f"/jira/panels/{panel}?issueKey={issue['key']}&projectKey=AMQ"
            response = client.get(url, headers=auth.headers("GET", url, sub="aco"))
            html = response.get_data(as_text=True)
            assert response.status_code == 200, (url, response.status_code)
            assert len(response.get_data()) < MAX_PANEL_BYTES, (url, len(response.get_data()))
            assert_inert(html, url)
            shown += html
            api = client.get(f"/api/content/jira/{issue['key']}/{panel}",
                             headers=auth.context_headers(sub="aco"))
            assert api.status_code == 200 and api.mimetype == "application/json"
            assert len(api.get_data()) < MAX_PANEL_BYTES
    # The hostile text was shown, escaped, rather than silently dropped.
    assert "&lt;script&gt;" in shown


def test_deep_and_huge_adf_is_processed_or_refused_but_never_breaks_anything(
        site: tuple[Any, Database, TenantAuth]) -> None:
    app, db, auth = site
    base = copy.deepcopy(data.jira_dataset("apache-activemq")[1])
    for n, (depth_or_size, builder) in enumerate([(60, nested_adf), (3000, huge_adf)]):
        issue = copy.deepcopy(base)
        issue["key"], issue["id"] = f"AMQ-{9100 + n}", str(99100 + n)
        issue["fields"]["description"] = builder(depth_or_size)
        issue["fields"]["comment"] = {"comments": [{
            "id": "1", "author": _person("adf", "ADF"), "body": builder(depth_or_size),
            "created": issue["fields"]["created"]}], "total": 1}
        response = deliver(app, auth, {"webhookEvent": "jira:issue_updated", "issue": issue}, n)
        assert response.status_code in (202, 413), response.status_code
    process_all(db)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent).where(
            WebhookEvent.processed_at.is_(None))) == 0
        for item in session.scalars(select(Item)):
            assert "<script>" not in item.title and len(item.text) < 2_000_000


@pytest.mark.parametrize("case", ["1 MiB summary", "deeply nested JSON", "invalid UTF-8",
                                  "not an object", "NaN"])
def test_bodies_the_intake_refuses_get_a_4xx_and_store_nothing(
        site: tuple[Any, Database, TenantAuth], case: str) -> None:
    app, db, auth = site
    issue = {"key": "AMQ-1", "fields": {"summary": "x"}}
    body: bytes = {
        "1 MiB summary": lambda: json.dumps({"issue": {**issue, "fields": {
            "summary": "s" * (1024 * 1024)}}}).encode(),
        "deeply nested JSON": lambda: b'{"issue": ' + b'{"a": ' * 100_000 + b"1" +
        b"}" * 100_001,
        "invalid UTF-8": lambda: b'{"issue": {"key": "AMQ-1", "fields": {"summary": "\xff\xfe"}}}',
        "not an object": lambda: b'[{"issue": 1}]',
        "NaN": lambda: b'{"timestamp": NaN, "issue": {"key": "AMQ-1"}}',
    }[case]()
    response = deliver(app, auth, body, 0)
    assert 400 <= response.status_code < 500, response.status_code
    assert response.is_json and response.get_json()["error"]
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
