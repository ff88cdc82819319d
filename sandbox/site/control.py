"""The sandbox's own endpoints under /_sandbox/: no Atlassian site has these.

They are what a real site keeps behind its login and UI: the install-keys service, installing an
app, the host's signing of iframes and context tokens for whoever is looking, and a read-out of
the content and of what the app wrote. The site listens on loopback only, and everything in it
is public data, so these need no credentials.
"""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

from sandbox.site import catalog, data, views
from sandbox.site.frames import UnknownModule, frame_src
from sandbox.site.install import InstallFailed, install_app
from sandbox.site.server import CONTROL_PREFIX as PREFIX
from sandbox.site.server import FakeHost
from sandbox.site.signing import context_token


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": "bad_request" if status < 500 else "unavailable",
                        "message": message})
    response.status_code = status
    return response


def _viewer() -> str | None:
    return request.args.get("as") or None


def register(app: Flask, host: FakeHost) -> None:
    """Add the /_sandbox/ endpoints."""

    @app.get(f"{PREFIX}/install-keys/<kid>")
    def install_key(kid: str) -> Response:
        pem = host.signer.public_pem(kid)
        if pem is None:
            return Response("not found", status=404, mimetype="text/plain")
        return Response(pem, mimetype="application/x-pem-file")

    @app.post(f"{PREFIX}/install")
    def install() -> Response:
        body = request.get_json(silent=True)
        app_url = body.get("app_url") if isinstance(body, dict) else None
        products = body.get("products", ["jira", "confluence"]) if isinstance(body, dict) else []
        if not isinstance(app_url, str) or not app_url.startswith(("http://", "https://")) or \
                not isinstance(products, list) or not set(products) <= set(host.installs):
            return _error(400, "Give app_url (http or https) and products (jira, confluence).")
        installed = {}
        for product in products:
            try:
                installed[product] = install_app(
                    host, f"{app_url.rstrip('/')}/{product}/atlassian-connect.json",
                    product)["clientKey"]
            except InstallFailed as exc:
                return _error(502, str(exc))
        return jsonify({"installed": installed})

    @app.get(f"{PREFIX}/catalog")
    def content_catalog() -> Response:
        return jsonify(_catalog(host))

    @app.get(f"{PREFIX}/issues/<key>")
    def issue(key: str) -> Response:
        found = views.issue(host, key)
        return jsonify(found) if found else _error(404, f"No issue {key} on the sandbox site.")

    @app.get(f"{PREFIX}/pages/<page_id>")
    def page(page_id: str) -> Response:
        found = views.page(host, page_id)
        return jsonify(found) if found else _error(404, f"No page {page_id} on the sandbox site.")

    @app.get(f"{PREFIX}/frame/<product>/<module_key>")
    def frame(product: str, module_key: str) -> Response:
        if product not in host.installs:
            return _error(404, f"No product {product!r}.")
        context = {k: v for k, v in request.args.items() if k not in ("as", "part")}
        part = request.args.get("part", "url")
        if part not in ("url", "contextProvider"):
            return _error(400, "part is url or contextProvider.")
        try:
            return jsonify({"src": frame_src(host, product, module_key, context, _viewer(),
                                             part)})
        except UnknownModule as exc:
            return _error(404, f"No module {exc} installed in {product}.")

    @app.get(f"{PREFIX}/token/<product>")
    def token(product: str) -> Response:
        install = host.installs.get(product)
        if install is None:
            return _error(404, f"No product {product!r}.")
        return jsonify({"token": context_token(install.client_key, install.secret, _viewer())})

    @app.get(f"{PREFIX}/activity")
    def activity() -> Response:
        return jsonify(views.activity(host))


def _catalog(host: FakeHost) -> dict[str, Any]:
    with host.lock:
        admins = sorted(host.store.project_admins)
        installed = {p: host.installs[p].client_key for p in host.descriptors}
        projects = sorted(host.store.projects.values(), key=lambda p: p["key"])
        issue_count, page_count = len(host.store.issues), len(host.store.pages)
        created = sorted(i["fields"].get("created") or "" for i in host.store.issues.values())
    return {"installed": installed, "jira_sets": list(host.jira_sets),
            "jira": {"projects": projects, "issues": catalog.issues(host),
                     "people": catalog.jira_people(host), "issue_count": issue_count,
                     "issue_total": sum(len(data.jira_dataset(n)) for n in host.jira_sets),
                     "first_created": created[0] if created else None,
                     "last_created": created[-1] if created else None,
                     "admins": [{"account_id": a, "project": p} for a, p in admins]},
            "confluence": {"pages": catalog.pages(host), "people": catalog.confluence_people(host),
                           "page_count": page_count,
                           "page_total": len(data.confluence_pages())}}
