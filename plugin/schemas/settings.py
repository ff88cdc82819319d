"""Project settings and personal preferences as admins and people send them."""
from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

PROJECT_KEY = validate.Regexp(r"^[A-Z][A-Z0-9_]{0,49}\Z", error="Not a project key.")


class ProjectKey(fields.String):
    """A Jira project key as people type it: Jira keys are upper case, so `amq` is AMQ."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip().upper()


SPACE_KEY = validate.Regexp(r"^~?[A-Za-z0-9_:-]{1,255}\Z", error="Not a space key.")  # ~557058:… personal


class Flag(fields.Boolean):
    """true or false as JSON writes them: not "yes", "true" or 1, which a typo or a bug sends."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _names(**kw: Any) -> fields.List:
    return fields.List(fields.String(validate=validate.Length(min=1, max=255)),
                       validate=validate.Length(max=200), **kw)


# The settings schemas give no defaults: a field left out keeps its stored value (the stored
# settings start from `plugin.services.settings.DEFAULTS`), so saving one field loses no other.


class PanelsSchema(Schema):
    """Which panels are on."""

    class Meta:
        unknown = RAISE

    experts = Flag()
    reuse = Flag()
    contributors = Flag()


class PrivacySchema(Schema):
    """Privacy defaults for a project."""

    class Meta:
        unknown = RAISE

    show_evidence = Flag()
    public_kudos_messages = Flag()


class ProjectSettingsSchema(Schema):
    """What a project admin changes: the fields sent; those left out keep their stored values."""

    class Meta:
        unknown = RAISE

    purpose = fields.String(validate=validate.Length(max=500))
    panels = fields.Nested(PanelsSchema)
    include_groups = _names()
    exclude_groups = _names()
    include_people = _names()
    exclude_people = _names()
    follow_up_hours = fields.Integer(strict=True, validate=validate.Range(min=1, max=24 * 30))
    learn_projects = fields.List(ProjectKey(validate=PROJECT_KEY), validate=validate.Length(max=200))
    learn_spaces = fields.List(fields.String(validate=SPACE_KEY), validate=validate.Length(max=200))
    privacy = fields.Nested(PrivacySchema)


class PreferencesSchema(Schema):
    """A person's own choices."""

    class Meta:
        unknown = RAISE

    opted_out = Flag(required=True)
    # 0 ends a pause; absent or null leaves it as it is (saving the digest must not end it).
    pause_days = fields.Integer(load_default=None, allow_none=True, strict=True,
                                validate=validate.Range(min=0, max=365))
    weekly_digest = Flag(load_default=None)  # absent: left as it is


class BackfillSchema(Schema):
    """"Backfill now" from the admin page: resume or start, or start over from the beginning."""

    class Meta:
        unknown = RAISE

    restart = Flag(load_default=False)


class EraseSchema(Schema):
    """Erasure needs an explicit confirmation."""

    class Meta:
        unknown = RAISE

    confirm = fields.String(required=True, validate=validate.Equal(
        "ERASE", error="Nothing was erased: type ERASE, in capitals, to confirm."))
