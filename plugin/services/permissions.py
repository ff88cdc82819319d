"""What a viewer may see and administer, asked of the host as the app and cached briefly."""
from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol

import requests
from redis import Redis
from redis.exceptions import RedisError

from connect.host_client import HostError, segment, side_by_side

log = logging.getLogger(__name__)

TTL_SECONDS = 60.0
# Who opened an item lately, for `warm`: the last few, for as long as they are likely to come back.
RECENT_VIEWERS = 5
VIEWERS_FOR_SECONDS = 1800.0
# Confluence page checks at a time for one answer: a view checks a page per suggestion and evidence.
PAGE_CHECKS = 8
Ref = tuple[str, str]  # an item as its product's permission API knows it: (source, id or key)


class Requester(Protocol):
    """The part of HostClient used here."""

    def request(self, method: str, path: str, params: Any = None,
                json: Any = None) -> requests.Response: ...


class TTLCache:
    """A small thread-safe in-process cache whose entries expire after `ttl` seconds."""

    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = 50_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self.generation = 0  # bumped whenever answers are dropped before their time

    def get(self, key: Any) -> Any:
        """The cached value, or None when missing or expired."""
        hit = self.entry(key)
        return None if hit is None else hit[1]

    def entry(self, key: Any, renew_before: float = 0.0) -> tuple[float, Any] | None:
        """(expires_at on the monotonic clock, value), or None when missing, expired, or expiring
        before `renew_before` (a render renewing its view asks those again)."""
        with self._lock:
            hit = self._data.get(key)
            if hit is None or hit[0] < max(time.monotonic(), renew_before):
                return None
            return hit

    def put(self, key: Any, value: Any, ttl: float | None = None) -> float:
        """Store a value for `ttl` seconds (the cache's own by default), returning when it expires.

        A full cache is cleared, not grown.
        """
        with self._lock:
            if len(self._data) >= self.max_entries:
                self._data.clear()
                self.generation += 1
            expires_at = time.monotonic() + (self.ttl if ttl is None else ttl)
            self._data[key] = (expires_at, value)
            return expires_at

    def clear(self) -> None:
        """Forget everything (tests; a tenant reinstall)."""
        with self._lock:
            self._data.clear()
            self.generation += 1


class SharedAnswers:
    """Permission answers shared by every process of the app through Redis.

    A viewer's requests land on any web process, each with its own `TTLCache`, so an answer one
    process got from the host is offered to the others until the moment it expires there: no
    answer is used longer than `TTL_SECONDS` after the host gave it. Redis away or full only
    means asking the host, as without it.
    """

    PREFIX = "inflow:answer:"
    VIEWERS = "inflow:viewers:"

    def __init__(self, connection: Redis) -> None:
        self.connection = connection
        _SHARED.add(self)

    def _key(self, tenant_id: int, account_id: str, ref: tuple[str, str]) -> str:
        return f"{self.PREFIX}{tenant_id}|{account_id}|{ref[0]}|{ref[1]}"

    def get(self, tenant_id: int, account_id: str,
            refs: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[float, bool]]:
        """The shared answers among `refs`: (seconds left, allowed) each."""
        try:
            found = self.connection.mget([self._key(tenant_id, account_id, ref) for ref in refs])
        except RedisError as exc:
            log.debug("shared permission answers unavailable: %s", exc)
            return {}
        now, out = time.time(), {}
        for ref, raw in zip(refs, found, strict=True):
            if raw:
                allowed, _, until = (raw.decode() if isinstance(raw, bytes) else raw).partition("|")
                if float(until) > now:
                    out[ref] = (float(until) - now, allowed == "1")
        return out

    def put(self, tenant_id: int, account_id: str, answers: dict[tuple[str, str], bool], ttl: float) -> None:
        """Share the host's fresh answers for `ttl` seconds."""
        until = time.time() + ttl
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                for ref, allowed in answers.items():
                    pipe.set(self._key(tenant_id, account_id, ref), f"{int(allowed)}|{until:.3f}",
                             px=max(1, int(ttl * 1000)))
                pipe.execute()
        except RedisError as exc:
            log.debug("could not share permission answers: %s", exc)

    def _viewers_key(self, tenant_id: int, item: tuple[str, str]) -> str:
        return f"{self.VIEWERS}{tenant_id}|{item[0]}|{item[1]}"

    def saw(self, tenant_id: int, item: tuple[str, str], account_id: str) -> None:
        """Remember that this person opened the item (source, key): the last few, for a while."""
        key, now = self._viewers_key(tenant_id, item), time.time()
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.zadd(key, {account_id: now})
                pipe.zremrangebyrank(key, 0, -RECENT_VIEWERS - 1)
                pipe.expire(key, int(VIEWERS_FOR_SECONDS))
                pipe.execute()
        except RedisError as exc:
            log.debug("could not remember a viewer: %s", exc)

    def viewers(self, tenant_id: int, item: tuple[str, str]) -> list[str]:
        """Who opened the item (source, key) lately, the most recent first."""
        key = self._viewers_key(tenant_id, item)
        try:
            found = self.connection.zrevrangebyscore(key, "+inf", time.time() - VIEWERS_FOR_SECONDS)
        except RedisError as exc:
            log.debug("recent viewers unavailable: %s", exc)
            return []
        return [v.decode() if isinstance(v, bytes) else str(v) for v in found]

    def forget(self, tenant_id: int, accounts: set[str]) -> None:
        """Drop what is kept of these people in one site: their recent views, the answers about them.

        For erasure, which is rare: one walk over the site's keys, whatever the number of people.
        """
        if not accounts:
            return
        try:
            for key in self.connection.scan_iter(match=f"{self.VIEWERS}{tenant_id}|*", count=1000):
                self.connection.zrem(key, *accounts)
            answers = [key for key in self.connection.scan_iter(match=f"{self.PREFIX}{tenant_id}|*", count=1000)
                       if (key.decode() if isinstance(key, bytes) else key).split("|", 2)[1] in accounts]
            if answers:
                self.connection.delete(*answers)
        except RedisError as exc:  # both expire within half an hour regardless
            log.warning("could not forget %d people's recent views and answers: %s", len(accounts), exc)

    def clear(self) -> None:
        """Forget every shared answer (tests)."""
        try:
            keys = list(self.connection.scan_iter(match=self.PREFIX + "*", count=1000))
            if keys:
                self.connection.delete(*keys)
        except RedisError as exc:
            log.debug("could not clear shared permission answers: %s", exc)


# The shared stores of this process's apps (one per Redis): TTLCache.clear forgets theirs too.
_SHARED: weakref.WeakSet[SharedAnswers] = weakref.WeakSet()


class AnswerCache(TTLCache):
    """This process's permission answers; clearing it forgets the shared ones too (tests)."""

    def clear(self) -> None:
        """Forget every answer, here and in the shared stores of this process's apps."""
        super().clear()
        for shared in list(_SHARED):
            shared.clear()


CACHE = AnswerCache()


def _jira_browsable(client: Requester, account_id: str, issue_ids: list[str]) -> set[str]:
    numeric = [int(i) for i in issue_ids if str(i).isdigit()]
    if not numeric:
        return set()
    body = {"accountId": account_id,
            "projectPermissions": [{"permissions": ["BROWSE_PROJECTS"], "issues": numeric}]}
    data = client.request("POST", "/rest/api/3/permissions/check", json=body).json()
    allowed: set[str] = set()
    for entry in data.get("projectPermissions", []):
        if entry.get("permission") == "BROWSE_PROJECTS":
            allowed.update(str(i) for i in entry.get("issues", []))
    return allowed


def _confluence_readable(client: Requester, account_id: str, page_id: str) -> bool:
    body = {"subject": {"type": "user", "identifier": account_id}, "operation": "read"}
    try:
        response = client.request("POST", f"/wiki/rest/api/content/{segment(page_id)}/permission/check",
                                  json=body)
    except HostError as exc:
        # Purged (its event not applied yet) or out of the app's reach: that page is hidden,
        # not the whole panel failed.
        if exc.status in (403, 404):
            return False
        raise
    return bool(response.json().get("hasPermission"))


def _item_ref(item: Any) -> tuple[str, str]:
    # Jira checks take numeric issue ids; without one we fall back to the key, which fails closed.
    if item.source == "jira":
        return "jira", str(getattr(item, "external_id", None) or item.key)
    return "confluence", str(getattr(item, "external_id", None) or item.key)


def _check_uncached(clients: Callable[[str], Requester | None], account_id: str,
                    refs: set[tuple[str, str]]) -> dict[tuple[str, str], bool]:
    """Each item checked with its own product's permission API; no client, no access."""
    results: dict[tuple[str, str], bool] = {ref: False for ref in refs}
    jira_ids = [ref for source, ref in refs if source == "jira"]
    jira = clients("jira") if jira_ids else None
    if jira is not None:
        allowed = _jira_browsable(jira, account_id, jira_ids)
        for ref in jira_ids:
            results[("jira", ref)] = ref in allowed
    pages = [ref for source, ref in refs if source == "confluence"]
    confluence = clients("confluence") if pages else None
    if confluence is not None:
        results.update(_confluence_each(confluence, account_id, sorted(pages)))
    return results


def _confluence_each(client: Requester, account_id: str, pages: list[str]) -> dict[tuple[str, str], bool]:
    """Each page's check, up to PAGE_CHECKS at a time, each thread with a client of its own.

    Why: Confluence has no check of many pages at once, and one after the other a view naming
    twenty pages waited twenty round trips. A failed check fails the whole answer, as before.
    """
    sibling = getattr(client, "sibling", None)
    answers = side_by_side(pages, lambda own, ref: _confluence_readable(own, account_id, ref), client,
                           sibling or (lambda: client), PAGE_CHECKS if sibling else 1, "inflow-page-check")
    return {("confluence", ref): ok for ref, ok in zip(pages, answers, strict=True)}


class Expiry(Protocol):
    """Told when each host answer a caller relied on expires (see panel_cache.Watch).

    `renew_before` (monotonic; 0 for none): cached answers expiring before it are asked again,
    for a cached view renewed ahead of its expiry.
    """

    renew_before: float

    def note(self, expires_at: float) -> None: ...

    def answered(self, ref: Ref, allowed: bool, expires_at: float) -> None:
        """A permission answer relied on: which item, what it was, until when."""


def renew_before(horizon: Expiry | None) -> float:
    """The moment before which a cached answer counts as due (0.0: none is)."""
    return horizon.renew_before if horizon is not None else 0.0


def _vouches(vouched: tuple[str, str] | None, item: Any) -> bool:
    """Whether the host vouched for this item: it is the one (source, key) the host signed for."""
    return vouched is not None and item.source == vouched[0] and item.key == vouched[1]


def answers_to(client: Requester | Callable[[], Requester], tenant_id: int,
               account_id: str | None, cache: TTLCache = CACHE,
               horizon: Expiry | None = None,
               clients: Callable[[str], Requester | None] | None = None,
               shared: SharedAnswers | None = None) -> Callable[[set[Ref]], dict[Ref, bool]]:
    """Whether this viewer may see each item ref (source, id): cached, shared, else the host's.

    The arguments are `visible_to`'s. Each answer used is told to `horizon` with its expiry.
    """

    def remember(ref: Ref, ok: bool, ttl: float | None = None) -> None:
        expires_at = cache.put((tenant_id, account_id, ref), ok, ttl)
        if horizon is not None:
            horizon.answered(ref, ok, expires_at)

    def answers(refs: set[Ref]) -> dict[Ref, bool]:
        if not account_id:
            return {}
        known: dict[Ref, bool] = {}
        missing: set[Ref] = set()
        for ref in refs:
            hit = cache.entry((tenant_id, account_id, ref), renew_before(horizon))
            if hit is None:
                missing.add(ref)
                continue
            known[ref] = hit[1]
            if horizon is not None:
                horizon.answered(ref, hit[1], hit[0])
        if missing and shared is not None:
            due = renew_before(horizon) - time.monotonic()
            for ref, (left, ok) in shared.get(tenant_id, account_id, sorted(missing)).items():
                if left < due:  # renewing: as due as this process's own answer was
                    continue
                remember(ref, ok, left)
                known[ref] = ok
                missing.discard(ref)
        if missing:
            if clients is None:
                requester = client if hasattr(client, "request") else client()
                checked = _check_uncached(lambda _source: requester, account_id, missing)
            else:
                checked = _check_uncached(clients, account_id, missing)
            for ref, ok in checked.items():
                remember(ref, ok)
                known[ref] = ok
            if shared is not None:
                shared.put(tenant_id, account_id, checked, cache.ttl)
        return known

    return answers


def visible_to(client: Requester | Callable[[], Requester], tenant_id: int,
               account_id: str | None, cache: TTLCache = CACHE,
               horizon: Expiry | None = None,
               clients: Callable[[str], Requester | None] | None = None,
               vouched: tuple[str, str] | None = None,
               shared: SharedAnswers | None = None) -> Callable[[list[Any]], list[Any]]:
    """A `visible` filter for matching: keeps only items this viewer may see (fails closed).

    `client` may be a factory, called only when some answer is not cached. `clients`, when
    given, picks the client of each item's product (the site's other installation, or None when
    there is none: its items are then hidden); without it every item is checked with `client`.
    `horizon`, when given, hears when every answer used expires, so whatever is built from them
    can expire too. `vouched` is the (source, key) of an item the host itself showed this viewer
    (the issue of a signed issue-view panel): it is visible without asking. `shared`, when given,
    offers the answers other processes got before the host is asked, and takes this one's.
    """
    answers = answers_to(client, tenant_id, account_id, cache, horizon, clients, shared)

    def visible(items: list[Any]) -> list[Any]:
        if not account_id or not items:
            return []
        granted = {_item_ref(item) for item in items if _vouches(vouched, item)}
        known = answers({_item_ref(item) for item in items} - granted)
        return [item for item in items if _item_ref(item) in granted or known.get(_item_ref(item))]

    return visible


def warm(tenant_id: int, asks: dict[str, list[Any]], clients: Callable[[str], Requester | None],
         shared: SharedAnswers) -> int:
    """Ask the host now, for each viewer, about their items no process holds a lasting answer for.

    Why: when an item's suggestions change, the next view of it would wait for the host's
    answers on the new ones; the people who opened it lately are likely to open it again. The
    answers are shared (`SharedAnswers`) for `TTL_SECONDS`, as a view's own are. `asks` maps
    each viewer to the items to ask about. Returns how many viewers were asked about.
    """
    asked = 0
    for account_id, items in asks.items():
        refs = sorted({_item_ref(item) for item in items})
        held = shared.get(tenant_id, account_id, refs) if refs else {}
        # An answer this close to its end would be asked again by the view that uses it.
        missing = {ref for ref in refs if held.get(ref, (0.0, False))[0] < TTL_SECONDS / 2}
        if missing:
            shared.put(tenant_id, account_id, _check_uncached(clients, account_id, missing), TTL_SECONDS)
            asked += 1
    return asked


def _project_id(client: Requester, project_key: str) -> int | None:
    try:
        response = client.request("GET", f"/rest/api/3/project/{segment(project_key)}")
    except HostError as exc:
        if exc.status == 404:  # no such project: nobody administers it
            return None
        raise
    project_id = response.json().get("id")
    return int(project_id) if str(project_id).isdigit() else None


def is_project_admin(client: Requester, account_id: str | None, project_key: str) -> bool:
    """Whether the host says this account may administer the project (or Jira as a whole)."""
    if not account_id:
        return False
    project_id = _project_id(client, project_key)
    if project_id is None:
        return False
    body: dict[str, Any] = {"accountId": account_id, "globalPermissions": ["ADMINISTER"],
                            "projectPermissions": [{"permissions": ["ADMINISTER_PROJECTS"],
                                                    "projects": [project_id]}]}
    data = client.request("POST", "/rest/api/3/permissions/check", json=body).json()
    if "ADMINISTER" in data.get("globalPermissions", []):
        return True
    return any(entry.get("permission") == "ADMINISTER_PROJECTS" and project_id in
               [int(p) for p in entry.get("projects", []) if str(p).isdigit()]
               for entry in data.get("projectPermissions", []))


GROUPS_PAGE = 200  # Confluence's page of a person's groups (its most)
GROUPS_MAX = 1000  # groups read per person: rules name a few; no one is in more in practice
GROUP_HINTS = 20  # groups whose names contain a typed name, asked to find it among them


def groups_lookup(client: Requester, tenant_id: int, product: str = "jira", cache: TTLCache = CACHE,
                  horizon: Expiry | None = None) -> Callable[[str], set[str]]:
    """Group names of an account, from the host, cached like permissions (`horizon` as in
    `visible_to`). Each product has its own API: Jira's is not on a Confluence-only site."""
    fetch = _confluence_groups if product == "confluence" else _jira_groups

    def groups_of(account_id: str) -> set[str]:
        key = (tenant_id, "groups", account_id)
        hit = cache.entry(key, renew_before(horizon))
        if hit is None:
            groups = fetch(client, account_id)
            hit = (cache.put(key, groups), groups)
        if horizon is not None:
            horizon.note(hit[0])
        return hit[1]

    return groups_of


def jira_group_names(client: Requester, names: list[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Each name as Jira spells its group (names are matched without regard to case), and the
    names no group has, each with the groups whose names contain it (what was perhaps meant)."""
    found: dict[str, str] = {}
    missing: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        data = client.request("GET", "/rest/api/3/groups/picker", params={
            "query": name, "maxResults": GROUP_HINTS, "caseInsensitive": "true"}).json()
        near = [str(row["name"]) for row in data.get("groups") or [] if isinstance(row, dict) and row.get("name")]
        exact = [group for group in near if group.casefold() == name.casefold()]
        if exact:
            found[name] = exact[0]
        elif len(near) >= GROUP_HINTS:  # a page full of longer names: not seen is not absent
            found[name] = name
        else:
            missing[name] = near[:3]
    return found, missing


def _jira_groups(client: Requester, account_id: str) -> set[str]:
    rows = client.request("GET", "/rest/api/3/user/groups", params={"accountId": account_id}).json()
    return {row.get("name", "") for row in rows if isinstance(row, dict)}


def _confluence_groups(client: Requester, account_id: str) -> set[str]:
    groups: set[str] = set()
    for start in range(0, GROUPS_MAX, GROUPS_PAGE):
        page = client.request("GET", "/wiki/rest/api/user/memberof", params={
            "accountId": account_id, "start": start, "limit": GROUPS_PAGE}).json()
        rows = [row for row in page.get("results") or [] if isinstance(row, dict)]
        groups |= {str(row.get("name") or "") for row in rows}
        if len(rows) < GROUPS_PAGE:
            break
    return groups - {""}

