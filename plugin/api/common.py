"""Request parsing and error rendering shared by every JSON API blueprint."""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify
from marshmallow import Schema, ValidationError
from sqlalchemy.exc import IntegrityError

from connect.forge import NoForgeToken
from connect.headers import read_json_object
from connect.host_client import HostError
from plugin.services.errors import Refused

log = logging.getLogger(__name__)


def load(schema: Schema) -> dict[str, Any]:
    """The request body validated by `schema` (400 for non-JSON, 422 with field messages)."""
    return schema.load(read_json_object())


def _invalid(exc: ValidationError) -> tuple[Response, int]:
    return jsonify({"error": "invalid", "message": "Some fields are not valid.",
                    "errors": exc.normalized_messages()}), 422


def _refused(exc: Refused) -> tuple[Response, int]:
    return jsonify(exc.payload()), exc.status


# The host judged what the client sent (a comment too long, a page id it does not know the shape
# of, a link it does not allow): the client's to change, so a 4xx that says what the host said.
_REJECTED = (400, 409, 413, 422)


def _host_failed(exc: HostError) -> Response | tuple[Response, int]:
    log.warning("host call failed: %s", exc)
    if isinstance(exc, NoForgeToken):
        # The call lacks what acting on the site needs: the caller's to fix, no retry will do.
        return jsonify({"error": "forge_token_missing", "message": exc.body}), 400
    status = exc.status
    if status in (403, 404):
        # The host refused the viewer (no permission, no such issue): theirs to fix, not ours.
        return jsonify({"error": "host_refused", "message":
                        "The product refused this action for you (no permission or not found)."}), 403
    if status in _REJECTED:
        # In the message too: the panels show the message, and the person must learn what to change.
        said = exc.messages()
        return jsonify({"error": "host_rejected", "message": "The product rejected this request"
                        + (f": {'; '.join(said)}" if said else "."), "host_messages": said}), 422
    if status == 429:  # the site's rate limit, still on after our retries: later, not never
        response = jsonify({"error": "host_busy", "message": "The product is busy; try again shortly."})
        response.status_code = 503
        if exc.retry_after:
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response
    return jsonify({"error": "host_unavailable",
                    "message": "The product could not be reached; try again."}), 502


def _unique_violation(exc: IntegrityError) -> bool:
    """Whether the database refused a duplicate of a unique key (PostgreSQL 23505, SQLite's text)."""
    return getattr(exc.orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(exc.orig)


def _conflict(exc: IntegrityError) -> tuple[Response, int]:
    # Two requests saving the same new row at once (a double click, two tabs): one wins, the
    # other's insert meets the unique key. Nothing stored is lost; the caller may send it again.
    # Any other integrity error (a NOT NULL, a foreign key) is a bug: a 500 with its traceback.
    if not _unique_violation(exc):
        raise exc
    log.warning("a concurrent change won: %s", exc.orig)
    return jsonify({"error": "conflict", "message":
                    "The same thing was being saved at the same moment; reload and try again."}), 409


def register_errors(bp: Blueprint) -> None:
    """Turn validation, domain refusals, host failures and lost races into short JSON errors."""
    bp.register_error_handler(ValidationError, _invalid)
    bp.register_error_handler(Refused, _refused)
    bp.register_error_handler(HostError, _host_failed)
    bp.register_error_handler(IntegrityError, _conflict)
