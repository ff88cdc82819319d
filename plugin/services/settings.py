"""Per-project settings with defaults, and who may be suggested as an expert."""
from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, bindparam, false, select
from sqlalchemy.orm import Session

from connect.db import utcnow
from plugin.models.content import Person
from plugin.models.social import PersonPreference, ProjectSettings
from plugin.search.sites import of_site

PANELS = ("experts", "reuse", "contributors")
PEOPLE_RULES = ("include_people", "exclude_people")  # account ids, typed as names or ids

DEFAULTS: dict[str, Any] = {
    "purpose": "",
    "panels": {"experts": True, "reuse": True, "contributors": True},
    "include_groups": [],
    "exclude_groups": [],
    "include_people": [],
    "exclude_people": [],
    "follow_up_hours": 48,
    "learn_projects": [],
    "learn_spaces": [],
    "privacy": {"show_evidence": True, "public_kudos_messages": True},
}

GroupsOf = Callable[[str], set[str]]


def _merged(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """The defaults with each layer on top, in order (nested groups such as `panels` key by key)."""
    merged = copy.deepcopy(DEFAULTS)
    for data in layers:
        for key, value in (data or {}).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key].update(value)
            elif key in merged:
                merged[key] = value
    return merged


def project_settings(session: Session, tenant_id: int, project_key: str | None) -> dict[str, Any]:
    """The project's settings, defaults filled in (defaults alone for no project)."""
    if not project_key:
        return _merged(None)
    return _merged(session.scalar(_SETTINGS, {"tenant": tenant_id, "project": project_key}))


# Built once: every panel render reads the settings, and building the statement cost more than reading.
_SETTINGS = select(ProjectSettings.data).where(ProjectSettings.tenant_id == bindparam("tenant"),
                                               ProjectSettings.project_key == bindparam("project"))


def save_project_settings(session: Session, tenant_id: int, project_key: str,
                          data: dict[str, Any], account_id: str | None) -> dict[str, Any]:
    """Store the validated settings sent for a project; those not sent keep their stored values.

    Returns the project's settings as they now are, defaults filled in.
    """
    # Locked (PostgreSQL) so two saves of different fields at once both land.
    row = session.scalar(select(ProjectSettings).where(
        ProjectSettings.tenant_id == tenant_id, ProjectSettings.project_key == project_key)
        .with_for_update())
    if row is None:
        row = ProjectSettings(tenant_id=tenant_id, project_key=project_key)
        session.add(row)
    row.data = _merged(row.data, data)
    row.updated_by = account_id
    session.flush()
    return row.data


def preference(session: Session, tenant_id: int, account_id: str) -> PersonPreference | None:
    """A person's choice on the site, if any: the latest they made in either product."""
    return session.scalar(select(PersonPreference).where(
        of_site(PersonPreference.tenant_id, tenant_id), PersonPreference.account_id == account_id)
        .order_by(PersonPreference.updated_at.desc(), PersonPreference.id.desc()).limit(1))


def own_preference(session: Session, tenant_id: int, account_id: str) -> PersonPreference | None:
    """The row of a person's choice made in this product, if any."""
    return session.scalar(select(PersonPreference).where(
        PersonPreference.tenant_id == tenant_id, PersonPreference.account_id == account_id))


def set_preference(session: Session, tenant_id: int, account_id: str, opted_out: bool,
                   paused_until: datetime | None) -> PersonPreference:
    """Record whether a person may be suggested (opt out, or a pause until a date)."""
    row = own_preference(session, tenant_id, account_id)
    if row is None:
        row = PersonPreference(tenant_id=tenant_id, account_id=account_id)
        session.add(row)
    row.opted_out = opted_out
    row.paused_until = paused_until
    row.updated_at = utcnow()  # the latest choice wins on the site, even one that repeats this row
    session.flush()
    return row


class Until(Protocol):
    """Told when something counted now changes by the clock alone (panel_cache.Watch)."""

    def note_until(self, moment: datetime) -> None: ...


def _unavailable(session: Session, tenant_id: int, now: datetime,
                 until: Until | None = None) -> set[str]:
    # Both products' rows, oldest first: a person's latest choice on the site holds in both.
    rows = session.execute(_CHOICES, {"tenant": tenant_id}).all()
    latest = {account: (out, end) for account, out, end in rows}
    paused = [end for _, end in latest.values() if end is not None and end > now]
    if until is not None and paused:
        until.note_until(min(paused))  # that person may be suggested again then
    away = {acc for acc, (out, end) in latest.items() if out or (end is not None and end > now)}
    return away | set(session.scalars(_INACTIVE, {"tenant": tenant_id}))


def inactive(tenant: Any) -> tuple[ColumnElement[bool], ...]:
    """SQL: the site's people the host shows as deactivated (`tenant` an id or a bind parameter)."""
    # Both products: someone who left shows as inactive in Jira's payloads, never in a page's.
    return of_site(Person.tenant_id, tenant), Person.active == false()


# Built once, as `_SETTINGS`: an experts panel asks both at every render.
_CHOICES = (select(PersonPreference.account_id, PersonPreference.opted_out, PersonPreference.paused_until)
            .where(of_site(PersonPreference.tenant_id, bindparam("tenant")))
            .order_by(PersonPreference.updated_at, PersonPreference.id))
_INACTIVE = select(Person.account_id).where(*inactive(bindparam("tenant")))


def _allowed_by_rules(account_id: str, rules: dict[str, Any], groups_of: GroupsOf | None) -> bool:
    """The project's rules, in order: never these people; always these people ("Also these
    people": in addition to whoever the group rules allow, even when in a "never" group, since a
    name the admin wrote is the more specific rule); never these groups; only these groups."""
    if account_id in rules["exclude_people"]:
        return False
    if account_id in rules["include_people"]:
        return True  # and their groups need not be asked of the host
    if not (rules["include_groups"] or rules["exclude_groups"]):
        return True
    groups = groups_of(account_id) if groups_of else set()
    if groups & set(rules["exclude_groups"]):
        return False
    return not rules["include_groups"] or bool(groups & set(rules["include_groups"]))


def eligibility(session: Session, tenant_id: int, project_key: str | None,
                now: datetime | None = None, groups_of: GroupsOf | None = None,
                until: Until | None = None) -> Callable[[str], bool]:
    """A fast predicate for many accounts: preferences and project rules loaded once."""
    rules = project_settings(session, tenant_id, project_key)
    unavailable = _unavailable(session, tenant_id, now or utcnow(), until)
    # A person's own choice (opt out, pause) and deactivation beat every rule, "always" too.
    return lambda account_id: (account_id not in unavailable
                               and _allowed_by_rules(account_id, rules, groups_of))


def is_eligible(session: Session, tenant_id: int, account_id: str, project_key: str | None = None,
                now: datetime | None = None, groups_of: GroupsOf | None = None) -> bool:
    """Whether this person may be suggested in this project now (preferences and admin rules)."""
    return eligibility(session, tenant_id, project_key, now, groups_of)(account_id)
