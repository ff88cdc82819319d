"""The payload Forge sends a Rovo action: the agent's inputs and the user's page context."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate


class RovoJiraContextSchema(Schema):
    """`context.jira`: the issue the user is looking at."""

    class Meta:
        unknown = EXCLUDE

    issueKey = fields.Raw(load_default=None, allow_none=True)  # noqa: N815  (Forge's names)


class RovoConfluenceContextSchema(Schema):
    """`context.confluence`: the page or blog post the user is looking at."""

    class Meta:
        unknown = EXCLUDE

    contentId = fields.Raw(load_default=None, allow_none=True)  # noqa: N815


class RovoContextSchema(Schema):
    """`context`: set by Atlassian, not by the agent (only where the item is read from)."""

    class Meta:
        unknown = EXCLUDE

    jira = fields.Nested(RovoJiraContextSchema, load_default=None, allow_none=True)
    confluence = fields.Nested(RovoConfluenceContextSchema, load_default=None, allow_none=True)


class RovoPayloadSchema(Schema):
    """Inputs an agent filled in (hints for which item, never for who asks) and the context.

    Unknown inputs are dropped: an agent may add any, such as an `accountId` to act as.
    """

    class Meta:
        unknown = EXCLUDE

    # Raw: agents send "ABC-1", 12345 or worse; the action checks the shape and falls back to
    # the context rather than refuse.
    issueKey = fields.Raw(load_default=None, allow_none=True)  # noqa: N815
    pageId = fields.Raw(load_default=None, allow_none=True)  # noqa: N815
    topic = fields.String(load_default=None, allow_none=True,
                          validate=validate.Length(max=500))
    context = fields.Nested(RovoContextSchema, load_default=None, allow_none=True)
