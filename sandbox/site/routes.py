"""The sandbox site's WSGI app: gate (record, inject, authenticate) plus every product endpoint."""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

from sandbox.site import confluence_api, control, jira_api
from sandbox.site.server import FakeHost, build_flask, error

MAX_REPORTED_ACCOUNTS = 90


def build_app(host: FakeHost) -> Flask:
    """The complete fake Jira + Confluence site."""
    app = build_flask(host)
    jira_api.register(app, host)
    confluence_api.register(app, host)
    control.register(app, host)
    app.wsgi_app = _forge_gateway(app.wsgi_app, host)  # type: ignore[method-assign]

    @app.post("/app/report-accounts/")
    @app.post("/wiki/app/report-accounts/")
    def report_accounts() -> Response:
        return _report_accounts(host)

    return app


def _forge_gateway(wsgi_app: Any, host: FakeHost) -> Any:
    """/ex/<product>/<cloud id>/... as api.atlassian.com routes a Forge remote's product calls."""
    prefixes = {f"/ex/{product}/{host.cloud_id}": product for product in ("jira", "confluence")}

    def gateway(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        for prefix in prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                environ["PATH_INFO"] = path[len(prefix):] or "/"
                for name in ("RAW_URI", "REQUEST_URI"):
                    if environ.get(name, "").startswith(prefix):
                        environ[name] = environ[name][len(prefix):]
                break
        return wsgi_app(environ, start_response)

    return gateway


def _report_accounts(host: FakeHost) -> Response:
    """Personal data reporting: 204 when nothing changed, else 200 with closed/updated accounts."""
    body = request.get_json(silent=True)
    accounts = body.get("accounts") if isinstance(body, dict) else None
    if not isinstance(accounts, list) or not accounts or len(accounts) > MAX_REPORTED_ACCOUNTS:
        return error(400, f"Report between 1 and {MAX_REPORTED_ACCOUNTS} accounts.")
    if any(not isinstance(a, dict) or not a.get("accountId") or not a.get("updatedAt")
           for a in accounts):
        return error(400, "Each account needs accountId and updatedAt.")
    with host.lock:
        changed = [{"accountId": a["accountId"], "status": host.store.account_status[a["accountId"]]}
                   for a in accounts if a["accountId"] in host.store.account_status]
    response = jsonify({"accounts": changed}) if changed else Response(status=204)
    response.headers["Cycle-Period"] = str(host.cycle_period_hours)
    return response
