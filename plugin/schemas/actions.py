"""Request bodies of the panel actions: ask, accept, feedback, link, kudos, events."""
from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

SOURCES = ("jira", "confluence")
KEY = validate.Length(min=1, max=255)
ACCOUNT = validate.Length(min=1, max=128)
MAX_ID = 2**31 - 1  # ids are 32-bit integers in every backend


class ItemRefSchema(Schema):
    """Which item the panel shows."""

    class Meta:
        unknown = RAISE

    source = fields.String(required=True, validate=validate.OneOf(SOURCES))
    key = fields.String(required=True, validate=KEY)


class Trimmed(fields.String):
    """Text without the spaces around it, so that spaces alone are too short."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


class QuestionSchema(ItemRefSchema):
    """Ask an expert about an item."""

    expert_account_id = fields.String(required=True, validate=ACCOUNT)
    # Blank, the question would be a bare mention of the expert: nothing to answer.
    text = Trimmed(required=True, validate=validate.Length(min=3, max=2000))


class FeedbackSchema(ItemRefSchema):
    """Helped / Not relevant on one suggestion."""

    target_item_id = fields.Integer(required=True, strict=True,
                                    validate=validate.Range(min=1, max=MAX_ID))
    verdict = fields.String(required=True, validate=validate.OneOf(("helped", "not_relevant")))


class LinkSchema(Schema):
    """Link the current issue to a suggested one."""

    class Meta:
        unknown = RAISE

    key = fields.String(required=True, validate=KEY)
    target_key = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Z][A-Z0-9_]*-\d+\Z", error="Not an issue key."))
    link_type = fields.String(required=True, validate=validate.OneOf(("duplicate", "relates")))


class KudosSchema(ItemRefSchema):
    """Thank a contributor, optionally with a message."""

    to_account_id = fields.String(required=True, validate=ACCOUNT)
    message = fields.String(load_default="", validate=validate.Length(max=500))
    space = fields.String(load_default=None, allow_none=True, validate=KEY)  # ignored: the item's own is used


class PanelEventSchema(ItemRefSchema):
    """An adoption event the browser reports (a click on a suggestion)."""

    panel = fields.String(required=True, validate=validate.OneOf(("experts", "reuse",
                                                                  "contributors")))
    kind = fields.String(required=True, validate=validate.OneOf(("clicked",)))
    target = fields.String(load_default=None, allow_none=True, validate=KEY)
