"""Outbound REST calls from the app to a Jira or Confluence site, signed per request.

Every request carries a fresh app JWT whose qsh covers the exact method, path and query as sent
(path relative to the site's base URL), or, via `.as_user()`, a user access token from the
OAuth 2.0 JWT bearer grant. 429 and 503 are retried honouring Retry-After; any other non-2xx
raises HostError. A Retry-After holds every call of this process to that site, not only the one
that received it: Atlassian answers a call sent before the time is up with another 429, so
concurrent calls (a batch's re-reads) wait together rather than each earning its own.

Why our own retry loop rather than atlassian-python-api's `backoff_and_retry`: with urllib3 2 that
option mounts a urllib3 `Retry` adapter which re-sends the *same* prepared request (the same JWT,
whose exp may pass during a long wait), does not cap a server's Retry-After, and ends in
`requests.RetryError` instead of the response; its `retry_with_header` path retries 429 only
once. Retrying in the session re-signs every attempt and gives one error type.

A site that cannot be reached or does not answer in time raises HostUnreachable, a HostError
with status 0. Every session of a process shares one pool of connections, so a panel's call
reuses an open (TLS) connection to the site instead of opening its own.
"""
from __future__ import annotations

import copy
import email.utils
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
from atlassian import Confluence, Jira
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from connect.impersonation import DEFAULT_AUTH_SERVER, TOKENS, BearerAuth, request_token
from connect.jwt import app_token

TIMEOUT = (5.0, 30.0)  # (connect, read) seconds; every call gets one
RETRY_STATUSES = frozenset({429, 503})
MAX_ATTEMPTS = 4
MAX_RETRY_WAIT = 30.0  # never sleep longer than this for one retry
TOKEN_TTL = 180  # app JWT lifetime; Atlassian recommends a few minutes at most
POOL_SITES = 100  # sites whose open connections a process keeps (the least recently used go first)
POOL_PER_SITE = 16  # open connections kept per site: a web process's threads, a job's fetches


class HostError(requests.HTTPError):
    """The host answered with a non-2xx status (after any retries)."""

    def __init__(self, status: int, body: str, response: requests.Response | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(f"Host answered {status}: {body[:300]}", response=response)
        self.status = status
        self.body = body
        self.retry_after = retry_after

    def messages(self, limit: int = 5) -> list[str]:
        """What the host said was wrong, from Jira's or Confluence's error shapes (at most `limit`)."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return []
        found: list[Any] = []
        if isinstance(data, dict):
            found += data.get("errorMessages") or []  # Jira
            errors = data.get("errors")
            if isinstance(errors, dict):  # Jira: field -> message
                found += [f"{name}: {text}" for name, text in errors.items()]
            elif isinstance(errors, list):  # Confluence REST v2
                found += [e.get("title") or e.get("detail") for e in errors if isinstance(e, dict)]
            if data.get("message"):  # Confluence REST v1
                found.append(data["message"])
        return [str(text)[:300] for text in found if text][:limit]


class HostUnreachable(HostError):
    """The site could not be reached, or did not answer in time (the transport error is the cause)."""

    def __init__(self, error: requests.RequestException) -> None:
        super().__init__(0, f"{type(error).__name__}: {error}")
        self.args = (f"Could not reach the host: {self.body[:300]}",)


class _SharedAdapter(HTTPAdapter):
    """Connection pools that outlive any one session: a session's close() leaves them open."""

    def close(self) -> None:
        """Keep the pools: other sessions of this process are using them."""


_adapter: _SharedAdapter | None = None
_adapter_lock = threading.Lock()


def shared_adapter() -> HTTPAdapter:
    """This process's connections to every site, made on first use."""
    global _adapter
    with _adapter_lock:
        if _adapter is None:
            _adapter = _SharedAdapter(pool_connections=POOL_SITES, pool_maxsize=POOL_PER_SITE)
        return _adapter


def _forget_parents_connections() -> None:
    # A forked child (a web worker, an rq work horse) must not write to its parent's sockets.
    global _adapter, _adapter_lock
    _adapter, _adapter_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_parents_connections)


class AppJWTAuth(AuthBase):
    """Signs a prepared request with an app JWT whose qsh covers exactly that request."""

    def __init__(self, app_key: str, shared_secret: str, base_url: str) -> None:
        self.app_key = app_key
        self.shared_secret = shared_secret
        self.base_url = base_url

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        # r.url is the final, encoded URL, including every param a library appended.
        token = app_token(self.app_key, self.shared_secret, request.method or "GET",
                          request.url or "", self.base_url, ttl=TOKEN_TTL)
        request.headers["Authorization"] = f"JWT {token}"
        return request


class Pace:
    """Per site, when this process may call it again (set by a Retry-After it received)."""

    def __init__(self, max_sites: int = 10_000) -> None:
        self.max_sites = max_sites
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def hold(self, site: str, seconds: float) -> None:
        """No call to `site` before `seconds` from now (a later hold already set stays)."""
        with self._lock:
            now = time.monotonic()
            if len(self._until) >= self.max_sites:
                self._until = {k: v for k, v in self._until.items() if v > now}
            self._until[site] = max(self._until.get(site, 0.0), now + seconds)

    def remaining(self, site: str) -> float:
        """Seconds until `site` may be called again (0 when it may be called now)."""
        until = self._until.get(site)
        return 0.0 if until is None else max(0.0, until - time.monotonic())

    def clear(self) -> None:
        """Forget every hold (tests)."""
        with self._lock:
            self._until.clear()


PACE = Pace()


def retry_after_seconds(response: requests.Response) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), or None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class HostSession(requests.Session):
    """A session with a default timeout, bounded 429/503 retries, and HostError for non-2xx."""

    def __init__(self, auth: AuthBase | None = None, timeout: Any = TIMEOUT,
                 max_attempts: int = MAX_ATTEMPTS, max_wait: float = MAX_RETRY_WAIT,
                 site: str | None = None) -> None:
        super().__init__()
        adapter = shared_adapter()
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self.auth = auth
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.site = site  # the key of PACE this session honours and sets (None: neither)

    def request(self, method: str, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        """Send, re-signing and retrying on 429/503; raise HostError for any final non-2xx."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        for attempt in range(1, self.max_attempts + 1):
            self._wait_for_site()
            try:
                response = super().request(method, url, *args, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise HostUnreachable(exc) from exc
            if response.status_code not in RETRY_STATUSES:
                break
            asked = retry_after_seconds(response)
            if asked is not None and self.site is not None:
                PACE.hold(self.site, asked)  # every call to the site waits, not just this one
            delay = self._delay(response, attempt)
            if delay is None:
                break
            response.close()
            time.sleep(delay)
        if not 200 <= response.status_code < 300:
            raise HostError(response.status_code, response.text, response,
                            retry_after_seconds(response))
        return response

    def _wait_for_site(self) -> None:
        """Wait out the site's Retry-After; refuse at once when this session would not wait."""
        if self.site is None:
            return
        remaining = PACE.remaining(self.site)
        if remaining <= 0:
            return
        if self.max_attempts <= 1 or remaining > self.max_wait:
            raise HostError(429, f"Rate limited by the site for {remaining:.1f} s more",
                            retry_after=remaining)
        time.sleep(remaining)

    def _delay(self, response: requests.Response, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if attempt >= self.max_attempts:
            return None
        asked = retry_after_seconds(response)
        if asked is None:
            return min(self.max_wait, 0.5 * 2 ** (attempt - 1))
        # Why give up rather than wait less: retrying before Retry-After only earns another 429;
        # the caller (an rq job) can reschedule itself using HostError.retry_after.
        return asked if asked <= self.max_wait else None


def segment(value: object) -> str:
    """A key or id as one escaped path segment: `A-1?x` or `A-1/../B` must not reach another route."""
    return quote(str(value), safe="")


def _site_url(base_url: str, path: str) -> str:
    """Absolute URL for a path given either from the site root (/wiki/api/v2/...) or the base URL."""
    if path.startswith(("http://", "https://")):
        return path
    base = base_url.rstrip("/")
    base_path = urlsplit(base).path
    if not path.startswith("/"):
        path = "/" + path
    if base_path and (path == base_path or path.startswith(base_path + "/")):
        return base[: len(base) - len(base_path)] + path
    return base + path


Client = TypeVar("Client")
Work = TypeVar("Work")
Answer = TypeVar("Answer")


def side_by_side(work: Sequence[Work], call: Callable[[Client, Work], Answer], first: Client,
                 another: Callable[[], Client], bound: int, name: str) -> list[Answer]:
    """`call(client, each)` for each of `work`, up to `bound` at a time: the answers, in order.

    Each thread has a client of its own, `first` or one of `another()`: a requests session is not
    safe to share. The first failure is raised, and the calls not started by then are not made.
    """
    workers = min(bound, len(work))
    if workers <= 1:
        return [call(first, each) for each in work]
    idle: queue.SimpleQueue[Client] = queue.SimpleQueue()
    idle.put(first)
    for _ in range(workers - 1):
        idle.put(another())

    def run(each: Work) -> Answer:
        client = idle.get()
        try:
            return call(client, each)
        finally:
            idle.put(client)

    with ThreadPoolExecutor(workers, thread_name_prefix=name) as pool:
        futures = [pool.submit(run, each) for each in work]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


class HostClient:
    """REST access to one installed site, as the app or (via as_user) as one of its users."""

    def __init__(self, tenant: Any, app_key: str, session: HostSession,
                 account_id: str | None = None, auth_server: str = DEFAULT_AUTH_SERVER) -> None:
        self.tenant = tenant
        self.app_key = app_key
        self.base_url: str = tenant.base_url.rstrip("/")
        self.session = session
        self.account_id = account_id
        self.auth_server = auth_server

    @classmethod
    def for_tenant(cls, tenant: Any, app_key: str, timeout: Any = TIMEOUT,
                   auth_server: str = DEFAULT_AUTH_SERVER,
                   max_wait: float = MAX_RETRY_WAIT) -> HostClient:
        """A client acting as the app on the tenant's site (tenant: base_url, shared_secret, ...).

        `auth_server`: where `.as_user()` gets user tokens (the app's INFLOW_AUTH_SERVER_URL).
        `max_wait`: the longest Retry-After a call sleeps on; a longer one raises HostError.
        """
        if getattr(tenant, "host", None) == "forge":  # inside a Forge call: its bearer tokens
            from connect.forge import client_for_tenant
            if (forge_client := client_for_tenant(tenant, app_key, timeout)) is not None:
                return forge_client
        site = tenant.base_url.rstrip("/")
        auth = AppJWTAuth(app_key, tenant.shared_secret, site)
        session = HostSession(auth=auth, timeout=timeout, max_wait=max_wait, site=site)
        return cls(tenant, app_key, session, auth_server=auth_server)

    def sibling(self) -> HostClient:
        """This client with an HTTP session of its own, for another thread (a requests session
        is not safe to share); its connections come from the same pool."""
        ours = self.session
        twin = copy.copy(self)
        twin.session = HostSession(timeout=ours.timeout, max_attempts=ours.max_attempts,
                                   max_wait=ours.max_wait, site=ours.site)
        twin.session.auth, twin.session.headers = ours.auth, ours.headers.copy()
        return twin

    def as_user(self, account_id: str) -> HostClient:
        """A client whose calls run as that user (OAuth 2.0 JWT bearer grant, ACT_AS_USER)."""
        if not getattr(self.tenant, "oauth_client_id", None):
            raise HostError(0, "Tenant has no oauthClientId: user impersonation unavailable")
        auth_server = self.auth_server.rstrip("/")
        token_session = HostSession(timeout=self.session.timeout)
        key = (f"{self.tenant.client_key}|{auth_server}", account_id)

        def token() -> str:
            return TOKENS.get(key, lambda: request_token(token_session, self.tenant, account_id,
                                                         auth_server))

        # The app-and-user budget is not the app's: a Retry-After on one does not hold the other.
        budget = f"{self.session.site} as {account_id}" if self.session.site else None
        session = HostSession(auth=BearerAuth(token), timeout=self.session.timeout, site=budget)
        return HostClient(self.tenant, self.app_key, session, account_id=account_id,
                          auth_server=self.auth_server)

    def url(self, path: str) -> str:
        """The absolute URL of a REST path on this site."""
        return _site_url(self.base_url, path)

    def request(self, method: str, path: str, params: Any = None,
                json: Any = None) -> requests.Response:
        """A raw call through the signing session (endpoints the library lacks); 2xx or HostError."""
        return self.session.request(method.upper(), self.url(path), params=params, json=json)

    def get_json(self, path: str, params: Any = None) -> Any:
        """GET a path and decode its JSON body."""
        return self.request("GET", path, params=params).json()

    def jira(self) -> Jira:
        """atlassian-python-api's Jira on this site (REST v3), through the signing session."""
        return Jira(url=self.base_url, session=self.session, cloud=True, api_version="3",
                    timeout=int(self._read_timeout()))

    def confluence(self) -> Confluence:
        """atlassian-python-api's Confluence Cloud v2 client on this site, through the signing session.

        Why v2: in atlassian-python-api 5.0 the legacy Cloud class builds paths without `rest/api`.
        CQL search is v1-only on Atlassian's side: use .request("GET", "/wiki/rest/api/search").
        """
        return Confluence(url=self._confluence_url(), session=self.session, cloud=True, api_version=2,
                          timeout=int(self._read_timeout()))

    def _confluence_url(self) -> str:
        """Confluence Cloud lives under /wiki; a Confluence tenant's base URL already says so."""
        return self.base_url if urlsplit(self.base_url).path else self.base_url + "/wiki"

    def _read_timeout(self) -> float:
        timeout = self.session.timeout
        return float(timeout[1] if isinstance(timeout, tuple) else timeout)
