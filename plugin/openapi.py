"""`GET /api/openapi.json`: the JSON API described from its marshmallow schemas (apispec).

Request bodies are the schemas the views validate with (plugin/schemas); the response shapes
below document what each route returns, so clients (and the fuzz tests) can check them. The
document is built from the app's url_map: every `/api/` rule is in it, documented or not.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app, jsonify
from marshmallow import INCLUDE, Schema, fields

from plugin.schemas.actions import (
    FeedbackSchema,
    KudosSchema,
    LinkSchema,
    PanelEventSchema,
    QuestionSchema,
)
from plugin.schemas.settings import (
    BackfillSchema,
    EraseSchema,
    PreferencesSchema,
    ProjectSettingsSchema,
)

bp = Blueprint("openapi", __name__)

SPEC_PATH = "/api/openapi.json"
SECURITY: list[dict[str, list[str]]] = [{"contextJwt": []}]
_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


# ---------- response shapes ----------

class ErrorSchema(Schema):
    """Every 4xx/5xx JSON body: a machine code, a sentence, and field messages for 422s."""

    error = fields.String(required=True)
    message = fields.String(required=True)
    errors = fields.Dict(keys=fields.String())
    # Why: a `host_rejected` 422 passes on what the site said was wrong (docs/reference.md).
    host_messages = fields.List(fields.String(), metadata={
        "description": "host_rejected: what the product said about the request"})


class _Open(Schema):
    """A response object that may gain fields in later releases (clients ignore unknown ones)."""

    class Meta:
        unknown = INCLUDE


class _ItemRef(_Open):
    """An issue or page a response names, with the link to open it."""

    item_id = fields.Integer(required=True)
    source = fields.String(required=True)
    key = fields.String(required=True)
    title = fields.String(required=True)
    url = fields.String(allow_none=True)


class EvidenceSchema(_ItemRef):
    """An item that makes someone an expert, and their role on it."""

    role = fields.String(required=True)


class ExpertSchema(_Open):
    """A person to ask: why (`reason`, `work`), and the items that show it (`evidence`)."""

    account_id = fields.String(required=True)
    display_name = fields.String(allow_none=True)
    avatar_url = fields.String(allow_none=True)
    score = fields.Float(required=True)
    reason = fields.String(required=True)
    evidence = fields.List(fields.Nested(EvidenceSchema), required=True)
    answered_here = fields.Integer()
    summary = fields.String()
    work = fields.String(metadata={"description": "Their concrete work, e.g. \"resolved AMQ-1 and AMQ-2\""})


class SuggestionSchema(_ItemRef):
    """An earlier item worth reusing, with its strongest evidence and this viewer's verdict."""

    status = fields.String(allow_none=True)
    resolution = fields.String(allow_none=True)
    snippet = fields.String(required=True, metadata={
        "description": "The passage that matches best (plain text: escape it when rendering)"})
    score = fields.Float(required=True)
    reasons = fields.List(fields.String(), required=True)
    snippet_marks = fields.List(fields.List(fields.Integer()), metadata={
        "description": "[start, end) offsets into `snippet` of the matched words"})
    shared_terms = fields.List(fields.String(), metadata={
        "description": "The distinctive words both items use"})
    verdict = fields.String(allow_none=True, metadata={"description": "helped, not_relevant or null"})


class PanelSchema(Schema):
    """The data one panel renders (experts, reuse or contributors)."""

    panel = fields.String(required=True)
    item = fields.Dict(allow_none=True)
    purpose = fields.String(required=True)
    enabled = fields.Boolean(required=True)
    empty_reason = fields.String(allow_none=True)
    experts = fields.List(fields.Nested(ExpertSchema))
    questions = fields.List(fields.Dict())
    suggestions = fields.List(fields.Nested(SuggestionSchema))
    contributors = fields.List(fields.Dict())
    thanks = fields.List(fields.Dict())
    impact = fields.Dict(allow_none=True)
    viewer = fields.String(allow_none=True)


class ExpertRefSchema(Schema):
    account_id = fields.String(required=True)
    name = fields.String(allow_none=True)


class QuestionAskedSchema(Schema):
    id = fields.Integer(required=True)
    state = fields.String(required=True)
    expert = fields.Nested(ExpertRefSchema, required=True)
    comment_id = fields.String(allow_none=True)


class QuestionStateSchema(Schema):
    id = fields.Integer(required=True)
    state = fields.String(required=True)


class FeedbackGivenSchema(Schema):
    target_item_id = fields.Integer(required=True)
    verdict = fields.String(required=True)


class LinkCreatedSchema(Schema):
    key = fields.String(required=True)
    target_key = fields.String(required=True)
    link_type = fields.String(required=True)


class KudosGivenSchema(Schema):
    id = fields.Integer(required=True)
    to_account_id = fields.String(required=True)


def _listed(description: str) -> fields.List:
    return fields.List(fields.String(), required=True, metadata={"description": description})


class StoredSettingsSchema(Schema):
    """A project's settings with defaults filled in: every field the POST body takes."""

    purpose = fields.String(required=True)
    panels = fields.Dict(required=True)
    include_groups = _listed("Group names as Jira spells them")
    exclude_groups = _listed("Group names as Jira spells them")
    include_people = _listed("Account ids")
    exclude_people = _listed("Account ids")
    follow_up_hours = fields.Integer(required=True)
    learn_projects = _listed("Jira project keys")
    learn_spaces = _listed("Confluence space keys")
    privacy = fields.Dict(required=True)


class TypedPeopleSchema(Schema):
    """Each account id of a project's people rules, as the settings pages show it."""

    people = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class DashboardSchema(Schema):
    project = fields.String(allow_none=True)
    weeks = fields.List(fields.Dict(), required=True)


class PreferencesStateSchema(Schema):
    opted_out = fields.Boolean(required=True)
    paused_until = fields.String(allow_none=True, required=True)
    weekly_digest = fields.Boolean(required=True)


class MeSchema(Schema):
    account_id = fields.String(required=True)
    topics = fields.Raw()
    evidence = fields.List(fields.Dict())
    impact = fields.Dict(allow_none=True)
    preferences = fields.Nested(PreferencesStateSchema, required=True)


class ErasedSchema(Schema):
    erased = fields.Boolean(required=True)


# ---------- operations ----------

@dataclass(frozen=True)
class Operation:
    """What one route takes and returns on success."""

    summary: str
    status: int
    response: type[Schema] | None = None
    body: type[Schema] | None = None
    errors: tuple[int, ...] = (401, 403, 404)
    query: tuple[str, ...] = ()  # names in QUERY
    repeat: int | None = None  # the status of the same request again (the first one's answer)


# Refused before any view runs (connect/headers.py), so every route may answer them: a NUL in
# the address (400) and a body over MAX_CONTENT_LENGTH, read or not (413).
EVERY_ROUTE = (400, 413)


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("/api/content/<source>/<key>/<panel>", "get"):
        Operation("The data an experts, reuse or contributors panel renders", 200, PanelSchema),
    ("/api/questions", "post"):
        Operation("Ask an expert (posted as the viewer's comment); 200 with the open question "
                  "when it was asked already", 201, QuestionAskedSchema, QuestionSchema,
                  (400, 401, 403, 404, 413, 422, 429), repeat=200),
    ("/api/questions/<int:question_id>/accept", "post"):
        Operation("The asker accepts the answer", 200, QuestionStateSchema, None,
                  (401, 403, 404, 409)),
    ("/api/feedback", "post"):
        Operation("Helped / Not relevant on a suggestion", 200, FeedbackGivenSchema,
                  FeedbackSchema, (400, 401, 403, 404, 409, 413, 422)),
    ("/api/links", "post"):
        Operation("Link the issue to a suggested one (as the viewer)", 201, LinkCreatedSchema,
                  LinkSchema, (400, 401, 403, 404, 413, 422)),
    ("/api/kudos", "post"):
        Operation("Thank a contributor", 201, KudosGivenSchema, KudosSchema,
                  (400, 401, 403, 404, 413, 422, 429)),
    ("/api/events", "post"):
        Operation("Record a click on a suggestion", 204, None, PanelEventSchema,
                  (400, 401, 403, 413, 422)),
    ("/api/admin/projects/<project_key>/settings", "get"):
        Operation("A project's settings (project admins)", 200, StoredSettingsSchema),
    ("/api/admin/projects/<project_key>/settings", "post"):
        Operation("Change a project's settings; fields left out keep their values (project admins)",
                  200, StoredSettingsSchema, ProjectSettingsSchema,
                  (400, 401, 403, 404, 409, 413, 422)),
    ("/api/admin/projects/<project_key>/people", "get"):
        Operation("The people of a project's settings by display name (project admins)", 200,
                  TypedPeopleSchema),
    ("/api/admin/projects/<project_key>/dashboard", "get"):
        Operation("Twelve weeks of adoption (project admins)", 200, DashboardSchema),
    ("/api/admin/backfill", "get"):
        Operation("The site's backfill status (admins of ?projectKey=)", 200,
                  query=("projectKey",)),
    ("/api/admin/backfill", "post"):
        Operation("Backfill now (admins of ?projectKey=)", 202, None, BackfillSchema,
                  (400, 401, 403, 404, 409, 413, 422), query=("projectKey",)),
    ("/api/me", "get"): Operation("What Inflow knows about the viewer", 200, MeSchema),
    ("/api/me/preferences", "post"):
        Operation("Opt out or pause", 200, PreferencesStateSchema, PreferencesSchema,
                  (400, 401, 403, 409, 413, 422)),
    ("/api/me/export", "get"): Operation("Everything stored about the viewer", 200),
    ("/api/me/erase", "post"):
        Operation("Erase the viewer's data", 200, ErasedSchema, EraseSchema,
                  (400, 401, 403, 409, 413, 422)),
}

PARAMETERS: dict[str, dict[str, Any]] = {
    "source": {"type": "string", "enum": ["jira", "confluence"]},
    "panel": {"type": "string", "enum": ["experts", "reuse", "contributors"]},
    "key": {"type": "string", "pattern": "^[^/]{1,255}$"},
    "project_key": {"type": "string", "pattern": "^[^/]{1,50}$"},
    "question_id": {"type": "integer", "minimum": 0},
}


# Query parameters the views read (request.args), by name.
QUERY: dict[str, dict[str, Any]] = {
    "projectKey": {"required": True, "description": "The project whose admins may do this",
                   "schema": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]{0,49}$"}},
}


def openapi_path(rule: str) -> str:
    """`/api/questions/<int:question_id>/accept` → `/api/questions/{question_id}/accept`."""
    return _CONVERTER.sub(lambda m: "{" + m.group(2) + "}", rule)


def _parameters(rule: str, query: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    path = [{"name": name, "in": "path", "required": True,
             "schema": PARAMETERS.get(name, {"type": "string"})}
            for name in (m.group(2) for m in _CONVERTER.finditer(rule))]
    return path + [{"name": name, "in": "query", **QUERY[name]} for name in query]


def _response(description: str, schema: Any) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(rule: str, method: str) -> dict[str, Any]:
    op = OPERATIONS.get((rule, method)) or Operation("Undocumented", 200)
    responses = {str(op.status): _response("Success", op.response)}
    if op.repeat is not None:
        responses[str(op.repeat)] = _response("Done already: the same answer", op.response)
    for status in sorted({*op.errors, *EVERY_ROUTE}):
        responses[str(status)] = _response("Refused or invalid", ErrorSchema)
    result: dict[str, Any] = {"summary": op.summary, "security": SECURITY,
                              "parameters": _parameters(rule, op.query), "responses": responses}
    if op.body is not None:
        result["requestBody"] = {"required": True,
                                 "content": {"application/json": {"schema": op.body}}}
    return result


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.0 document of every `/api/` route of this app."""
    spec = APISpec(title="Inflow JSON API", version="1", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "Called by Inflow's panels with context JWTs "
                                        "(`Authorization: JWT <token>`) or by Forge with FITs."},
                   servers=[{"url": app.config.get("INFLOW_BASE_URL", "/")}])
    spec.components.security_scheme("contextJwt", {"type": "apiKey", "in": "header",
                                                   "name": "Authorization"})
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.rule == SPEC_PATH:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(rule.rule, {})[method.lower()] = _operation(rule.rule, method.lower())
    for path, operations in sorted(paths.items()):
        spec.path(path=openapi_path(path), operations=operations)
    return spec.to_dict()


@bp.get(SPEC_PATH)
def serve() -> Any:
    """The document (public: it describes the API, it holds no data)."""
    cached = current_app.extensions.get("inflow.openapi")
    if cached is None:
        cached = current_app.extensions["inflow.openapi"] = build_spec(current_app)
    return jsonify(cached)


def init_app(app: Flask) -> None:
    """Register the route."""
    app.register_blueprint(bp)
