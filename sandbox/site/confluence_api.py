"""Confluence Cloud endpoints of the sandbox site (v2 pages, v1 CQL search and permission check)."""
from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, request

from sandbox.site import data, query
from sandbox.site.server import FakeHost


def v2_error(status: int, title: str) -> Response:
    response = jsonify({"errors": [{"status": status, "code": "NOT_FOUND" if status == 404
                                    else "INVALID_REQUEST_PARAMETER", "title": title,
                                    "detail": None}]})
    response.status_code = status
    return response


def v1_error(status: int, message: str) -> Response:
    response = jsonify({"statusCode": status, "message": message, "data": {}})
    response.status_code = status
    return response


def _space_key(host: FakeHost, page: dict[str, Any]) -> str | None:
    space = host.store.spaces.get(str(page.get("spaceId")))
    return space["key"] if space else None


def _visible(host: FakeHost, page: dict[str, Any]) -> bool:
    return host.can_see(g.account_id, str(page["id"]), _space_key(host, page))


def shape_page(page: dict[str, Any], body_format: str | None) -> dict[str, Any]:
    """The page as v2 returns it: body only when a body-format was asked for."""
    shaped = {k: v for k, v in page.items() if not k.startswith("_") or k == "_links"}
    shaped["body"] = {"storage": page["body"]["storage"]} if body_format == "storage" else {}
    return shaped


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    return int(base64.urlsafe_b64decode(cursor.encode()).decode())


def _modified(page: dict[str, Any]) -> datetime:
    return data.parse_iso((page.get("version") or {}).get("createdAt")) or datetime.min.replace(
        tzinfo=UTC)


def _list(host: FakeHost, kind: str, path: str) -> Response:
    """GET /wiki/api/v2/pages|blogposts with cursor pagination via _links.next."""
    space_ids = {s for v in request.args.getlist("space-id") for s in v.split(",") if s}
    with host.lock:
        pages = [p for pid, p in host.store.pages.items() if host.store.page_kinds[pid] == kind]
    pages = [p for p in pages if (not space_ids or str(p.get("spaceId")) in space_ids)
             and _visible(host, p)]
    sort = request.args.get("sort", "id")
    sort_key: Callable[[dict[str, Any]], Any] = (
        _modified if sort.lstrip("-") == "modified-date" else (lambda p: int(p["id"])))
    pages.sort(key=sort_key, reverse=sort.startswith("-"))
    try:
        offset = _offset(request.args.get("cursor"))
        limit = max(1, min(int(request.args.get("limit", 25)), 250))
    except ValueError:
        return v2_error(400, "Invalid cursor or limit")
    body_format = request.args.get("body-format")
    links: dict[str, str] = {"base": host.base_url("confluence")}
    if offset + limit < len(pages):
        params = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
        params.append(("cursor", _cursor(offset + limit)))
        links["next"] = f"{path}?{urlencode(params)}"
    return jsonify({"results": [shape_page(p, body_format) for p in pages[offset:offset + limit]],
                    "_links": links})


def _cql_test(host: FakeHost) -> Callable[[query.Clause], Callable[[dict[str, Any]], bool]]:
    def resolve(clause: query.Clause) -> Callable[[dict[str, Any]], bool]:
        name, op, values = clause.field, clause.op, clause.values
        if name in ("lastmodified", "created"):
            bound = [query.parse_date(values[0])]
            return lambda page: query.compare(_modified(page), op, bound)
        getters: dict[str, Callable[[dict[str, Any]], Any]] = {
            "type": lambda p: host.store.page_kinds[str(p["id"])],
            "space": lambda p: _space_key(host, p),
            "id": lambda p: str(p["id"]),
            "title": lambda p: p.get("title") or "",
        }
        if name not in getters:
            raise query.QueryError(f"Could not parse cql : unsupported field '{name}'")
        getter = getters[name]
        return lambda page: query.compare(getter(page), op, values)

    return resolve


def _search_result(host: FakeHost, page: dict[str, Any]) -> dict[str, Any]:
    kind = host.store.page_kinds[str(page["id"])]
    webui = (page.get("_links") or {}).get("webui", f"/pages/{page['id']}")
    return {"content": {"id": str(page["id"]), "type": kind, "status": page.get("status"),
                        "title": page.get("title"), "_links": {"webui": webui}},
            "title": page.get("title"), "excerpt": "", "url": webui,
            "resultGlobalContainer": {"title": _space_key(host, page)},
            "lastModified": (page.get("version") or {}).get("createdAt"),
            "entityType": "content"}


def _of_kind(host: FakeHost, page_id: str, path: str) -> bool:
    """Whether the content is of the kind its v2 path names (/pages/ or /blogposts/)."""
    return host.store.page_kinds.get(page_id) == ("blogpost" if "/blogposts/" in path else "page")


def _content(host: FakeHost, page: dict[str, Any]) -> dict[str, Any]:
    """A page as v1 content (what /rest/api/content/search lists)."""
    kind = host.store.page_kinds[str(page["id"])]
    webui = (page.get("_links") or {}).get("webui", f"/pages/{page['id']}")
    return {"id": str(page["id"]), "type": kind, "status": page.get("status"),
            "title": page.get("title"), "space": {"key": _space_key(host, page)},
            "version": {"when": (page.get("version") or {}).get("createdAt"),
                        "by": {"accountId": (page.get("version") or {}).get("authorId")}},
            "_links": {"webui": webui}}


def _search(host: FakeHost, shape: Callable[[FakeHost, dict[str, Any]], dict[str, Any]],
            path: str) -> Response:
    """GET /wiki/rest/api/search (or content/search) ?cql=... with start/limit pagination."""
    cql = request.args.get("cql", "")
    try:
        parsed = query.parse(cql)
        if not parsed.clauses:
            raise query.QueryError("CQL is required")
        keep = query.matcher(parsed, _cql_test(host))
        with host.lock:
            pages = list(host.store.pages.values())
        found = [p for p in pages if keep(p) and _visible(host, p)]
        for name, descending in reversed(parsed.order or [("lastmodified", True)]):
            if name not in ("lastmodified", "created", "id", "title"):
                raise query.QueryError(f"Cannot order by '{name}'")
            key = _modified if name in ("lastmodified", "created") else (
                (lambda p: int(p["id"])) if name == "id" else (lambda p: p.get("title") or ""))
            found.sort(key=key, reverse=descending)
    except query.QueryError as exc:
        return v1_error(400, str(exc))
    start = int(request.args.get("start", 0))
    limit = max(1, min(int(request.args.get("limit", 25)), 100))
    links: dict[str, str] = {"base": host.base_url("confluence"), "context": "/wiki"}
    if start + limit < len(found):
        links["next"] = path + "?" + urlencode(
            {"cql": cql, "start": start + limit, "limit": limit})
    return jsonify({"results": [shape(host, p) for p in found[start:start + limit]],
                    "start": start, "limit": limit, "size": len(found[start:start + limit]),
                    "totalSize": len(found), "cqlQuery": cql, "_links": links})


def register(app: Flask, host: FakeHost) -> None:
    """Add the Confluence endpoints to the sandbox site's app."""

    @app.get("/wiki/api/v2/pages")
    def list_pages() -> Response:
        return _list(host, "page", "/wiki/api/v2/pages")

    @app.get("/wiki/api/v2/blogposts")
    def list_blogposts() -> Response:
        return _list(host, "blogpost", "/wiki/api/v2/blogposts")

    @app.get("/wiki/api/v2/pages/<page_id>")
    @app.get("/wiki/api/v2/blogposts/<page_id>")
    def get_page(page_id: str) -> Response:
        page = host.store.pages.get(page_id)
        if page is None or not _visible(host, page) or not _of_kind(host, page_id, request.path):
            return v2_error(404, "Page not found")
        return jsonify(shape_page(page, request.args.get("body-format")))

    @app.get("/wiki/api/v2/pages/<page_id>/footer-comments")
    @app.get("/wiki/api/v2/blogposts/<page_id>/footer-comments")
    def footer_comments(page_id: str) -> Response:
        page = host.store.pages.get(page_id)
        if page is None or not _visible(host, page):
            return v2_error(404, "Page not found")
        body_format = request.args.get("body-format")
        with host.lock:
            comments = list(host.store.footer_comments.get(page_id, []))
        results = [{**c, "body": c["body"] if body_format == "storage" else {}} for c in comments]
        return jsonify({"results": results, "_links": {"base": host.base_url("confluence")}})

    @app.get("/wiki/api/v2/spaces")
    def spaces() -> Response:
        keys = {k for v in request.args.getlist("keys") for k in v.split(",") if k}
        ids = {k for v in request.args.getlist("ids") for k in v.split(",") if k}
        found = [s for s in host.store.spaces.values()
                 if (not keys or s["key"] in keys) and (not ids or s["id"] in ids)]
        return jsonify({"results": found, "_links": {"base": host.base_url("confluence")}})

    @app.post("/wiki/api/v2/footer-comments")
    def create_footer_comment() -> Response:
        body = request.get_json(silent=True) or {}
        page_id = str(body.get("pageId") or body.get("blogPostId") or "")
        storage = body.get("body") or {}
        page = host.store.pages.get(page_id)
        # As Confluence: a blog post's id given as pageId (or the other way round) finds nothing.
        kind = "blogpost" if body.get("blogPostId") else "page"
        if page is None or not _visible(host, page) or host.store.page_kinds.get(page_id) != kind:
            return v2_error(404, "Page not found")
        if storage.get("representation") != "storage" or not storage.get("value"):
            return v2_error(400, "body must be {representation: storage, value}")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        comment = host.add_footer_comment(page_id, g.account_id or host.app_account_id,
                                          storage["value"], created_at=now)
        with host.lock:
            host.store.posted_footer_comments[page_id].append(comment)
        return jsonify(comment)

    @app.get("/wiki/api/v2/spaces/<space_id>")
    def get_space(space_id: str) -> Response:
        space = host.store.spaces.get(space_id)
        if space is None or not host.can_see(g.account_id, space["key"]):
            return v2_error(404, "Space not found")
        return jsonify(space)

    @app.get("/wiki/rest/api/search")
    def search() -> Response:
        return _search(host, _search_result, "/rest/api/search")

    @app.get("/wiki/rest/api/content/search")
    def content_search() -> Response:
        return _search(host, _content, "/rest/api/content/search")

    @app.get("/wiki/rest/api/user/bulk")
    def confluence_bulk_users() -> Response:
        """v1 bulk user lookup: ?accountId=a&accountId=b (or a,b); at most 200 come back."""
        ids = [i for v in request.args.getlist("accountId") for i in v.split(",") if i]
        if not ids:
            return v1_error(400, "accountId is required")
        with host.lock:  # users.json of the Hyperledger set, loaded with the pages
            found = [host.store.users[i] for i in dict.fromkeys(ids) if i in host.store.users]
        results = [{"type": "known", "accountId": u["accountId"],
                    "accountType": u.get("accountType") or "atlassian",
                    "accountStatus": "active" if u.get("active", True) else "inactive",
                    "email": "", "publicName": u["displayName"], "displayName": u["displayName"],
                    "profilePicture": {"path": f"/wiki/aa-avatar/{u['accountId']}", "width": 48,
                                       "height": 48, "isDefault": True},
                    "_expandable": {}, "_links": {}} for u in found[:200]]
        return jsonify({"results": results, "start": 0, "limit": 200, "size": len(results),
                        "_links": {"base": host.base_url("confluence")}})

    @app.get("/wiki/rest/api/user/memberof")
    def confluence_member_of() -> Response:
        """v1: the groups a user is a member of, a page at a time (start, limit)."""
        account_id = request.args.get("accountId", "")
        if account_id not in host.store.users:
            return v1_error(404, f"No user found with accountId: {account_id}")
        start, limit = int(request.args.get("start", 0)), min(int(request.args.get("limit", 200)), 200)
        with host.lock:
            names = sorted(host.store.groups.get(account_id, set()))
        results = [{"type": "group", "name": name, "id": f"group-{name}"} for name in names[start:start + limit]]
        return jsonify({"results": results, "start": start, "limit": limit, "size": len(results),
                        "_links": {"base": host.base_url("confluence")}})

    @app.post("/wiki/rest/api/content/<page_id>/permission/check")
    def permission_check(page_id: str) -> Response:
        body = request.get_json(silent=True) or {}
        subject = body.get("subject") or {}
        if subject.get("type") != "user" or not subject.get("identifier") or \
                body.get("operation") not in ("read", "update", "delete"):
            return v1_error(400, "subject {type: user, identifier} and operation are required")
        page = host.store.pages.get(page_id)
        if page is None:
            return v1_error(404, f"No content found with id: {page_id}")
        allowed = host.can_see(subject["identifier"], page_id, _space_key(host, page))
        return jsonify({"hasPermission": allowed, "errors": [] if allowed else [
            {"message": {"key": "permission.denied", "args": []}}]})
