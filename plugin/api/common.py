"""Request parsing and error rendering shared by every JSON API blueprint."""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify
from marshmallow import Schema, ValidationError

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


def _host_failed(exc: HostError) -> tuple[Response, int]:
    log.warning("host call failed: %s", exc)
    status = getattr(exc, "status", 0)
    if status in (403, 404):
        # The host refused the viewer (no permission, no such issue): theirs to fix, not ours.
        return jsonify({"error": "host_refused", "message":
                        "The product refused this action for you (no permission or not found)."}), 403
    return jsonify({"error": "host_unavailable",
                    "message": "The product could not be reached; try again."}), 502


def register_errors(bp: Blueprint) -> None:
    """Turn validation, domain refusals and host failures into short JSON errors."""
    bp.register_error_handler(ValidationError, _invalid)
    bp.register_error_handler(Refused, _refused)
    bp.register_error_handler(HostError, _host_failed)
