"""People as panels show them: name and avatar from Inflow's rows, else from the host.

Confluence pages (and some Jira data) carry account ids only. Names missing from `Person` are
asked of the host in one bulk call per request, with a short timeout and no retries, cached in
this process and written back to the `Person` rows, so the next request reads them locally. A
host that fails is not asked again for a little while; until then those people show as
"Unknown user" rather than holding the panel up.

Project admins name people by display name or account id: `matching_people` finds them among
the rows of the site (both products), `typed_names` shows stored ids back as names, and
`typed_rules` does so for every person a project's settings hold.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from plugin.content.normalize import NOT_PEOPLE
from plugin.models.content import Person
from plugin.search.sites import of_site
from plugin.services.freshness import People as PeopleFact
from plugin.services.permissions import Expiry, Requester, TTLCache, renew_before
from plugin.services.settings import PEOPLE_RULES

log = logging.getLogger(__name__)

UNKNOWN = "Unknown user"
LOOKUP_TIMEOUT = (1.0, 1.5)  # (connect, read) seconds: a panel waits this long at most
BATCH = 100  # account ids per bulk call (both products accept up to 200)

Profile = tuple[str | None, str | None]  # (display name, avatar URL)
Lookup = Callable[[list[str]], dict[str, Profile]]

PROFILES = TTLCache(ttl=600.0)  # (tenant id, account id) -> Profile, misses included
BACKOFF = TTLCache(ttl=30.0)  # tenant ids whose host lookup just failed


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _jira_users(client: Requester, accounts: list[str]) -> list[dict[str, Any]]:
    data = client.request("GET", "/rest/api/3/user/bulk",
                          params={"accountId": accounts, "maxResults": len(accounts)}).json()
    return [u for u in data.get("values") or [] if u.get("accountId")]


def _jira_people(client: Requester, accounts: list[str]) -> dict[str, Profile]:
    return {u["accountId"]: (u.get("displayName"), (u.get("avatarUrls") or {}).get("48x48"))
            for u in _jira_users(client, accounts)}


def picture_url(client: Any, path: Any, site: str | None) -> str | None:
    """A Confluence profile picture's URL that a browser can load: on the site people open.

    `site`: that site's URL when known. Without it the client's own URL serves, unless it is
    Atlassian's API gateway (a Forge client's), whose URLs need the app's token: then none.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        return None
    if site:
        return f"{site.rstrip('/').removesuffix('/wiki')}{path}"
    found = str(client.url(path))
    return None if urlsplit(found).hostname == "api.atlassian.com" else found


def confluence_users(client: Any, accounts: list[str]) -> list[dict[str, Any]]:
    """The users Confluence's v1 bulk lookup returns of these accounts (at most 200 at a time)."""
    data = client.request("GET", "/wiki/rest/api/user/bulk",
                          params={"accountId": accounts, "limit": len(accounts)}).json()
    return [u for u in data.get("results") or [] if u.get("accountId")]


def confluence_name(user: dict[str, Any]) -> str | None:
    """A Confluence user's name as people read it (the public one when the profile hides it)."""
    return user.get("displayName") or user.get("publicName")


# Confluence's `accountStatus` (v2 documents active, inactive, closed and unknown): Confluence's
# payloads never say that someone left, and a deactivated account must not be suggested.
_ACTIVE = {"active": True, "inactive": False, "closed": False}


def confluence_active(user: dict[str, Any]) -> bool | None:
    """Whether a Confluence user object says the account is active; None when it does not say."""
    status = user.get("accountStatus")
    return _ACTIVE.get(status) if isinstance(status, str) else None


def _confluence_people(client: Any, accounts: list[str], site: str | None) -> dict[str, Profile]:
    return {u["accountId"]: (confluence_name(u),
                             picture_url(client, (u.get("profilePicture") or {}).get("path"), site))
            for u in confluence_users(client, accounts)}


def host_lookup(client: Any, product: str, site: str | None = None) -> Lookup:
    """Bulk name lookup on the tenant's site: Jira `/rest/api/3/user/bulk`, Confluence v1 bulk.

    `site`: the URL people open the site at (Confluence pictures are linked there).
    """
    def lookup(accounts: list[str]) -> dict[str, Profile]:
        found: dict[str, Profile] = {}
        for chunk in _chunks(sorted(accounts), BATCH):
            found.update(_confluence_people(client, chunk, site) if product == "confluence"
                         else _jira_people(client, chunk))
        return found

    return lookup


class Watch(Expiry, Protocol):
    """What a cached render needs to hear of the people it names (panel_cache.Watch)."""

    def record(self, fact: PeopleFact, value: frozenset[str]) -> None: ...


# Built once: panels name people at every render.
_PROFILES = select(Person.account_id, Person.display_name, Person.avatar_url).where(
    Person.tenant_id == bindparam("tenant"), Person.account_id.in_(bindparam("accounts", expanding=True)))


class People:
    """One request's view of people: each account loaded once, missing names resolved in bulk.

    With a `watch` (a render that may be cached), the stored rows read are recorded and every
    answer from the host (or the pause after a failed lookup) notes when it expires.
    """

    def __init__(self, session: Session, tenant_id: int, lookup: Lookup | None = None,
                 cache: TTLCache = PROFILES, watch: Watch | None = None) -> None:
        self.session, self.tenant_id, self.lookup, self.cache = session, tenant_id, lookup, cache
        self.watch = watch
        self._known: dict[str, Profile] = {}

    def prefetch(self, accounts: Iterable[str | None]) -> None:
        """Load these accounts now (one query, at most one host call) so later reads are free."""
        wanted = {a for a in accounts if a and a not in self._known}
        if not wanted:
            return
        rows = self.session.execute(_PROFILES, {"tenant": self.tenant_id, "accounts": sorted(wanted)}).all()
        stored = {account: (name, avatar) for account, name, avatar in rows}
        if self.watch is not None:
            self.watch.record(PeopleFact(tuple(sorted(wanted))), frozenset(
                PeopleFact.row(account, *profile) for account, profile in stored.items()))
        self._known.update(stored)
        missing = [a for a in wanted if not stored.get(a, (None, None))[0]]
        if missing:
            self._known.update(self._resolve(missing, set(stored)))
        for account in wanted:
            self._known.setdefault(account, (None, None))

    def _resolve(self, accounts: list[str], stored: set[str]) -> dict[str, Profile]:
        found: dict[str, Profile] = {}
        ask = []
        for account in accounts:
            hit = self.cache.entry((self.tenant_id, account), renew_before(self.watch))
            if hit is None:
                ask.append(account)
            else:
                self._note(hit[0])
                found[account] = hit[1]
        fetched = self._ask_host(ask) if ask else None
        if fetched is None:  # no host, or it failed: not remembered as "nobody has a name"
            return found
        for account in ask:
            found[account] = fetched.get(account, (None, None))
            self._note(self.cache.put((self.tenant_id, account), found[account]))
        self._write_back({a: p for a, p in fetched.items() if a in stored and p[0]})
        return found

    def _ask_host(self, accounts: list[str]) -> dict[str, Profile] | None:
        if self.lookup is None:
            return None
        pause = BACKOFF.entry(self.tenant_id)
        if pause is not None:
            self._note(pause[0])  # the host is asked again once the pause is over
            return None
        try:
            return self.lookup(accounts)
        except Exception as exc:  # noqa: BLE001  (names are a nicety; the panel goes on)
            log.warning("name lookup of %d people failed: %s", len(accounts), exc)
            self._note(BACKOFF.put(self.tenant_id, True))
            return None

    def _note(self, expires_at: float) -> None:
        if self.watch is not None:
            self.watch.note(expires_at)

    def _write_back(self, profiles: dict[str, Profile]) -> None:
        for account, (name, avatar) in profiles.items():
            values: dict[str, Any] = {"display_name": (name or "")[:255]}
            if avatar:
                values["avatar_url"] = avatar[:2000]
            self.session.execute(update(Person).where(
                Person.tenant_id == self.tenant_id, Person.account_id == account).values(**values))

    def name(self, account: str) -> str:
        """The display name, or "Unknown user"."""
        self.prefetch([account])
        return self._known[account][0] or UNKNOWN

    def avatar(self, account: str) -> str | None:
        """The avatar URL, if known."""
        self.prefetch([account])
        return self._known[account][1]

    def names(self, accounts: Iterable[str]) -> dict[str, str]:
        """Display names by account id (prefetched together)."""
        accounts = set(accounts)
        self.prefetch(accounts)
        return {account: self.name(account) for account in accounts}


def said_active(user: dict[str, Any]) -> bool | None:
    """Whether a Jira or Confluence user object says the account is active; None when it does not say."""
    return user["active"] if isinstance(user.get("active"), bool) else confluence_active(user)


def check_activity(session: Session, tenant_id: int, client: Requester, product: str) -> int:
    """Ask the site whether each of the tenant's people is active (in bulk); how many changed.

    Payloads tell only of people who appear in them, and Confluence's never do: someone
    deactivated after their last appearance would be suggested until asked.
    """
    stored = dict(session.execute(select(Person.account_id, Person.active).where(
        Person.tenant_id == tenant_id)).tuples().all())
    changed: dict[bool, list[str]] = {True: [], False: []}
    for chunk in _chunks(sorted(stored), BATCH):
        users = confluence_users(client, chunk) if product == "confluence" else _jira_users(client, chunk)
        for user in users:
            said = said_active(user)
            if said is not None and stored.get(user["accountId"]) is not said:
                changed[said].append(user["accountId"])
    for value, accounts in changed.items():
        for chunk in _chunks(accounts, 500):
            session.execute(update(Person).where(Person.tenant_id == tenant_id, Person.account_id.in_(chunk))
                            .values(active=value))
    return len(changed[True]) + len(changed[False])


def is_known(session: Session, tenant_id: int, account_id: str) -> bool:
    """Whether the account is a person who worked on something of the tenant's site (either
    product's installation)."""
    # An app's or a portal customer's account keeps its row once Confluence named its type:
    # known, but no one to ask or thank (it is never credited nor suggested either).
    types = session.scalars(select(Person.account_type).where(
        of_site(Person.tenant_id, tenant_id), Person.account_id == account_id)).all()
    return bool(types) and not any(kind in NOT_PEOPLE for kind in types)


def _spaced(name: str) -> str:
    """The name with runs of spaces (line breaks included) as one space, as a text field keeps it."""
    return " ".join(name.split())


def _folded(name: str) -> str:
    """A name as typed names are compared: in any case, runs of spaces as one."""
    return _spaced(name).casefold()


def _by_name(session: Session, tenant_id: int) -> dict[str, set[str]]:
    """The site's named people (both products' rows): account ids by folded display name."""
    # Folded here, not in SQL: SQLite's lower() folds ASCII letters only, and names come in every
    # script. Only an admin's save or settings page reads this, once.
    found: dict[str, set[str]] = {}
    for account, name in session.execute(select(Person.account_id, Person.display_name).where(
            of_site(Person.tenant_id, tenant_id), Person.display_name.is_not(None))):
        if name and name.strip():
            found.setdefault(_folded(name), set()).add(account)
    return found


def matching_people(session: Session, tenant_id: int, entries: Iterable[str]) -> dict[str, list[str]]:
    """The site's account ids each entry names: the account with that id, else everyone whose
    display name it is (in any case); an empty list for no one."""
    wanted = list(dict.fromkeys(entries))
    if not wanted:
        return {}
    ids = set(session.scalars(select(Person.account_id).where(
        of_site(Person.tenant_id, tenant_id), Person.account_id.in_(wanted))))
    named = _by_name(session, tenant_id) if any(e not in ids for e in wanted) else {}
    return {e: [e] if e in ids else sorted(named.get(_folded(e), ())) for e in wanted}


def typed_names(session: Session, tenant_id: int, accounts: Iterable[str]) -> dict[str, str]:
    """How to show each account where an admin types people: the display name (runs of spaces as
    one) when it names that person alone (so saving it again stores the same id), else the id."""
    accounts = list(dict.fromkeys(accounts))
    if not accounts:
        return {}
    rows = session.execute(select(Person.account_id, Person.display_name).where(
        of_site(Person.tenant_id, tenant_id), Person.account_id.in_(accounts),
        Person.display_name.is_not(None)).order_by(Person.id))
    # No comma: the settings pages split what is typed at commas. Spaces as typed names are
    # compared: a text field drops a line break, which would join two words into one.
    names = {account: _spaced(name) for account, name in rows
             if name and name.strip() and "," not in name}
    back = matching_people(session, tenant_id, names.values())
    return {a: names[a] if a in names and back[names[a]] == [a] else a for a in accounts}


def typed_rules(session: Session, tenant_id: int, settings: dict[str, Any]) -> dict[str, str]:
    """How the admin pages show each account id the settings' people rules hold (`typed_names`)."""
    return typed_names(session, tenant_id, [a for f in PEOPLE_RULES for a in settings[f]])
