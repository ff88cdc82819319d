"""Jira Cloud REST v3 endpoints of the sandbox site (paths exactly as Atlassian's)."""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, jsonify, request

from sandbox.site import data, query
from sandbox.site.server import FakeHost, error

LINK_TYPES = {"duplicate": "Duplicate", "relates": "Relates", "blocks": "Blocks",
              "cloners": "Cloners"}
PERMISSION_IDS = {"BROWSE_PROJECTS": "10", "ADD_COMMENTS": "15", "ADMINISTER_PROJECTS": "23",
                  "LINK_ISSUES": "21", "EDIT_ISSUES": "12", "CREATE_ISSUES": "11"}
_DATE_FIELDS = ("updated", "created", "resolutiondate", "resolved")


def _date_of(host: FakeHost, issue: dict[str, Any], name: str) -> datetime | None:
    if name == "updated":
        return data.parse_jira_time(host.issue_updated(issue["key"]))
    field = "resolutiondate" if name == "resolved" else name
    return data.parse_jira_time(issue["fields"].get(field))


def _getters(host: FakeHost) -> dict[str, Callable[[dict[str, Any]], Any]]:
    """How each supported JQL field reads a (v2 source) issue."""
    def named(field: str) -> Callable[[dict[str, Any]], Any]:
        return lambda i: (i["fields"].get(field) or {}).get("name")

    return {
        "project": lambda i: host.project_key_of(i["key"]),
        "key": lambda i: i["key"], "issuekey": lambda i: i["key"], "id": lambda i: str(i["id"]),
        "status": named("status"), "resolution": named("resolution"),
        "priority": named("priority"),
        "summary": lambda i: i["fields"].get("summary") or "",
        "text": lambda i: i["fields"].get("summary") or "",
        "assignee": lambda i: (data.user_v3(i["fields"].get("assignee")) or {}).get("accountId"),
    }


def _jql_test(host: FakeHost) -> Callable[[query.Clause], Callable[[dict[str, Any]], bool]]:
    getters = _getters(host)

    def resolve(clause: query.Clause) -> Callable[[dict[str, Any]], bool]:
        name, op, values = clause.field, clause.op, clause.values
        if name in _DATE_FIELDS:
            bound = [query.parse_date(values[0])]
            return lambda issue: query.compare(_date_of(host, issue, name), op, bound)
        if name not in getters:
            raise query.QueryError(f"Field '{name}' does not exist or you do not have permission "
                                   "to view it.")
        getter = getters[name]
        if name == "project":  # a project can be named by key or id
            values = [_project_key_of(host, v) for v in values]
        return lambda issue: query.compare(getter(issue), op, values)

    return resolve


def _project_key_of(host: FakeHost, value: str) -> str:
    return next((p["key"] for p in host.store.projects.values()
                 if p["id"] == value or p["key"].lower() == value.lower()), value)


def _sort_key(host: FakeHost, name: str) -> Callable[[dict[str, Any]], Any]:
    if name in _DATE_FIELDS:
        low = datetime.min.replace(tzinfo=UTC)
        return lambda i: _date_of(host, i, name) or low
    if name in ("key", "issuekey", "id"):
        return lambda i: (host.project_key_of(i["key"]), int(i["id"]))
    raise query.QueryError(f"Not able to sort using field '{name}'.")


def run_jql(host: FakeHost, jql: str, account_id: str | None) -> list[dict[str, Any]]:
    """Source issues matching the JQL that the acting account may see, in the requested order."""
    parsed = query.parse(jql)
    if not parsed.clauses:
        raise query.QueryError("Unbounded JQL queries are not allowed here. Please add a search "
                               "restriction to your query.")
    keep = query.matcher(parsed, _jql_test(host))
    with host.lock:
        issues = list(host.store.issues.values())
    found = [i for i in issues if keep(i)
             and host.can_see(account_id, i["key"], host.project_key_of(i["key"]))]
    for name, descending in reversed(parsed.order or [("key", True)]):  # stable: last key first
        found.sort(key=_sort_key(host, name), reverse=descending)
    return found


def select_fields(issue: dict[str, Any], fields: list[str], base: str) -> dict[str, Any]:
    """The issue with only the requested fields (Jira returns only the id without any)."""
    shaped: dict[str, Any] = {"id": issue["id"], "self": f"{base}/rest/api/3/issue/{issue['id']}"}
    if not fields:
        return shaped
    shaped["key"] = issue["key"]
    everything = any(f in ("*all", "*navigable") for f in fields)
    wanted = {f for f in fields if not f.startswith("-")}
    dropped = {f[1:] for f in fields if f.startswith("-")}
    shaped["fields"] = {name: value for name, value in issue["fields"].items()
                        if (everything or name in wanted) and name not in dropped}
    return shaped


def _page_token(jql: str, offset: int, cursor: int) -> str:
    digest = hashlib.sha256(jql.encode()).hexdigest()[:12]
    return base64.urlsafe_b64encode(f"{offset}:{digest}:{cursor}".encode()).decode()


def _offset_of(jql: str, token: str | None) -> tuple[int, int | None]:
    """A token's offset and result cursor (None: the query runs afresh)."""
    if not token:
        return 0, None
    try:
        offset, digest, cursor = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        position = (int(offset), int(cursor))
    except (ValueError, UnicodeDecodeError) as exc:
        raise query.QueryError("The nextPageToken is invalid.") from exc
    if digest != hashlib.sha256(jql.encode()).hexdigest()[:12]:
        raise query.QueryError("The nextPageToken does not belong to this query.")
    return position


_CURSORS_KEPT = 64


def _matching_keys(host: FakeHost, jql: str, account_id: str | None, cursor: int | None) -> tuple[list[str], int]:
    """The query's issue keys in order and the cursor later pages read them from.

    As Jira's own search does, a continued search reads the results its first page found instead
    of running the query again: re-matching and re-sorting every issue for every page made a
    backfill of N issues cost the site O(N^2), more CPU than the app under measurement.
    """
    if cursor is not None:
        with host.lock:
            kept = host.jql_cursors.get((cursor, jql, account_id))
        if kept is not None:
            return kept, cursor
    keys = [i["key"] for i in run_jql(host, jql, account_id)]  # a first page, or a cursor long gone
    with host.lock:
        cursor = next(host.jql_cursor_seq)
        host.jql_cursors[(cursor, jql, account_id)] = keys
        while len(host.jql_cursors) > _CURSORS_KEPT:
            host.jql_cursors.pop(next(iter(host.jql_cursors)))
    return keys, cursor


def _split_list(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def register(app: Flask, host: FakeHost) -> None:
    """Add the Jira endpoints to the sandbox site's app."""

    @app.get("/rest/api/3/serverInfo")
    def server_info() -> Response:
        return jsonify({"baseUrl": host.base_url("jira"), "deploymentType": "Cloud",
                        "serverTitle": "Inflow sandbox"})

    @app.get("/rest/api/3/search/jql")
    def search_jql() -> Response:
        jql = request.args.get("jql", "")
        fields = _split_list(request.args.getlist("fields"))
        try:
            offset, cursor = _offset_of(jql, request.args.get("nextPageToken"))
            found, cursor = _matching_keys(host, jql, g.account_id, cursor)
        except query.QueryError as exc:
            return error(400, str(exc))
        limit_cap = 5000 if set(fields) <= {"id", "key"} else 100
        limit = max(1, min(int(request.args.get("maxResults", 50)), limit_cap))
        page = [host.issue_view(key) for key in found[offset:offset + limit]]
        body: dict[str, Any] = {"issues": [select_fields(i, fields, host.url) for i in page if i],
                                "isLast": offset + limit >= len(found)}
        if not body["isLast"]:
            body["nextPageToken"] = _page_token(jql, offset + limit, cursor)
        return jsonify(body)

    @app.post("/rest/api/3/search/approximate-count")
    def approximate_count() -> Response:
        try:
            found = run_jql(host, str((request.get_json(silent=True) or {}).get("jql", "")),
                            g.account_id)
        except query.QueryError as exc:
            return error(400, str(exc))
        return jsonify({"count": len(found)})

    @app.get("/rest/api/3/issue/<key>")
    def get_issue(key: str) -> Response:
        issue = _visible_issue(host, key)
        if issue is None:
            return error(404, "Issue does not exist or you do not have permission to see it.")
        fields = _split_list(request.args.getlist("fields")) or ["*all"]
        return jsonify(select_fields(issue, fields, host.url))

    @app.post("/rest/api/3/issue/bulkfetch")
    def bulk_fetch() -> Response:
        return _bulk_fetch(host, request.get_json(silent=True))

    @app.get("/rest/api/3/issue/<key>/comment")
    def get_comments(key: str) -> Response:
        issue = _visible_issue(host, key)
        if issue is None:
            return error(404, "Issue does not exist or you do not have permission to see it.")
        comments = issue["fields"]["comment"]["comments"]
        start = int(request.args.get("startAt", 0))
        limit = min(int(request.args.get("maxResults", 100)), 100)
        return jsonify({"startAt": start, "maxResults": limit, "total": len(comments),
                        "comments": comments[start:start + limit]})

    @app.post("/rest/api/3/issue/<key>/comment")
    def add_comment(key: str) -> Response:
        return _add_comment(host, key, request.get_json(silent=True))

    @app.post("/rest/api/3/issueLink")
    def add_link() -> Response:
        return _add_link(host, request.get_json(silent=True) or {})

    @app.post("/rest/api/3/issue/<key>/notify")
    def notify(key: str) -> Response:
        body = request.get_json(silent=True)
        if _visible_issue(host, key) is None:
            return error(404, "Issue does not exist or you do not have permission to see it.")
        if not isinstance(body, dict) or not (body.get("textBody") or body.get("htmlBody")):
            return error(400, "The notification must have a textBody or htmlBody.")
        with host.lock:
            host.store.notifications.append({"issue": key, "account_id": g.account_id, **body})
        return Response(status=204)

    register_people(app, host)


BULK_FETCH_LIMIT = 100  # issues per bulk fetch when a multi-valued field (comment) is asked


def _bulk_fetch(host: FakeHost, body: Any) -> Response:
    """Jira's bulk fetch: the visible issues of those named (by id or key), ascending by id.

    As on Jira, issues that do not exist or are hidden are left out, not listed under
    `issueErrors`, which names those Jira failed to read this time (here: `host.bulk_errors`).
    """
    refs = body.get("issueIdsOrKeys") if isinstance(body, dict) else None
    fields = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) and r for r in refs):
        return error(400, "issueIdsOrKeys must be a list of issue ids or keys.")
    if len(refs) > BULK_FETCH_LIMIT:
        return error(400, f"At most {BULK_FETCH_LIMIT} issues can be fetched at once.")
    if fields is not None and not (isinstance(fields, list) and all(isinstance(f, str) for f in fields)):
        return error(400, "fields must be a list of field names.")
    found: dict[str, dict[str, Any]] = {}
    errors = []
    for ref in refs:
        issue = _visible_issue(host, ref)
        if issue is not None and issue["key"] in host.bulk_errors:
            errors.append({"id": str(issue["id"]), "errorMessage": "Retry the request."})
        elif issue is not None:
            found[str(issue["id"])] = issue
    issues = [select_fields(found[i], fields or ["*navigable"], host.url) for i in sorted(found, key=int)]
    return jsonify({"expand": "", "issues": issues, "issueErrors": errors})


def _visible_issue(host: FakeHost, key: str) -> dict[str, Any] | None:
    key = host.store.issue_ids.get(key, key)
    issue = host.issue_view(key)
    if issue is None or not host.can_see(g.account_id, key, issue["fields"]["project"]["key"]):
        return None
    return issue


def _add_comment(host: FakeHost, key: str, body: Any) -> Response:
    issue = _visible_issue(host, key)
    if issue is None:
        return error(404, "Issue does not exist or you do not have permission to see it.")
    adf = body.get("body") if isinstance(body, dict) else None
    if not isinstance(adf, dict) or adf.get("type") != "doc" or not adf.get("content"):
        # v3 accepts only an ADF document here; a plain string is a 400 on a real site too.
        return Response('{"errorMessages":[],"errors":{"comment":"Comment body is not valid!"}}',
                        status=400, mimetype="application/json")
    author = host.store.users.get(g.account_id or host.app_account_id) or data.user_v3(
        {"accountId": g.account_id, "displayName": g.account_id})
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    with host.lock:
        comment_id = str(900000 + sum(map(len, host.store.posted_comments.values())))
        comment = {"id": comment_id, "self": f"{host.url}/rest/api/3/issue/{issue['id']}/comment/"
                   f"{comment_id}", "author": author, "updateAuthor": author, "body": adf,
                   "created": now, "updated": now, "jsdPublic": True}
        host.store.posted_comments[issue["key"]].append(comment)
    response = jsonify(comment)
    response.status_code = 201
    return response


def _add_link(host: FakeHost, body: dict[str, Any]) -> Response:
    name = str((body.get("type") or {}).get("name") or "")
    link_type = LINK_TYPES.get(name.lower())
    if link_type is None:
        return error(404, f"No issue link type with name '{name}' found.")
    ends = {}
    for end in ("inwardIssue", "outwardIssue"):
        ref = body.get(end) or {}
        key = ref.get("key") or host.store.issue_ids.get(str(ref.get("id")))
        if not key or _visible_issue(host, key) is None:
            return error(404, "Issue does not exist or you do not have permission to see it.")
        ends[end] = key
    with host.lock:
        host.store.links.append({"type": link_type, "inward": ends["inwardIssue"],
                                 "outward": ends["outwardIssue"], "account_id": g.account_id,
                                 "comment": body.get("comment")})
    return Response(status=201)


def register_people(app: Flask, host: FakeHost) -> None:
    """Users, permissions, projects and webhooks."""

    @app.get("/rest/api/3/user")
    def get_user() -> Response:
        user = host.store.users.get(request.args.get("accountId", ""))
        if user is None:
            return error(404, "Specified user does not exist or you do not have required "
                              "permissions")
        return jsonify(user)

    @app.get("/rest/api/3/user/groups")
    def user_groups() -> Response:
        account_id = request.args.get("accountId", "")
        if account_id not in host.store.users:
            return error(404, "Specified user does not exist or you do not have required "
                              "permissions")
        return jsonify([{"name": name, "groupId": f"group-{name}"}
                        for name in sorted(host.store.groups.get(account_id, set()))])

    @app.get("/rest/api/3/groups/picker")
    def find_groups() -> Response:
        """Groups whose names contain the query (case-insensitive when asked), at most maxResults."""
        query = request.args.get("query", "")
        folded = request.args.get("caseInsensitive", "false").lower() == "true"
        limit = int(request.args.get("maxResults", 20))
        with host.lock:
            names = sorted(set().union(*host.store.groups.values()))
        hits = [n for n in names if (query.casefold() in n.casefold() if folded else query in n)]
        return jsonify({"header": f"Showing {min(len(hits), limit)} of {len(hits)} matching groups",
                        "total": len(hits), "groups": [{"name": n, "html": n, "labels": [], "groupId": f"group-{n}"}
                                                       for n in hits[:limit]]})

    @app.get("/rest/api/3/user/bulk")
    def bulk_users() -> Response:
        ids = request.args.getlist("accountId")
        if not ids:
            return error(400, "At least one accountId must be given.")
        found = [host.store.users[i] for i in ids if i in host.store.users]
        start = int(request.args.get("startAt", 0))
        limit = int(request.args.get("maxResults", 10))
        return jsonify({"startAt": start, "maxResults": limit, "total": len(found),
                        "isLast": start + limit >= len(found),
                        "values": found[start:start + limit]})

    @app.post("/rest/api/3/permissions/check")
    def permissions_check() -> Response:
        return jsonify(_bulk_permissions(host, request.get_json(silent=True) or {}))

    @app.get("/rest/api/3/mypermissions")
    def my_permissions() -> Response:
        wanted = _split_list(request.args.getlist("permissions"))
        if not wanted:
            return error(400, "The permissions query parameter is required.")
        project = _scope_project(host)
        if project is False:
            return error(404, "Issue or project does not exist.")
        result = {}
        for key in wanted:
            allowed = project is None or (
                host.has_project_permission(g.account_id, key, project[0])
                and host.can_see(g.account_id, *project))
            result[key] = {"id": PERMISSION_IDS.get(key, "0"), "key": key,
                           "name": key.replace("_", " ").title(), "type": "PROJECT",
                           "description": "", "havePermission": bool(allowed)}
        return jsonify({"permissions": result})

    @app.get("/rest/api/3/project/search")
    def project_search() -> Response:
        projects = sorted(host.store.projects.values(), key=lambda p: p["key"])
        keys = set(_split_list(request.args.getlist("keys")))
        projects = [p for p in projects if not keys or p["key"] in keys]
        start = int(request.args.get("startAt", 0))
        limit = int(request.args.get("maxResults", 50))
        values = [{**p, "self": f"{host.url}/rest/api/3/project/{p['id']}",
                   "projectTypeKey": "software", "simplified": False, "style": "classic"}
                  for p in projects[start:start + limit]]
        return jsonify({"startAt": start, "maxResults": limit, "total": len(projects),
                        "isLast": start + limit >= len(projects), "values": values})

    @app.get("/rest/api/3/project/<ref>")
    def get_project(ref: str) -> Response:
        key = _project_key_of(host, ref)
        project = host.store.projects.get(key)
        if project is None or not host.can_see(g.account_id, key):
            return error(404, f"No project could be found with key '{ref}'.")
        return jsonify({**project, "self": f"{host.url}/rest/api/3/project/{project['id']}",
                        "projectTypeKey": "software", "simplified": False, "style": "classic"})

    @app.get("/rest/api/3/webhook/failed")
    def failed_webhooks() -> Response:
        after = int(request.args.get("after", 0))
        limit = int(request.args.get("maxResults", 100))
        with host.lock:
            found = [w for w in host.store.failed_webhooks if w["failureTime"] > after]
        body: dict[str, Any] = {"values": found[:limit], "maxResults": limit}
        if len(found) > limit:
            body["next"] = (f"{host.url}/rest/api/3/webhook/failed?after="
                            f"{found[limit - 1]['failureTime']}&maxResults={limit}")
        return jsonify(body)


def _scope_project(host: FakeHost) -> tuple[str, ...] | None | bool:
    """(project key, issue key?) named by the mypermissions query; None for global; False if unknown."""
    issue_ref = request.args.get("issueKey") or request.args.get("issueId")
    if issue_ref:
        key = host.store.issue_ids.get(issue_ref, issue_ref)
        return (host.project_key_of(key), key) if key in host.store.issues else False
    project_ref = request.args.get("projectKey") or request.args.get("projectId")
    if project_ref:
        key = _project_key_of(host, project_ref)
        return (key,) if key in host.store.projects else False
    return None


def _bulk_permissions(host: FakeHost, body: dict[str, Any]) -> dict[str, Any]:
    """POST /rest/api/3/permissions/check: per permission, the issue and project ids allowed."""
    account_id = body.get("accountId") or g.account_id
    projects_by_id = {p["id"]: p["key"] for p in host.store.projects.values()}
    result = []
    for entry in body.get("projectPermissions") or []:
        issue_ids = [str(i) for i in entry.get("issues") or [] if i is not None]
        project_ids = [str(p) for p in entry.get("projects") or [] if p is not None]
        for permission in entry.get("permissions") or []:
            if not permission:
                continue
            issues = [int(i) for i in issue_ids if _issue_allowed(host, account_id, permission, i)]
            projects = [int(p) for p in project_ids if p in projects_by_id
                        and host.has_project_permission(account_id, permission, projects_by_id[p])]
            result.append({"permission": permission, "issues": issues, "projects": projects})
    return {"projectPermissions": result, "globalPermissions": []}


def _issue_allowed(host: FakeHost, account_id: str | None, permission: str, issue_id: str) -> bool:
    key = host.store.issue_ids.get(issue_id)
    if key is None:
        return False  # invalid ids are ignored, as documented
    project = host.project_key_of(key)
    return (host.can_see(account_id, key, project)
            and host.has_project_permission(account_id, permission, project))
