"""/demo: the sandbox site's pages as Jira and Confluence lay them out, Inflow's iframes in them.

The page plays the host: it asks the sandbox site for the content and for each iframe's signed
URL (the site holds the shared secrets), frames Inflow's modules where the products put them, and
answers all.js inside the frames (demo.js). Everything in the frames is the app, over HTTP.
"""
from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    url_for,
)

from connect.auth import get_db
from connect.descriptor import build_descriptor
from sandbox.demo import readiness
from sandbox.demo.site_client import NotOnSite, SiteClient, SiteUnavailable

bp = Blueprint("demo", __name__, url_prefix="/demo", template_folder="templates",
               static_folder="static", static_url_path="/static")

SITE_KEY = "inflow.sandbox_site"
ALL_JS_PATH = "/demo/all.js"
ALL_JS = Path(__file__).parent / "vendor" / "all.js.gz"  # atlassian-connect-js's (vendor/README.md)
ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,31}-[0-9]{1,9}$")
PAGE_ID = re.compile(r"^[0-9]{1,20}$")
MODULE_KEY = re.compile(r"^[a-z0-9-]{1,100}$")  # Connect's module keys
PRODUCTS = ("jira", "confluence")
ISSUE_PANELS = "atl.jira.view.issue.right.context"
PAGE_MACROS = ("inflow-ask-an-expert", "inflow-related-work", "inflow-contributors-kudos")
JSON_PATHS = ("/demo/token", "/demo/frame")  # fetched by demo.js, not opened by a person
ERRORS = {400: "bad_request", 404: "not_found", 502: "unavailable"}


def site() -> SiteClient:
    """The sandbox site the demo shows."""
    return current_app.extensions[SITE_KEY]


def _descriptor(product: str) -> dict[str, Any]:
    config = current_app.config
    return build_descriptor(product, config["INFLOW_BASE_URL"], config["INFLOW_APP_KEY"])


def _viewer(people: list[dict[str, Any]], default: str | None = None) -> str:
    """The person the page acts as (`?as=`): one of the site's people, else a 400."""
    wanted = request.args.get("as") or default or people[0]["account_id"]
    if wanted not in {p["account_id"] for p in people}:
        abort(400, description=f"{wanted!r} is not one of the sandbox's people to act as.")
    return wanted


def _backfill_progress(catalog: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """Each product's backfill while one is not done yet (None once all are)."""
    db = get_db()
    states = readiness.backfills(db, readiness.tenant_ids(db, catalog["installed"]))
    if states and all(s["status"] == "done" for s in states.values()):
        return None
    return states


def _page(template: str, catalog: dict[str, Any], tab: str, viewer: str,
          people: list[dict[str, Any]], **context: Any) -> str:
    return render_template(template, catalog=catalog, tab=tab, viewer=viewer, people=people,
                           backfill=_backfill_progress(catalog), **context)


@bp.get("")
def issue_view() -> Any:
    """An issue as Jira's issue view shows it, Inflow's web panels in the right column."""
    catalog = site().catalog()
    jira = catalog["jira"]
    key = (request.args.get("issue") or jira["issues"][0]["key"]).strip().upper()
    if not ISSUE_KEY.match(key):
        abort(400, description="An issue key looks like AMQ-1234.")
    viewer = _viewer(jira["people"])
    issue = site().issue(key)
    context = {"issue.key": key, "issue.id": issue["id"], "project.key": issue["project"]["key"],
               "project.id": issue["project"]["id"]}
    modules = sorted((m for m in _descriptor("jira")["modules"]["webPanels"]
                      if m["location"] == ISSUE_PANELS), key=lambda m: m.get("weight", 0))
    panels = [{"key": m["key"], "name": m["name"]["value"],
               "src": site().frame("jira", m["key"], viewer, context)} for m in modules]
    return _page("demo/issue.html", catalog, "issue", viewer, jira["people"], issue=issue,
                 panels=panels)


@bp.get("/page")
def page_view() -> Any:
    """A Confluence page: byline with Inflow's byline item, text, then Inflow's macros."""
    catalog = site().catalog()
    wiki = catalog["confluence"]
    page_id = (request.args.get("page") or wiki["pages"][0]["id"]).strip()
    if not PAGE_ID.match(page_id):
        abort(400, description="A page id is a number.")
    viewer = _viewer(wiki["people"])
    page = site().page(page_id)
    space = (page.get("space") or {}).get("key") or ""
    context = {"page.id": page_id, "content.id": page_id, "space.key": space,
               "output.type": "display", "topic": "", "scope": "space", "period": "month"}
    names = {m["key"]: m["name"]["value"] for m in _descriptor("confluence")["modules"][
        "dynamicContentMacros"]}
    macros = [{"key": key, "name": names[key], "src": site().frame("confluence", key, viewer,
                                                                   context)}
              for key in PAGE_MACROS]
    byline = {"sign": _signing_url("confluence", "inflow-byline", viewer, context),
              "title_src": site().frame("confluence", "inflow-byline", viewer, context,
                                        part="contextProvider")}
    return _page("demo/page.html", catalog, "page", viewer, wiki["people"], page=page,
                 macros=macros, byline=byline)


@bp.get("/admin")
def admin_view() -> Any:
    """The project admin tab, for the site's project administrator by default."""
    catalog = site().catalog()
    jira = catalog["jira"]
    admins = [a["account_id"] for a in jira["admins"]]
    viewer = _viewer(jira["people"], default=admins[0] if admins else None)
    project = jira["projects"][0]
    src = site().frame("jira", "inflow-project-admin", viewer,
                       {"project.key": project["key"], "project.id": project["id"]})
    return _page("demo/admin.html", catalog, "admin", viewer, jira["people"], project=project,
                 src=src, admins=admins)


@bp.get("/me")
def personal_view() -> Any:
    """The viewer's own Inflow page (Jira's general page)."""
    catalog = site().catalog()
    viewer = _viewer(catalog["jira"]["people"])
    src = site().frame("jira", "inflow-me-jira", viewer, {})
    return _page("demo/me.html", catalog, "me", viewer, catalog["jira"]["people"], src=src)


@bp.get("/sent")
def sent_view() -> Any:
    """What Inflow wrote to the sandbox site: comments, links and notifications."""
    catalog = site().catalog()
    viewer = _viewer(catalog["jira"]["people"])
    return _page("demo/sent.html", catalog, "sent", viewer, catalog["jira"]["people"],
                 activity=site().activity())


@bp.get("/all.js")
def all_js() -> Any:
    """Atlassian's all.js for the demo's frames, as its CDN serves it (gzip, cached a day)."""
    packed = ALL_JS.read_bytes()
    gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
    response = Response(packed if gzipped else gzip.decompress(packed),
                        mimetype="text/javascript")
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.cache_control.public, response.cache_control.max_age = True, 86400
    return response


@bp.get("/token")
def token() -> Any:
    """A context token for the frames' calls (what AP.context.getToken() returns)."""
    product, viewer = _product_and_viewer()
    return jsonify({"token": site().token(product, viewer)})


@bp.get("/frame")
def frame() -> Any:
    """A module's iframe URL signed now, for a frame the page opens later (the byline's dialog).

    The host signs a dialog's URL when it is opened: one signed when the page was rendered
    expires (IFRAME_TTL, three minutes) before a reader may get to it.
    """
    product, viewer = _product_and_viewer()
    module = request.args.get("module", "")
    if not MODULE_KEY.match(module):
        abort(400, description="module is the key of one of Inflow's modules.")
    context = {k: v for k, v in request.args.items() if k not in ("product", "module", "as")}
    return jsonify({"src": site().frame(product, module, viewer, context)})


def _signing_url(product: str, module: str, viewer: str, context: dict[str, str]) -> str:
    """Where demo.js gets `module`'s signed src when it opens the frame (see `frame`)."""
    query: dict[str, Any] = {**context, "product": product, "module": module, "as": viewer}
    return url_for("demo.frame", **query)


def _product_and_viewer() -> tuple[str, str]:
    """`?product=` (else a 400) and the person to sign for, one of that product's people."""
    product = request.args.get("product", "")
    if product not in PRODUCTS:
        abort(400, description="product is jira or confluence.")
    return product, _viewer(site().catalog()[product]["people"])


def _problem(message: str, status: int) -> Any:
    """JSON for what demo.js fetches, else the page a person reads."""
    if request.path in JSON_PATHS:
        return jsonify({"error": ERRORS[status], "message": message}), status
    return render_template("demo/problem.html", message=message, status=status), status


@bp.errorhandler(NotOnSite)
def _not_on_site(exc: NotOnSite) -> Any:
    return _problem(str(exc), 404)


@bp.errorhandler(SiteUnavailable)
def _site_down(exc: SiteUnavailable) -> Any:
    return _problem(str(exc), 502)


@bp.errorhandler(400)
def _bad_request(exc: Any) -> Any:
    return _problem(exc.description, 400)
