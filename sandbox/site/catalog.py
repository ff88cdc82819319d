"""What the demo offers to look at: issues and pages worth opening, and people to act as."""
from __future__ import annotations

from collections import Counter
from typing import Any

from sandbox import datasets
from sandbox.site.server import FakeHost

PICKED = 60  # issues or pages in a picker
PEOPLE = 8  # people in a viewer switch
READABLE = (1000, 6000)  # characters of storage format: a page one reads without scrolling long


def issue_summary(issue: dict[str, Any], duplicate_of: str | None = None) -> dict[str, Any]:
    """One picker entry: key, summary, status, and the earlier issue it duplicates if known."""
    fields = issue["fields"]
    return {"key": issue["key"], "summary": fields.get("summary") or "",
            "status": (fields.get("status") or {}).get("name"), "duplicate_of": duplicate_of}


def issues(host: FakeHost) -> list[dict[str, Any]]:
    """Issues with a known duplicate on the site first (newest first), then the newest others."""
    with host.lock:
        loaded = dict(host.store.issues)
        sets = [name for name in host.jira_sets if name in datasets.JIRA_SETS]
    known = {later: earlier for name in sets for later, earlier in datasets.duplicates(name)}
    order = sorted(loaded, key=lambda key: (loaded[key]["fields"].get("created") or ""),
                   reverse=True)
    with_duplicate = [k for k in order if known.get(k) in loaded]
    others = [k for k in order if known.get(k) not in loaded]
    return [issue_summary(loaded[key], known.get(key))
            for key in (with_duplicate + others)[:PICKED]]


def jira_people(host: FakeHost) -> list[dict[str, Any]]:
    """The people who did most on the site's issues: assigned, reported or commented."""
    counts: Counter[str] = Counter()
    with host.lock:
        for issue in host.store.issues.values():
            fields = issue["fields"]
            for role in ("assignee", "reporter"):
                counts[_account(fields.get(role))] += 1
            for comment in (fields.get("comment") or {}).get("comments", []):
                counts[_account(comment.get("author"))] += 1
    return _people(host, counts)


def pages(host: FakeHost) -> list[dict[str, Any]]:
    """Pages of a readable length edited by someone other than their creator (two contributors)
    first, longest first."""
    with host.lock:
        found = [p for pid, p in host.store.pages.items() if host.store.page_kinds[pid] == "page"]
        spaces = {sid: s["key"] for sid, s in host.store.spaces.items()}

    def order(page: dict[str, Any]) -> tuple[bool, bool, int]:
        size = len(page["body"]["storage"].get("value") or "")
        one_author = (page.get("version") or {}).get("authorId") == page.get("authorId")
        return one_author, not READABLE[0] <= size <= READABLE[1], -size

    found.sort(key=order)
    return [{"id": str(p["id"]), "title": p.get("title") or "", "space": spaces.get(
        str(p.get("spaceId")))} for p in found[:PICKED]]


def confluence_people(host: FakeHost) -> list[dict[str, Any]]:
    """The people who created or last edited most of the site's pages."""
    counts: Counter[str] = Counter()
    with host.lock:
        for page in host.store.pages.values():
            counts[page.get("authorId") or ""] += 1
            counts[(page.get("version") or {}).get("authorId") or ""] += 1
    return _people(host, counts)


def _account(user: dict[str, Any] | None) -> str:
    return (user or {}).get("accountId") or (user or {}).get("name") or ""


def _people(host: FakeHost, counts: Counter[str]) -> list[dict[str, Any]]:
    counts.pop("", None)
    with host.lock:
        users = {a: host.store.users.get(a) for a, _ in counts.most_common()}
    # An app's account (the commit bot) is nobody a person acts as: Inflow never suggests it either.
    people = [(a, u) for a, u in users.items() if (u or {}).get("accountType") != "app"][:PEOPLE]
    return [{"account_id": a, "name": (u or {}).get("displayName") or a} for a, u in people]
