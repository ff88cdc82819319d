"""The sandbox data sets, parsed once per process and shaped as Jira Cloud v3 / Confluence v2."""
from __future__ import annotations

import copy
import zlib
from datetime import datetime
from functools import cache
from typing import Any

from connect.adf import text_to_adf
from sandbox import datasets

JIRA_DATASETS = datasets.JIRA_SETS
AVATAR = "https://avatar-management.services.atlassian.com/default/{size}"


def parse_jira_time(value: str | None) -> datetime | None:
    """Jira's '2004-06-05T01:20:20.000+0000' as an aware datetime."""
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def parse_iso(value: str | None) -> datetime | None:
    """Confluence's '2024-10-03T00:00:00.000Z' as an aware datetime."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def jira_dataset(name: str) -> list[dict[str, Any]]:
    """The v2-shaped issues of one data set (shared, parsed once: do not mutate)."""
    if name == "jira-rest-sample":
        return datasets.jira_rest_sample()
    return datasets.jira_issues(name)


# Conversion to ADF is the slow part of loading (seconds for a whole set), so issues are converted
# only when served, once per process; the entry keeps the source alive so its id() stays unique.
_V3: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}


def v3_cached(issue: dict[str, Any]) -> dict[str, Any]:
    """issue_to_v3, remembered per source dict (shared result: copy before changing)."""
    entry = _V3.get(id(issue))
    if entry is None or entry[0] is not issue:
        entry = (issue, issue_to_v3(issue))
        _V3[id(issue)] = entry
    return entry[1]


def project_of(issue: dict[str, Any]) -> dict[str, str]:
    """{id, key, name} of the issue's project (ids are synthesised when the data lacks them)."""
    project = issue["fields"].get("project") or {}
    key = project.get("key") or issue["key"].split("-")[0]
    return {"id": str(project.get("id") or project_id(key)), "key": key,
            "name": project.get("name") or key}


def people_v2(issue: dict[str, Any]) -> list[dict[str, Any]]:
    """Every user named on a v2 issue, converted to Cloud users."""
    fields = issue["fields"]
    people = [fields.get(role) for role in ("reporter", "creator", "assignee")]
    people += [c.get("author") for c in (fields.get("comment") or {}).get("comments", [])]
    return [u for u in map(user_v3, people) if u]


@cache
def dataset_people(name: str) -> dict[str, dict[str, Any]]:
    """accountId -> user for a whole data set, computed once per process."""
    people: dict[str, dict[str, Any]] = {}
    for issue in jira_dataset(name):
        for user in people_v2(issue):
            people.setdefault(user["accountId"], user)
    return people


def confluence_pages() -> list[dict[str, Any]]:
    """The Hyperledger pages in v2 shape (shared: do not mutate)."""
    return datasets.confluence_pages()


def confluence_spaces() -> list[dict[str, Any]]:
    return datasets.confluence_spaces()


def confluence_users() -> list[dict[str, Any]]:
    return datasets.confluence_users()


def project_id(project_key: str) -> str:
    """A stable numeric project id (the data sets carry keys only)."""
    return str(10000 + zlib.crc32(project_key.encode()) % 90000)


# The Apache Software Foundation's integration accounts in these exports (commit notices, the
# GitHub mirror, CI reports): on Jira Cloud an integration posts as an app (accountType "app").
APP_ACCOUNTS = frozenset({"jira-bot", "githubbot", "hadoopqa", "hudson"})


def user_v3(user: dict[str, Any] | None) -> dict[str, Any] | None:
    """A Cloud user: accountId (Server-era data falls back to the username), name, avatars."""
    if not user:
        return None
    account_id = _account(user)
    if not account_id:
        return None
    return {
        "accountId": account_id,
        "displayName": user.get("displayName") or account_id,
        "avatarUrls": {f"{s}x{s}": AVATAR.format(size=s) for s in (48, 24, 16, 32)},
        # Confluence names a deactivated account "Name (Deactivated)", as the Hyperledger pages show.
        "active": user.get("active", True) is not False
        and not str(user.get("displayName") or "").endswith("(Deactivated)"),
        "accountType": user.get("accountType", "app" if account_id in APP_ACCOUNTS else "atlassian"),
        "timeZone": "UTC",
    }


def _users_of(issue: dict[str, Any]) -> list[dict[str, Any]]:
    fields = issue["fields"]
    comments = (fields.get("comment") or {}).get("comments", [])
    found = [fields.get(role) for role in ("reporter", "creator", "assignee")]
    found += [c.get(role) for c in comments for role in ("author", "updateAuthor")]
    return [user for user in found if isinstance(user, dict)]


def with_user(issue: dict[str, Any], account_id: str, **changes: Any) -> dict[str, Any] | None:
    """A copy of a (v2) issue in which the account's user objects carry `changes` (`active=False`:
    deactivated); None if the account is not on it."""
    if not any(_account(user) == account_id for user in _users_of(issue)):
        return None
    issue = copy.deepcopy(issue)
    for user in _users_of(issue):
        if _account(user) == account_id:
            user.update(changes)
    return issue


def _account(user: dict[str, Any]) -> str | None:
    """The account id user_v3 gives a data set's user."""
    return user.get("accountId") or user.get("name") or user.get("key")


def comment_v3(comment: dict[str, Any]) -> dict[str, Any]:
    """A v2 comment with its wiki-markup body as ADF."""
    author = user_v3(comment.get("author"))
    return {
        "id": str(comment.get("id")),
        "author": author,
        "updateAuthor": user_v3(comment.get("updateAuthor")) or author,
        "body": text_to_adf(comment.get("body") or "") or {"type": "doc", "version": 1,
                                                             "content": []},
        "created": comment.get("created"),
        "updated": comment.get("updated") or comment.get("created"),
        "jsdPublic": True,
    }


def issue_to_v3(issue: dict[str, Any]) -> dict[str, Any]:
    """A v2 issue as Jira Cloud v3 returns it: ADF description and comments, Cloud users."""
    fields = copy.copy(issue["fields"])
    key = issue["key"]
    fields["project"] = project_of(issue)
    fields["description"] = text_to_adf(fields.get("description"))
    for role in ("reporter", "creator", "assignee"):
        fields[role] = user_v3(fields.get(role))
    comments = [comment_v3(c) for c in (fields.get("comment") or {}).get("comments", [])]
    fields["comment"] = {"comments": comments, "maxResults": len(comments),
                         "total": len(comments), "startAt": 0}
    fields.setdefault("labels", [])
    fields.setdefault("components", [])
    fields.setdefault("issuelinks", [])
    fields.setdefault("updated", fields.get("created"))
    return {"id": str(issue["id"]), "key": key, "fields": fields}
