"""The sandbox: a fake Atlassian Cloud site (Jira + Confluence) over real HTTP on loopback.

It checks every inbound app JWT as Atlassian does (HS256 with the install's shared secret, iss = app
key, exp, qsh of the exact request relative to the product's base URL) or a Bearer token it issued
through its own OAuth 2.0 JWT bearer endpoint, and answers 401 otherwise.
"""
from __future__ import annotations

import copy
import itertools
import re
import secrets
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt as pyjwt
from flask import Flask, Response, g, jsonify, redirect, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from connect.jwt import CONTEXT_QSH, parse_query, query_string_hash
from sandbox.site import data
from sandbox.site.signing import InstallSigner

DEFAULT_APP_KEY = "io.inflow.app"
CONTROL_PREFIX = "/_sandbox"  # the sandbox's own endpoints (sandbox/site/control.py)
JWT_LEEWAY = 30
ACCESS_TOKEN_TTL = 900
ASSERTION_MAX_TTL = 60


class Rejected(Exception):
    """An inbound request without valid credentials (401)."""


@dataclass
class Install:
    """The app's installation in one product of this site."""

    product: str  # jira | confluence
    client_key: str
    secret: str
    oauth_client_id: str
    base_path: str  # "" for Jira, "/wiki" for Confluence


@dataclass
class Call:
    """One request the site received."""

    method: str
    path: str
    query: list[tuple[str, str]]
    json: Any
    account_id: str | None = None  # the impersonated user; None when the app acted as itself
    auth: str = "none"  # jwt | bearer | none
    product: str = "jira"
    status: int | None = None
    rejected: str | None = None
    at: float = field(default_factory=time.monotonic)  # when it arrived (monotonic clock)

    def param(self, name: str) -> str | None:
        """The first value of a query parameter."""
        return next((v for k, v in self.query if k == name), None)


@dataclass
class Injection:
    prefix: str
    status: int
    remaining: int
    retry_after: str | None
    delay: float


@dataclass
class Store:
    """Everything the site holds; mutated only under FakeHost.lock."""

    issues: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> v2 source issue
    issue_projects: dict[str, str] = field(default_factory=dict)
    issue_ids: dict[str, str] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> page or blogpost
    page_kinds: dict[str, str] = field(default_factory=dict)
    spaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    footer_comments: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    posted_comments: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    posted_footer_comments: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list))
    groups: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    links: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    denied: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    project_admins: set[tuple[str, str]] = field(default_factory=set)
    account_status: dict[str, str] = field(default_factory=dict)
    failed_webhooks: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # token -> install, account, exp


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # per-request lines are noise in tests
        return None


class _KeepAliveHandler(_QuietHandler):
    # HTTP/1.1 keeps a caller's connection open between calls, as Jira and Confluence Cloud do.
    protocol_version = "HTTP/1.1"


class FakeHost:
    """One Jira + Confluence Cloud site serving the sandbox data; tests start one per test."""

    def __init__(self, app_key: str = DEFAULT_APP_KEY, keep_calls: int | None = None,
                 latency: float = 0.0, keep_alive: bool = False) -> None:
        self.app_key = app_key
        # Benchmarks keep connections open as a real site does (a connection and a server thread
        # per call cost both sides CPU no site puts on its callers); tests close each one, so a
        # call abandoned by a timeout never leaves a half-used connection to the next test step.
        self.keep_alive = keep_alive
        # Seconds each REST call waits before it is answered, as a real site's round trip does
        # (Jira Cloud answers in roughly 100-300 ms); 0 in tests and the demo, set by the benchmarks.
        self.latency = latency
        self.lock = threading.RLock()
        self.store = Store()
        # Where a person's link to an issue or page leads (`make demo`'s views); None: nowhere.
        self.viewer_url: str | None = None
        # Tests read every call; a long-running sandbox keeps the latest `keep_calls` or so.
        self.calls: list[Call] = []
        self.keep_calls = keep_calls
        self.injections: list[Injection] = []
        # Issues a bulk fetch lists under `issueErrors` (Jira's "could not return it this time").
        self.bulk_errors: set[str] = set()
        # Results of JQL searches that later pages continue: (cursor, jql, account) -> issue keys.
        self.jql_cursors: dict[tuple[int, str, str | None], list[str]] = {}
        self.jql_cursor_seq = itertools.count(1)
        self.cycle_period_hours = 168
        self.app_account_id = "557058:inflow-app-user"
        self.cloud_id = str(uuid.uuid4())  # Forge reaches the site at /ex/<product>/<cloud_id>
        suffix = uuid.uuid4().hex[:8]
        self.installs = {
            "jira": Install("jira", f"jira-{suffix}", secrets.token_hex(32), f"oauth-jira-{suffix}", ""),
            "confluence": Install("confluence", f"confluence-{suffix}", secrets.token_hex(32),
                                  f"oauth-confluence-{suffix}", "/wiki"),
        }
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._signer: InstallSigner | None = None
        self.descriptors: dict[str, dict[str, Any]] = {}  # product -> installed app's descriptor
        self.jira_sets: list[str] = []  # the sandbox data sets served (their duplicates are known)
        self.url = ""
        self._add_user({"accountId": self.app_account_id, "displayName": "Inflow",
                        "accountType": "app"})

    # ---------- lifecycle ----------

    def start(self, port: int = 0) -> FakeHost:
        """Serve on loopback (a free port unless given) in a background thread."""
        from sandbox.site.routes import build_app

        handler = _KeepAliveHandler if self.keep_alive else _QuietHandler
        self._server = make_server("127.0.0.1", port, build_app(self), threaded=True,
                                   request_handler=handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        # A short poll interval keeps stop() (and so each test's teardown) quick.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True, name="sandbox-site")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def signer(self) -> InstallSigner:
        """The key that signs this site's installs (made on first use: RSA keys take a while)."""
        with self.lock:
            if self._signer is None:
                self._signer = InstallSigner()
            return self._signer

    # ---------- identity of the installs (contract names refer to the Jira install) ----------

    @property
    def client_key(self) -> str:
        return self.installs["jira"].client_key

    @property
    def secret(self) -> str:
        return self.installs["jira"].secret

    @property
    def oauth_client_id(self) -> str:
        return self.installs["jira"].oauth_client_id

    def base_url(self, product: str = "jira") -> str:
        """The product's base URL as an install payload would carry it."""
        return self.url + self.installs[product].base_path

    # ---------- data ----------

    def load_jira_issues(self, issues: list[dict[str, Any]]) -> list[str]:
        """Serve these v2-shaped issues (as v3 on the wire); returns their keys."""
        keys = self._add_issues(issues)
        with self.lock:
            for issue in issues:
                for person in data.people_v2(issue):
                    self.store.users.setdefault(person["accountId"], person)
        return keys

    def load_jira_dataset(self, name: str, limit: int | None = None) -> list[str]:
        """Serve one of the sandbox Jira sets (parsed once per process, converted on demand)."""
        issues = data.jira_dataset(name)
        keys = self._add_issues(issues[:limit] if limit else issues)
        self.jira_sets.append(name)
        with self.lock:
            for account_id, person in data.dataset_people(name).items():
                self.store.users.setdefault(account_id, person)
        return keys

    def _add_issues(self, issues: list[dict[str, Any]]) -> list[str]:
        keys = []
        with self.lock:
            for issue in issues:
                project = data.project_of(issue)
                self.store.issues[issue["key"]] = issue
                self.store.issue_ids[str(issue["id"])] = issue["key"]
                self.store.issue_projects[issue["key"]] = project["key"]
                self.store.projects.setdefault(project["key"], project)
                keys.append(issue["key"])
        return keys

    def project_key_of(self, issue_key: str) -> str:
        return self.store.issue_projects[issue_key]

    def issue_updated(self, issue_key: str) -> str | None:
        """When the issue last changed, counting comments posted through the API."""
        with self.lock:
            issue = self.store.issues[issue_key]
            posted = self.store.posted_comments.get(issue_key)
            updated = issue["fields"].get("updated") or issue["fields"].get("created")
        return max(updated or "", posted[-1]["created"]) if posted else updated

    def load_confluence_pages(self, pages: list[dict[str, Any]], kind: str = "page") -> list[str]:
        """Serve these v2-shaped pages (kind 'page' or 'blogpost'); returns their ids."""
        with self.lock:
            if not self.store.spaces:
                for space in data.confluence_spaces():
                    self.store.spaces[space["id"]] = space
                for user in data.confluence_users():
                    self._add_user(user)
            for page in pages:
                self.store.pages[str(page["id"])] = page
                self.store.page_kinds[str(page["id"])] = kind
        return [str(page["id"]) for page in pages]

    def load_confluence_dataset(self, limit: int | None = None) -> list[str]:
        """Serve the Hyperledger pages of sandbox.datasets."""
        pages = data.confluence_pages()
        return self.load_confluence_pages(pages[:limit] if limit else pages)

    def _add_user(self, user: dict[str, Any]) -> None:
        converted = data.user_v3(user)
        if converted:
            self.store.users.setdefault(converted["accountId"], converted)

    def add_footer_comment(self, page_id: str, account_id: str, storage: str,
                           created_at: str = "2024-10-04T00:00:00.000Z") -> dict[str, Any]:
        """A footer comment on a page, as someone wrote it in the UI."""
        with self.lock:
            number = 100000 + sum(map(len, self.store.footer_comments.values()))
        comment = {"id": str(number),
                   "status": "current", "title": "Re: comment", "pageId": str(page_id),
                   "version": {"number": 1, "authorId": account_id, "createdAt": created_at,
                               "message": "", "minorEdit": False},
                   "body": {"storage": {"representation": "storage", "value": storage}}}
        with self.lock:
            self.store.footer_comments[str(page_id)].append(comment)
        return comment

    def add_failed_webhook(self, body: dict[str, Any], url: str,
                           failure_time_ms: int | None = None) -> None:
        """A webhook delivery the site gave up on (served by /rest/api/3/webhook/failed)."""
        with self.lock:
            self.store.failed_webhooks.append({
                "id": str(len(self.store.failed_webhooks) + 1), "body": json_text(body),
                "url": url, "failureTime": failure_time_ms or int(time.time() * 1000)})

    # ---------- permissions and privacy ----------

    def deny(self, account_id: str, target: str) -> None:
        """The account may not see this issue key, project key, page id or space key."""
        with self.lock:
            self.store.denied[account_id].add(target)

    def set_project_admin(self, account_id: str, project_key: str) -> None:
        """The account administers the project (ADMINISTER_PROJECTS)."""
        with self.lock:
            self.store.project_admins.add((account_id, project_key))

    def set_account_status(self, account_id: str, status: str) -> None:
        """What /app/report-accounts/ says of this account: 'closed' or 'updated'."""
        assert status in ("closed", "updated")
        with self.lock:
            self.store.account_status[account_id] = status

    def deactivate(self, account_id: str) -> None:
        """The account is deactivated (someone left): Jira shows `active: false` wherever it
        appears, Confluence's user lookups `accountStatus: inactive`."""
        self._change_user(account_id, active=False)

    def rename(self, account_id: str, display_name: str) -> None:
        """The person changed the name their profile shows, wherever it appears."""
        self._change_user(account_id, displayName=display_name)

    def make_app(self, account_id: str) -> None:
        """The account is an app's (Automation for Jira, an integration): `accountType: app` wherever it appears."""
        self._change_user(account_id, accountType="app")

    def _change_user(self, account_id: str, **changes: Any) -> None:
        with self.lock:
            if account_id in self.store.users:
                self.store.users[account_id] = {**self.store.users[account_id], **changes}
            for key, issue in list(self.store.issues.items()):
                changed = data.with_user(issue, account_id, **changes)
                if changed is not None:
                    self.store.issues[key] = changed

    def can_see(self, account_id: str | None, *targets: str | None) -> bool:
        """The app sees everything; a user sees what no deny() covers."""
        if account_id is None:
            return True
        return not (self.store.denied.get(account_id, set()) & {t for t in targets if t})

    def has_project_permission(self, account_id: str | None, permission: str,
                               project_key: str) -> bool:
        if account_id is None:
            return True
        if permission in ("ADMINISTER_PROJECTS", "ADMINISTER"):
            return (account_id, project_key) in self.store.project_admins
        return self.can_see(account_id, project_key)

    # ---------- mutations visible to tests ----------

    def comments(self, key: str) -> list[dict[str, Any]]:
        """Comments posted through the REST API on this issue (v3, 'author' a user) or page (v2)."""
        with self.lock:
            return (list(self.store.posted_comments.get(key, []))
                    + list(self.store.posted_footer_comments.get(key, [])))

    def add_to_group(self, account_id: str, group: str) -> None:
        """The account is a member of the group (served by /rest/api/3/user/groups)."""
        with self.lock:
            self.store.groups[account_id].add(group)

    @property
    def links(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.store.links)

    @property
    def notifications(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.store.notifications)

    def calls_to(self, path_prefix: str, method: str | None = None) -> list[Call]:
        """Recorded calls whose path starts with the prefix."""
        with self.lock:
            return [c for c in self.calls if c.path.startswith(path_prefix)
                    and (method is None or c.method == method.upper())]

    # ---------- failure injection ----------

    def inject(self, path_prefix: str, status: int, times: int = 1,
               retry_after: float | str | None = None, delay: float = 0.0) -> None:
        """The next `times` requests under the prefix get `status` (after `delay` seconds).

        A status below 400 with a delay only slows the real answer down.
        """
        value = None if retry_after is None else (
            retry_after if isinstance(retry_after, str) else str(int(retry_after)))
        with self.lock:
            self.injections.append(Injection(path_prefix, status, times, value, delay))

    def take_injection(self, path: str) -> Injection | None:
        with self.lock:
            for injection in self.injections:
                if injection.remaining > 0 and path.startswith(injection.prefix):
                    injection.remaining -= 1
                    return injection
        return None

    # ---------- authentication ----------

    def install_for_path(self, path: str) -> Install:
        wiki = self.installs["confluence"]
        if path == wiki.base_path or path.startswith(wiki.base_path + "/"):
            return wiki
        return self.installs["jira"]

    def authenticate(self, method: str, raw_path: str, raw_query: str,
                     authorization: str) -> tuple[Install, str | None, str]:
        """(install, impersonated account or None, auth kind), or Rejected."""
        install = self.install_for_path(raw_path)
        scheme, _, credential = authorization.partition(" ")
        if scheme == "Bearer" and credential:
            return install, self._bearer_account(install, credential), "bearer"
        token = credential if scheme == "JWT" else dict(parse_qsl(raw_query)).get("jwt")
        if not token:
            raise Rejected("No credentials")
        self._verify_app_jwt(install, token, method, raw_path, raw_query)
        return install, None, "jwt"

    def issue_forge_token(self, product: str = "jira", account_id: str | None = None,
                          ttl: float = 7200) -> str:
        """A token as Forge hands them to a remote: the app's (no account) or a user's."""
        token = f"forge-{secrets.token_urlsafe(24)}"
        with self.lock:
            self.store.tokens[token] = (product, account_id, time.time() + ttl)
        return token

    def revoke_forge_tokens(self) -> None:
        """The app was uninstalled: every token Forge handed out is refused from now on."""
        with self.lock:
            for token in [t for t in self.store.tokens if t.startswith("forge-")]:
                del self.store.tokens[token]

    def forge_api_host(self) -> str:
        """What a FIT's apiBaseUrl starts with for this site (before /ex/<product>/<cloud>)."""
        return self.url

    def _bearer_account(self, install: Install, token: str) -> str | None:
        with self.lock:
            issued = self.store.tokens.get(token)
        if issued is None:
            raise Rejected("Unknown access token")
        product, account_id, expires = issued
        if product != install.product:
            raise Rejected("Access token issued for another product")
        if expires < time.time():
            raise Rejected("Access token expired")
        return account_id

    def _verify_app_jwt(self, install: Install, token: str, method: str, raw_path: str,
                        raw_query: str) -> None:
        try:
            header = pyjwt.get_unverified_header(token)
            if header.get("alg") != "HS256":
                raise Rejected("Only HS256 app tokens are accepted")
            claims = pyjwt.decode(token, install.secret, algorithms=["HS256"], leeway=JWT_LEEWAY,
                                  options={"require": ["iss", "iat", "exp", "qsh"]})
        except pyjwt.PyJWTError as exc:
            raise Rejected(f"Invalid JWT: {exc}") from exc
        if claims["iss"] != self.app_key:
            raise Rejected("JWT issuer is not the installed app")
        if claims["exp"] - claims["iat"] > 3600:
            raise Rejected("JWT lifetime too long")
        expected = query_string_hash(method, raw_path, parse_query(raw_query), install.base_path)
        if claims["qsh"] == CONTEXT_QSH or claims["qsh"] != expected:
            raise Rejected("JWT qsh does not match the request")

    def issue_access_token(self, form: dict[str, str]) -> tuple[dict[str, Any], int]:
        """The OAuth 2.0 JWT bearer grant: verify the assertion, mint a user token."""
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return {"error": "unsupported_grant_type"}, 400
        if "ACT_AS_USER" not in (form.get("scope") or "").split():
            return {"error": "invalid_scope"}, 400
        try:
            account_id, install = self._verify_assertion(form.get("assertion") or "")
        except Rejected as exc:
            return {"error": "invalid_grant", "error_description": str(exc)}, 400
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.store.tokens[token] = (install.product, account_id, time.time() + ACCESS_TOKEN_TTL)
        return {"access_token": token, "expires_in": ACCESS_TOKEN_TTL,
                "token_type": "Bearer"}, 200

    def _verify_assertion(self, assertion: str) -> tuple[str, Install]:
        try:
            issuer = pyjwt.decode(assertion, options={"verify_signature": False}).get("iss", "")
        except pyjwt.PyJWTError as exc:
            raise Rejected("Malformed assertion") from exc
        prefix = "urn:atlassian:connect:clientid:"
        install = next((i for i in self.installs.values()
                        if issuer == prefix + i.oauth_client_id), None)
        if install is None:
            raise Rejected("Unknown OAuth client")
        try:
            claims = pyjwt.decode(assertion, install.secret, algorithms=["HS256"],
                                  audience=self.url, leeway=JWT_LEEWAY,
                                  options={"require": ["iss", "sub", "aud", "iat", "exp"]})
        except pyjwt.PyJWTError as exc:
            raise Rejected(f"Invalid assertion: {exc}") from exc
        if claims.get("tnt") != self.base_url(install.product):
            raise Rejected("Assertion tnt is not this site")
        if claims["exp"] - claims["iat"] > ASSERTION_MAX_TTL + 1:
            raise Rejected("Assertion lifetime too long")
        subject = str(claims["sub"])
        user_prefix = "urn:atlassian:connect:useraccountid:"
        if not subject.startswith(user_prefix) or len(subject) == len(user_prefix):
            raise Rejected("Assertion sub must be a user account id")
        return subject[len(user_prefix):], install

    # ---------- recording ----------

    def record(self, call: Call) -> Call:
        with self.lock:
            self.calls.append(call)
            if self.keep_calls and len(self.calls) >= 2 * self.keep_calls:
                del self.calls[:-self.keep_calls]  # in halves: trimming costs once per keep_calls
        return call

    def issue_view(self, key: str) -> dict[str, Any] | None:
        """The issue in v3 shape with comments posted through the API merged in."""
        with self.lock:
            source = self.store.issues.get(key)
            posted = list(self.store.posted_comments.get(key, []))
            links = [link for link in self.store.links if key in (link["inward"], link["outward"])]
        if source is None:
            return None
        issue = data.v3_cached(source)
        if not posted and not links:
            return issue
        view = dict(issue)
        view["fields"] = dict(issue["fields"])
        if posted:
            comments = list(issue["fields"]["comment"]["comments"]) + copy.deepcopy(posted)
            view["fields"]["comment"] = {"comments": comments, "maxResults": len(comments),
                                         "total": len(comments), "startAt": 0}
            view["fields"]["updated"] = self.issue_updated(key)
        if links:  # as Jira shows a link: each end names the other
            view["fields"]["issuelinks"] = list(issue["fields"].get("issuelinks") or []) + [
                _link_end(link, key) for link in links]
        return view


def _link_end(link: dict[str, Any], key: str) -> dict[str, Any]:
    """A link as the issue `key` lists it in its issuelinks: the other end and the link type."""
    if link["outward"] == key:
        return {"type": {"name": link["type"]}, "inwardIssue": {"key": link["inward"]}}
    return {"type": {"name": link["type"]}, "outwardIssue": {"key": link["outward"]}}


def json_text(body: Any) -> str:
    import json

    return json.dumps(body)


def current_call() -> Call:
    """The Call record of the request being served."""
    return g.call


def error(status: int, message: str) -> Response:
    """A Jira-style error body."""
    response = jsonify({"errorMessages": [message], "errors": {}})
    response.status_code = status
    return response


def raw_path_and_query() -> tuple[str, str]:
    """The path exactly as sent (still percent-encoded) and the raw query string."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
    parts = urlsplit(raw)
    return parts.path, request.query_string.decode("latin-1")


_BROWSE = re.compile(r"^/browse/([A-Za-z][A-Za-z0-9_]*-\d+)/?$")
_WIKI = re.compile(r"^/wiki/spaces/[^/]+/(?:pages|blog/\d{4}/\d{2}/\d{2})/(\d+)(?:/|$)")


def _people_view(host: FakeHost, path: str) -> Response | None:
    """A link people follow to an issue or page (as Inflow's panels show them): the demo's view
    of it, not the REST API's 401."""
    issue, page = _BROWSE.match(path), _WIKI.match(path)
    if issue is None and page is None:
        return None
    if host.viewer_url is None:
        return Response("The sandbox site shows issues and pages through `make demo`.\n",
                        status=404, mimetype="text/plain")
    where = f"?issue={issue.group(1)}" if issue is not None else f"/page?page={page.group(1)}"
    return redirect(host.viewer_url.rstrip("/") + where, 302)


def build_flask(host: FakeHost) -> Flask:
    """The Flask app with the gate: record, inject failures, authenticate."""
    app = Flask("sandbox.site")

    @app.before_request
    def gate() -> Response | None:
        if request.path.startswith(CONTROL_PREFIX + "/"):
            return None  # not an Atlassian API: neither recorded nor authenticated
        shown = _people_view(host, request.path)
        if shown is not None:
            return shown
        raw_path, raw_query = raw_path_and_query()
        call = host.record(Call(request.method, request.path, parse_query(raw_query),
                                request.get_json(silent=True),
                                product=host.install_for_path(raw_path).product))
        g.call = call
        if host.latency and request.path != "/oauth2/token":
            time.sleep(host.latency)
        injection = host.take_injection(request.path)
        if injection is not None:
            time.sleep(injection.delay)
            if injection.status >= 400:
                response = jsonify({"errorMessages": [f"Injected {injection.status}"], "errors": {}})
                response.status_code = injection.status
                if injection.retry_after is not None:
                    response.headers["Retry-After"] = injection.retry_after
                return response
        if request.path == "/oauth2/token":
            return None
        try:
            install, account_id, kind = host.authenticate(
                request.method, raw_path, raw_query, request.headers.get("Authorization", ""))
        except Rejected as exc:
            call.rejected = str(exc)
            return Response(f'{{"message": "{exc}"}}', status=401, mimetype="application/json")
        g.install, g.account_id = install, account_id
        call.auth, call.account_id = kind, account_id
        return None

    @app.after_request
    def remember_status(response: Response) -> Response:
        call = g.get("call")
        if call is not None:
            call.status = response.status_code
        return response

    @app.post("/oauth2/token")
    def oauth_token() -> Response:
        body, status = host.issue_access_token(request.form.to_dict())
        response = jsonify(body)
        response.status_code = status
        return response

    return app
