"""The sandbox site as a host: signed installs, signed frames and tokens, its own endpoints."""
from __future__ import annotations

import hashlib
import html
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from connect.db import Database
from connect.models import Tenant
from plugin.app import create_app
from plugin.config import Settings
from sandbox.site.install import install_payload
from sandbox.site.server import FakeHost
from sandbox.site.signing import InstallSigner
from sandbox.site.views import _mentions_named
from tests.conftest import ROOT, free_port

ISSUES = 300


@dataclass
class App:
    """Inflow over real HTTP, trusting the sandbox's install keys, as `inflow demo` runs it."""

    url: str
    app: Flask
    db: Database


@pytest.fixture
def app(fake_host: FakeHost, tmp_path: Path) -> Iterator[App]:
    fake_host.load_jira_dataset("apache-activemq", limit=ISSUES)
    fake_host.load_confluence_dataset(limit=20)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings.from_env({
        "INFLOW_BASE_URL": url, "DATABASE_URL": f"sqlite:///{tmp_path / 'inflow.db'}",
        "INFLOW_INSTALL_KEYS_URL": f"{fake_host.url}/_sandbox/install-keys",
        "INFLOW_AUTH_SERVER_URL": fake_host.url, "INFLOW_SANDBOX_URL": fake_host.url})
    application = create_app({"TESTING": True}, settings=settings)
    db: Database = application.extensions["inflow.db"]
    db.create_all()
    server = make_server("127.0.0.1", port, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield App(url, application, db)
    finally:
        server.shutdown()
        thread.join(5)
        db.dispose()


def _control(host: FakeHost, method: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(method, f"{host.url}/_sandbox{path}", timeout=30, **kwargs)


def test_the_site_installs_the_app_with_a_signed_install_and_its_frames_are_trusted(
        fake_host: FakeHost, app: App) -> None:
    answer = _control(fake_host, "POST", "/install", json={"app_url": app.url})
    assert answer.status_code == 200, answer.text
    with app.db.session() as session:
        stored = {t.product_type: (t.client_key, t.shared_secret, t.base_url)
                  for t in session.scalars(select(Tenant))}
    assert stored == {p: (i.client_key, i.secret, fake_host.base_url(p))
                      for p, i in fake_host.installs.items()}
    assert answer.json()["installed"] == {p: i.client_key for p, i in fake_host.installs.items()}

    key = max(fake_host.store.issues, key=lambda k: int(k.split("-")[1]))
    src = _control(fake_host, "GET", "/frame/jira/inflow-experts-panel", params={
        "as": "chirino", "issue.key": key, "project.key": "AMQ"}).json()["src"]
    assert src.startswith(f"/jira/panels/experts?issueKey={key}&projectKey=AMQ&jwt=")
    panel = requests.get(app.url + src, timeout=30)
    assert panel.status_code == 200 and "Ask an expert" in panel.text
    token = _control(fake_host, "GET", "/token/jira", params={"as": "chirino"}).json()["token"]
    api = requests.get(f"{app.url}/api/content/jira/{key}/reuse", timeout=30,
                       headers={"Authorization": f"JWT {token}"})
    assert api.status_code == 200 and api.json()["panel"] == "reuse"
    tampered = src.replace("projectKey=AMQ", "projectKey=ZOO")  # the qsh covers the query
    assert requests.get(app.url + tampered, timeout=30).status_code == 401


def test_the_demos_frames_load_atlassians_all_js_from_the_demo_not_its_cdn(
        fake_host: FakeHost, app: App) -> None:
    assert _control(fake_host, "POST", "/install", json={"app_url": app.url}).status_code == 200
    src = _control(fake_host, "GET", "/frame/jira/inflow-reuse-panel", params={
        "as": "chirino", "issue.key": "AMQ-1", "project.key": "AMQ"}).json()["src"]
    panel = requests.get(app.url + src, timeout=30).text
    assert '<script src="/demo/all.js"' in panel and "connect-cdn" not in panel  # works offline
    served = requests.get(f"{app.url}/demo/all.js", timeout=30)
    assert served.status_code == 200 and served.headers["Content-Type"].startswith("text/javascript")
    assert served.headers["Content-Encoding"] == "gzip" and "AP" in served.text  # requests unzips
    plain = requests.get(f"{app.url}/demo/all.js", timeout=30, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and plain.content == served.content
    assert hashlib.sha256(plain.content).hexdigest() in (ROOT / "sandbox/demo/vendor/README.md").read_text()


def test_the_demo_signs_the_byline_dialog_when_it_is_opened_not_with_the_page(
        fake_host: FakeHost, app: App) -> None:
    assert _control(fake_host, "POST", "/install", json={"app_url": app.url}).status_code == 200
    page = requests.get(f"{app.url}/demo/page", timeout=30)
    assert page.status_code == 200, page.text
    slot = re.search(r'<div class="ap"[^>]*data-module="inflow-byline"[^>]*>', page.text)
    assert slot and "jwt" not in slot.group(0)  # a token rendered now expires before it is opened
    sign = re.search(r'data-sign="([^"]+)"', slot.group(0))
    assert sign
    src = requests.get(app.url + html.unescape(sign.group(1)), timeout=30).json()["src"]
    assert src.startswith("/confluence/byline?pageId=") and "&jwt=" in src
    byline = requests.get(app.url + src, timeout=30)
    assert byline.status_code == 200 and "<main>" in byline.text


@pytest.mark.parametrize(("query", "status", "error"), [
    ("product=bitbucket&module=inflow-byline", 400, "bad_request"),
    ("product=confluence&module=../catalog", 400, "bad_request"),
    ("product=confluence&module=inflow-byline&as=someone-else", 400, "bad_request"),
    ("product=confluence&module=inflow-nothing", 404, "not_found"),
])
def test_the_demo_frame_signer_refuses_bad_input_in_json(fake_host: FakeHost, app: App,
                                                         query: str, status: int,
                                                         error: str) -> None:
    assert _control(fake_host, "POST", "/install", json={"app_url": app.url}).status_code == 200
    answer = requests.get(f"{app.url}/demo/frame?{query}", timeout=30)
    assert (answer.status_code, answer.json()["error"]) == (status, error)


def test_an_install_signed_with_an_unpublished_key_changes_nothing(fake_host: FakeHost,
                                                                   app: App) -> None:
    forger = InstallSigner()  # never published by the site's keys service
    payload = install_payload(fake_host, "jira", "io.inflow.app")
    token = forger.lifecycle_token(payload["clientKey"], app.url, "/installed")
    answer = requests.post(f"{app.url}/installed", json=payload, timeout=30,
                           headers={"Authorization": f"JWT {token}"})
    assert answer.status_code == 401
    with app.db.session() as session:
        assert session.scalars(select(Tenant)).all() == []


def test_the_catalog_offers_issues_with_known_duplicates_people_and_the_admin(
        fake_host: FakeHost) -> None:
    fake_host.load_jira_dataset("apache-activemq", limit=ISSUES)
    fake_host.set_project_admin("chirino", "AMQ")
    catalog = _control(fake_host, "GET", "/catalog").json()
    issues = catalog["jira"]["issues"]
    assert issues[0]["duplicate_of"] in fake_host.store.issues
    assert {i["key"] for i in issues} <= set(fake_host.store.issues)
    assert len(catalog["jira"]["people"]) == 8
    assert catalog["jira"]["admins"] == [{"account_id": "chirino", "project": "AMQ"}]
    assert (catalog["jira"]["issue_count"], catalog["jira"]["issue_total"]) == (ISSUES, 4649)


def test_nobody_acts_as_an_apps_account(fake_host: FakeHost) -> None:
    fake_host.load_jira_dataset("apache-activemq")  # all of it: its commit bot is the fourth busiest
    people = [p["account_id"] for p in _control(fake_host, "GET", "/catalog").json()["jira"]["people"]]
    assert len(people) == 8 and "jira-bot" not in people and "tabish121" in people


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), [
    ("POST", "/install", {"json": {}}, 400),
    ("POST", "/install", {"json": {"app_url": "ftp://x"}}, 400),
    ("POST", "/install", {"json": {"app_url": "http://127.0.0.1:9", "products": ["bamboo"]}},
     400),
    ("POST", "/install", {"json": {"app_url": "http://127.0.0.1:9"}}, 502),
    ("GET", "/install-keys/not-a-kid", {}, 404),
    ("GET", "/frame/bitbucket/inflow-experts-panel", {}, 404),
    ("GET", "/frame/jira/inflow-experts-panel", {}, 404),  # nothing installed yet
    ("GET", "/frame/jira/inflow-experts-panel", {"params": {"part": "style"}}, 400),
    ("GET", "/token/bitbucket", {}, 404),
    ("GET", "/issues/AMQ-1", {}, 404),
    ("GET", "/pages/1", {}, 404),
])
def test_the_sandbox_endpoints_refuse_bad_input(fake_host: FakeHost, method: str, path: str,
                                                kwargs: dict[str, object], status: int) -> None:
    answer = _control(fake_host, method, path, **kwargs)
    assert answer.status_code == status, answer.text


def test_what_was_sent_names_the_page_a_comment_is_on(fake_host: FakeHost) -> None:
    page_id = fake_host.load_confluence_dataset(limit=3)[0]
    comment = fake_host.add_footer_comment(page_id, "someone", "<p>Any idea?</p>")
    with fake_host.lock:
        fake_host.store.posted_footer_comments[page_id].append(comment)
    sent = _control(fake_host, "GET", "/activity").json()["comments"]
    assert [(c["on"], c["title"]) for c in sent] == [(page_id, fake_host.store.pages[page_id]["title"])]


def test_what_was_sent_names_the_people_a_confluence_comment_mentions() -> None:
    # Storage format mentions by account id; the page shows the name, as Confluence does.
    names = {"557058:3f2a-9b": "Ann Lee"}
    assert _mentions_named("Could @557058:3f2a-9b help? Mail a@b", names) == "Could @Ann Lee help? Mail a@b"
    assert _mentions_named("@unknown-1 asked", names) == "@unknown-1 asked"
