"""What each panel shows, as plain data: the same dict feeds the iframe page and the JSON API."""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, is_dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, defer

from connect.db import utcnow
from plugin.content.model import ItemDoc
from plugin.matching.experts import reason_for
from plugin.matching.precompute import stored_suggestions
from plugin.matching.reuse import named_keys
from plugin.matching.service import CONFIDENCE_FLOOR, profiles, suggest_experts, suggest_reuse
from plugin.models.content import Contribution, Item
from plugin.models.social import Kudos, Question
from plugin.search import sites
from plugin.services import feedback, freshness, questions, recognition
from plugin.services.freshness import Fact
from plugin.services.panel_cache import EVENTS, Watch, view_events
from plugin.services.people import People
from plugin.services.privacy import site_tenants
from plugin.services.settings import project_settings

Visible = Callable[[list[Any]], list[Any]]  # Items and fetched ItemDocs alike
Eligible = Callable[[str], bool]
Fetch = Callable[[], ItemDoc | None]
LIMIT = 5
IMPACT_DAYS = 30  # the contributors panel's "this month"


def depends_on(view: str, source: str, key: str, project: str | None,
               viewer: str | None) -> list[Fact]:
    """What a view shows that lives in the database, besides what its render records.

    `view` is a panel (experts, reuse, contributors), `counts` (the byline's title) or `board`.
    The item's change sequence covers its contributions; permissions, names and the items
    checked are recorded by the render (`Watch`).
    """
    item = [freshness.ItemState(source, key)]
    settings = [freshness.Settings(project)] if project else []
    if view == "reuse":
        return [*item, *settings, freshness.Stored(source, key, "reuse"),
                freshness.Verdicts(source, key, viewer)]
    if view == "experts":
        return [*item, *settings, freshness.Stored(source, key, "experts"),
                freshness.Preferences(), freshness.Questions(source, key)]
    if view == "contributors":
        return [*item, *settings, freshness.KudosOn(source, key)]
    if view == "counts":
        return [*item, *settings, freshness.Stored(source, key, "reuse"),
                freshness.Stored(source, key, "experts"), freshness.Preferences()]
    if view == "board":
        return [freshness.AllKudos()]
    raise ValueError(f"no such view: {view}")


def _plain(value: Any) -> dict[str, Any]:
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else dict(value)


@dataclass
class Subject:
    """The item a panel is about (None when unknown or hidden) and its stored suggestions."""

    item: Item | ItemDoc | None
    stored: dict[str, list[Any]] | None = None
    unchecked: bool = False  # the viewer's permission on `item` is checked with the candidates
    light: list[Any] | None = None  # what the permission check read of the stored suggestions


# The statements every render runs are built once, with bind parameters: building them (the
# site's tenants subquery above all) cost more than the database took to answer.
# Texts are loaded only if suggestions must be computed now (most panels read stored ones).
_STORED_ITEM = (select(Item).options(defer(Item.text), defer(Item.comments_text))
                .where(Item.tenant_id == bindparam("tenant"), Item.source == bindparam("source"),
                       Item.key == bindparam("key")))


def _stored_item(session: Session, tenant_id: int, source: str, key: str) -> Item | None:
    return session.scalar(_STORED_ITEM, {"tenant": tenant_id, "source": source, "key": key})


def _referenced(stored: dict[str, list[Any]] | None) -> set[int]:
    """Every item the stored suggestions point at (reuse targets and the experts' work)."""
    if not stored:
        return set()
    return {s.item_id for s in stored["reuse"]} | {i for e in stored["experts"] for i in _worked_on(e)}


def _worked_on(expert: Any) -> set[int]:
    """The ids of the similar items an expert is suggested for: those counted and the evidence."""
    return {item_id for item_id, _ in expert.similar} | {ev.item_id for ev in expert.evidence}


def _subject(session: Session, tenant_id: int, source: str, key: str, fetch: Fetch | None,
             visible: Visible, with_stored: bool = True, computing: bool = False,
             watch: Watch | None = None) -> Subject:
    """The panel's item if this viewer may see it, checked with its suggestions in one go.

    `computing`: suggestions will be computed now when none are stored; the item is then left
    `unchecked`, to be checked in the candidates' own host call (`_riding`, then `_confirmed`).
    """
    stored_item = _stored_item(session, tenant_id, source, key)
    stored = stored_suggestions(session, tenant_id, stored_item.id) \
        if stored_item is not None and with_stored else None
    item: Item | ItemDoc | None = stored_item
    if item is None and fetch is not None:
        item = fetch()
        if watch is not None:
            watch.live = True  # what the host said of an item not stored yet: asked every time
    if item is None:
        return Subject(None)
    if computing and stored is None:
        return Subject(item, None, unchecked=True)
    # One host call for the item and everything its stored suggestions name: the later checks
    # of the suggestions read the permission cache. The API takes any key: nothing about an
    # item the viewer may not see may come back.
    light = _light(session, tenant_id, _referenced(stored), watch) + _named(session, tenant_id, stored, watch)
    allowed = visible([item, *light])
    return Subject(item, stored, light=light) if any(i is item for i in allowed) else Subject(None)


def _riding(visible: Visible, subject: Subject, also: Visible | None = None) -> Visible:
    """`visible` whose first host call also checks the panel's own item (the answer is cached),
    and what `also` gives of the items checked."""
    if not subject.unchecked:
        return visible
    pending = [subject.item]

    def check(items: list[Any]) -> list[Any]:
        extra = [*pending, *(also(items) if also is not None and pending else [])]
        pending.clear()
        return [i for i in visible([*extra, *items]) if not any(i is e for e in extra)]

    return check


def _confirmed(subject: Subject, visible: Visible) -> Subject:
    """The subject once its item is known to be visible (a cache hit after `_riding`)."""
    if not subject.unchecked:
        return subject
    # Suggestions computed for an item the viewer may not see are dropped unseen.
    allowed = visible([subject.item])
    return replace(subject, unchecked=False) if any(i is subject.item for i in allowed) \
        else Subject(None)


def _item_summary(target: Item | ItemDoc | None) -> dict[str, Any] | None:
    if target is None:
        return None
    return {"source": target.source, "key": target.key, "title": target.title,
            "project": target.project, "space": target.space,
            "stored": isinstance(target, Item)}


def _record_view(session: Session, tenant_id: int, panel: str, source: str, key: str,
                 project: str | None, viewer: str | None, shown: int,
                 watch: Watch | None = None) -> None:
    if watch is not None:
        watch.viewed(panel, source, key, project, shown)
        if watch.renewing:
            return
    # Queued like a cached view's, not written in this transaction: on SQLite a view's write
    # waited behind a worker's drain or refresh for the write lock, seconds in a burst.
    EVENTS.add(session.get_bind(), view_events(tenant_id, panel, source, key, project, viewer,
                                               shown))


TURNED_OFF = "A project admin has turned this off for this project."


def _turned_off(session: Session, tenant_id: int, panel: str, source: str, key: str,
                settings: dict[str, Any], visible: Visible, fetch: Fetch | None,
                watch: Watch | None, **empty: Any) -> dict[str, Any]:
    """A panel its project's admin turned off: whether its item is there to see, nothing more.

    Why: whoever asks (the JSON API, Forge's panel, a macro) must get nothing the admin turned
    off, and a view of it is no view of suggestions on the adoption dashboard.
    """
    item = _subject(session, tenant_id, source, key, fetch, visible, with_stored=False,
                    watch=watch).item
    return {"panel": panel, "item": _item_summary(item), "purpose": settings["purpose"],
            "enabled": False, **empty, "empty_reason": TURNED_OFF}


def experts(session: Session, tenant_id: int, source: str, key: str, project: str | None,
            viewer: str | None, visible: Visible, eligible: Eligible, fetch: Fetch | None = None,
            topic: str | None = None, record: bool = True,
            names: People | None = None, watch: Watch | None = None) -> dict[str, Any]:
    """Up to five people to ask, with reasons and evidence, and the questions asked here."""
    names = names or People(session, tenant_id)
    settings = project_settings(session, tenant_id, project)
    if not settings["panels"]["experts"]:
        return _turned_off(session, tenant_id, "experts", source, key, settings, visible, fetch,
                           watch, experts=[], questions=[])
    subject = _subject(session, tenant_id, source, key, fetch, visible, with_stored=not topic,
                       computing=True, watch=watch)
    raised = _reporters(session, tenant_id, subject.item)
    found = _expert_candidates(session, tenant_id, subject, topic, viewer, _riding(visible, subject),
                               lambda account: account not in raised and eligible(account), watch)
    if not topic and subject.stored is not None:  # their names as of their refresh: named as now
        found = _as_named_now(session, tenant_id, found)
    subject = _confirmed(subject, visible)
    target, found = subject.item, found if subject.item is not None else []
    asked = questions.questions_on(session, tenant_id, source, key) if target else []
    names.prefetch([e.account_id for e in found] + [q.asker_account_id for q in asked]
                   + [q.expert_account_id for q in asked])
    shown = settings["privacy"]["show_evidence"]
    # Shown, the evidence says what each did ("commented on AMQ-7118 and AMQ-7093"): the summary
    # then does not say it first ("Commented on 2 similar issues: commented on ...").
    people = [{**_without_ids(e), "summary": _summary(e, source, verb=not (shown and e.evidence)),
               "display_name": e.display_name or names.name(e.account_id),
               "avatar_url": e.avatar_url or names.avatar(e.account_id)} for e in found]
    if not shown:
        for person in people:
            person["evidence"] = []
    if record:
        _record_view(session, tenant_id, "experts", source, key, project, viewer, len(people),
                     watch)
    return {"panel": "experts", "item": _item_summary(target), "purpose": settings["purpose"],
            "enabled": settings["panels"]["experts"], "experts": people,
            "questions": _question_rows(asked, names),
            "empty_reason": None if people else _experts_empty_reason(target, viewer)}


def _without_ids(expert: Any) -> dict[str, Any]:
    """An expert's fields a panel shows: not `similar`, item ids that tell a reader nothing."""
    return {k: v for k, v in _plain(expert).items() if k != "similar"}


_REPORTERS = select(Contribution.account_id).where(
    Contribution.tenant_id == bindparam("tenant"), Contribution.item_id == bindparam("item"),
    Contribution.role == "reporter")


def _reporters(session: Session, tenant_id: int, item: Item | ItemDoc | None) -> set[str]:
    """Who reported the item. Not its experts: they raised the problem, are on it already, and
    a question mentioning them there would ask them about their own report."""
    if isinstance(item, Item):
        return set(session.scalars(_REPORTERS, {"tenant": tenant_id, "item": item.id}))
    return {c.account_id for c in item.contributions if c.role == "reporter"} if item else set()


def _expert_candidates(session: Session, tenant_id: int, subject: Subject, topic: str | None,
                       viewer: str | None, visible: Visible, eligible: Eligible,
                       watch: Watch | None = None) -> list[Any]:
    target, stored = subject.item, None if topic else subject.stored
    if stored is not None:
        return _filter_stored_experts(session, tenant_id, stored["experts"], viewer, visible,
                                      eligible, subject.light)
    query = f"{topic} {target.title if target else ''}".strip() if topic else target
    if not query:
        return []
    if watch is not None:
        watch.live = True  # ranked on the whole index now
    return suggest_experts(session, tenant_id, query, limit=LIMIT, asker=viewer, visible=visible,
                           eligible=eligible)


_LIGHT_COLUMNS = (Item.id, Item.source, Item.key, Item.external_id, Item.space)
_LIGHT = select(*_LIGHT_COLUMNS).where(
    Item.id.in_(bindparam("ids", expanding=True)), sites.of_site(Item.tenant_id + 0, bindparam("tenant")))


def _light(session: Session, tenant_id: int, ids: set[int],
           watch: Watch | None = None) -> list[Any]:
    """Just what a permission check reads of each item (never their texts)."""
    if not ids:
        return []
    # `tenant_id + 0`: given a bare tenant_id term, SQLite walks the tenant's whole
    # (tenant_id, index_seq) index instead of looking the ids up by primary key (2.5 ms per
    # call at 20,000 items, growing with the tenant); the result is scoped by tenant all the same.
    # Scoped by site: a stored suggestion may be the other product's item (one site, both
    # products, one site key in the index); `visible` checks each with its own product.
    rows = list(session.execute(_LIGHT, {"ids": sorted(ids), "tenant": tenant_id}).all())
    return _watched(rows, ids, watch)


def _watched(rows: list[Any], ids: Iterable[int], watch: Watch | None) -> list[Any]:
    """The rows a permission check read of these items, recorded for the view's freshness."""
    if watch is not None:
        watch.record(freshness.Items(tuple(sorted(ids))),
                     frozenset(freshness.Items.row(*row) for row in rows))
    return rows


_LIGHT_KEYED = select(*_LIGHT_COLUMNS).where(
    Item.source == "jira", Item.key.in_(bindparam("keys", expanding=True)),
    sites.of_site(Item.tenant_id, bindparam("tenant")))


def _light_keyed(session: Session, tenant_id: int, keys: set[str],
                 watch: Watch | None = None) -> list[Any]:
    """`_light` of the issues with these keys, those Inflow knows (reasons name issues by key)."""
    if not keys:
        return []
    rows = list(session.execute(_LIGHT_KEYED, {"keys": sorted(keys), "tenant": tenant_id}).all())
    return _watched(rows, [row.id for row in rows], watch if rows else None)


def _keys_named(suggestions: Iterable[Any]) -> set[str]:
    """The keys of the issues the suggestions' reasons name ("both linked to AMQ-7")."""
    return {k for s in suggestions for reason in s.reasons for k in named_keys(reason)}


def _named(session: Session, tenant_id: int, stored: dict[str, list[Any]] | None,
           watch: Watch | None = None) -> list[Any]:
    """`_light` of the issues stored reuse reasons name besides the suggestions themselves.

    Why: "both linked to X" names one of the viewed issue's links, which nothing else checks;
    read here, it is asked about in the view's one host call (and warmed), not in a second.
    """
    if not stored:
        return []
    suggested = {s.key for s in stored["reuse"] if s.source == "jira"}
    named = _keys_named(stored["reuse"])
    return _light_keyed(session, tenant_id, named - suggested, watch)


def checked_items(session: Session, tenant_id: int, item_id: int) -> list[Any]:
    """What a view of the item asks the viewer's permissions on: its stored suggestions, the
    stored experts' work and the issues reuse reasons name (as `_light` reads them)."""
    stored = stored_suggestions(session, tenant_id, item_id)
    if not stored:
        return []
    return _light(session, tenant_id, _referenced(stored)) + _named(session, tenant_id, stored)


def _visible_ids(session: Session, tenant_id: int, ids: set[int], visible: Visible,
                 light: list[Any] | None = None) -> set[int]:
    # `light`: rows already read for these ids (the subject's check), not read twice.
    rows = [row for row in light if row.id in ids] if light is not None else \
        _light(session, tenant_id, ids)
    return {item.id for item in visible(rows)}


def _confidence(reason: str) -> float | None:
    match = re.search(r"confidence (\d+)%", reason or "")
    return int(match.group(1)) / 100 if match else None


def _filter_stored_experts(session: Session, tenant_id: int, stored: list[Any],
                           viewer: str | None, visible: Visible, eligible: Eligible,
                           light: list[Any] | None = None) -> list[Any]:
    """Precomputed experts, re-checked now: eligibility, confidence and the viewer's permissions."""
    candidates = [e for e in stored if e.account_id != viewer and eligible(e.account_id)
                  and (_confidence(e.reason) or 1.0) >= CONFIDENCE_FLOOR]
    seen = _visible_ids(session, tenant_id, {i for e in candidates for i in _worked_on(e)},
                        visible, light)
    kept = []
    for expert in candidates:
        expert.evidence = [ev for ev in expert.evidence if ev.item_id in seen]
        # Someone known only from work this viewer cannot see stays hidden from them.
        if expert.evidence:
            kept.append(_recounted(expert, seen))
    return kept[:LIMIT]


def _as_named_now(session: Session, tenant_id: int, experts: list[Any]) -> list[Any]:
    """Stored experts with the name and avatar the site's people rows hold now.

    The stored ones are copies taken when the item was refreshed: a person who changed their
    name or took their picture down (the personal-data cycle reads it again) kept the old ones
    on every item not refreshed since. Without a row, the panel asks the host.
    """
    if not experts:
        return experts
    now = profiles(session, site_tenants(session, tenant_id), [e.account_id for e in experts])
    for expert in experts:
        expert.display_name, expert.avatar_url = now.get(expert.account_id, (None, None))
    return experts


def _recounted(expert: Any, seen: set[int]) -> Any:
    """The stored expert with the similar work it counts cut to what this viewer may see.

    Stored, it counted every similar item ("18 similar item(s) as resolver"), hidden ones and
    the roles had only there too. A row stored before `similar` counts its visible evidence.
    """
    expert.similar = [(item_id, role) for item_id, role in expert.similar if item_id in seen] \
        or [(ev.item_id, ev.role) for ev in expert.evidence]
    expert.reason = reason_for(expert.similar, _confidence(expert.reason))
    return expert


VERBS = {"resolver": "Resolved", "assignee": "Was assigned", "creator": "Wrote",
         "editor": "Edited", "answerer": "Answered questions on", "commenter": "Commented on",
         "reporter": "Reported"}


def _summary(expert: Any, source: str, verb: bool = True) -> str:
    """A one-line reason people read at a glance: "Resolved 4 similar issues" (with `verb`), else
    "Worked on 4 similar issues"."""
    match = re.match(r"(\d+) similar", expert.reason or "")
    count = int(match.group(1)) if match else len(expert.evidence)
    roles = {ev.role for ev in expert.evidence}
    # Name the role only when it holds for all the work counted; otherwise say "worked on".
    done = VERBS.get(roles.pop(), "Worked on") if verb and len(roles) == 1 and \
        count == len(expert.evidence) else "Worked on"
    # Named for the work itself: on a page, an expert's similar work can be Jira issues.
    sources = {ev.source for ev in expert.evidence} or {source}
    noun = NOUNS.get(sources.pop(), "item") if len(sources) == 1 else "item"
    return f"{done} {count} similar {noun}{'s' if count != 1 else ''}"


NOUNS = {"jira": "issue", "confluence": "page"}


# Someone not signed in (anonymous access): no permission can be checked for them, so nothing
# of the site is shown, and the item is not "unknown" either.
SIGN_IN = "Log in to see who knows about this and the similar work done before."


def _experts_empty_reason(target: Item | ItemDoc | None, viewer: str | None) -> str:
    if viewer is None:
        return SIGN_IN
    if target is None:
        return ("Inflow has not learned this item yet, so it cannot tell who knows about it. "
                "Suggestions appear shortly after it is indexed.")
    return ("No one you can see has worked on similar items yet, or those who have chose not "
            "to be suggested. As the team resolves more work, experts will appear.")


def question_list(session: Session, tenant_id: int, source: str, key: str,
                  names: People | None = None) -> list[dict]:
    """The questions on an item with the names of who asked whom."""
    rows = questions.questions_on(session, tenant_id, source, key)
    return _question_rows(rows, names or People(session, tenant_id))


def _question_rows(rows: list[Question], names: People) -> list[dict]:
    names.prefetch([q.asker_account_id for q in rows] + [q.expert_account_id for q in rows])
    return [{"id": q.id, "state": q.state, "text": q.text, "asked_at": q.asked_at.isoformat(),
             "asker": {"account_id": q.asker_account_id, "name": names.name(q.asker_account_id)},
             "expert": {"account_id": q.expert_account_id,
                        "name": names.name(q.expert_account_id)}}
            for q in rows]


def names_of(session: Session, tenant_id: int, accounts: set[str],
             names: People | None = None) -> dict[str, str]:
    """Display names by account id ("Unknown user" for people neither Inflow nor the host knows)."""
    return (names or People(session, tenant_id)).names(accounts)


def reuse(session: Session, tenant_id: int, source: str, key: str, project: str | None,
          viewer: str | None, visible: Visible, fetch: Fetch | None = None,
          record: bool = True, watch: Watch | None = None) -> dict[str, Any]:
    """Up to five similar earlier items with why they matched and this viewer's verdicts."""
    settings = project_settings(session, tenant_id, project)
    if not settings["panels"]["reuse"]:
        return _turned_off(session, tenant_id, "reuse", source, key, settings, visible, fetch,
                           watch, suggestions=[])
    subject = _subject(session, tenant_id, source, key, fetch, visible, computing=True,
                       watch=watch)
    found = _reuse_candidates(session, tenant_id, subject,
                              _learned_from(settings, _riding(visible, subject,
                                                              _both_linked(session, tenant_id, subject, watch))),
                              watch)
    subject = _confirmed(subject, visible)
    target, found = subject.item, found if subject.item is not None else []
    found = _naming_visible(session, tenant_id, found, visible, watch, subject.light)
    verdicts = feedback.verdicts_by(session, tenant_id, source, key, viewer)
    items = [{**_plain(s), "verdict": verdicts.get(s.item_id)} for s in found]
    if record:
        _record_view(session, tenant_id, "reuse", source, key, project, viewer, len(items),
                     watch)
    return {"panel": "reuse", "item": _item_summary(target), "purpose": settings["purpose"],
            "enabled": settings["panels"]["reuse"], "suggestions": items,
            "empty_reason": None if items else _reuse_empty_reason(target, viewer)}


def _learned_from(settings: dict[str, Any], visible: Visible) -> Visible:
    """`visible`, keeping only items of the projects and spaces the project's admin chose to
    learn from (an empty list: all of that product's)."""
    projects, spaces = set(settings["learn_projects"]), set(settings["learn_spaces"])
    if not projects and not spaces:
        return visible

    def chosen(item: Any) -> bool:
        if item.source == "jira":
            return not projects or str(item.key).rsplit("-", 1)[0] in projects
        return not spaces or item.space in spaces

    return lambda items: visible([item for item in items if chosen(item)])


def _reuse_candidates(session: Session, tenant_id: int, subject: Subject,
                      visible: Visible, watch: Watch | None = None) -> list[Any]:
    target, stored = subject.item, subject.stored
    if target is None:
        return []
    if stored is None:
        if watch is not None:
            watch.live = True  # ranked on the whole index now
        return suggest_reuse(session, tenant_id, target, limit=LIMIT, visible=visible)
    seen = _visible_ids(session, tenant_id, {s.item_id for s in stored["reuse"]}, visible,
                        subject.light)
    return [s for s in stored["reuse"] if s.item_id in seen][:LIMIT]


def _both_linked(session: Session, tenant_id: int, subject: Subject, watch: Watch | None = None) -> Visible:
    """`_light` of the issues both the viewed item and one of the candidates link to.

    Why: their reason ("both linked to X") names them; read with the candidates, they ride on
    the candidates' host call instead of a call of their own once the reasons are written.
    """
    links = set(getattr(subject.item, "links", None) or [])

    def linked(items: list[Any]) -> list[Any]:
        both = {k for item in items for k in getattr(item, "links", None) or [] if k in links}
        return _light_keyed(session, tenant_id, both, watch)

    return linked


def _naming_visible(session: Session, tenant_id: int, found: list[Any], visible: Visible,
                    watch: Watch | None = None, light: list[Any] | None = None) -> list[Any]:
    """The suggestions without their reasons that name an item this viewer may not see.

    A link reason names issues ("both linked to AMQ-7"): the viewed issue's links, which no
    check covers, or other suggestions when it was stored, written for no viewer in particular.
    An issue Inflow does not know cannot be checked: its reason goes too. `light`: the rows
    the subject's check read (stored suggestions and the issues their reasons name).
    """
    named = _keys_named(found)
    if not named:
        return found
    allowed = {s.key for s in found if s.source == "jira"}  # shown: checked already
    # Rows the subject's check read: their answers are cached; only others are read and asked.
    read = {row.key: row for row in light or [] if row.source == "jira" and row.key in named - allowed}
    rows = [*read.values(), *_light_keyed(session, tenant_id, named - allowed - set(read), watch)]
    allowed |= {row.key for row in visible(rows)}
    out = []
    for s in found:
        kept = [r for r in s.reasons if set(named_keys(r)) <= allowed]
        out.append(s if kept == s.reasons else replace(s, reasons=kept or ["similar text"]))
    return out


def _reuse_empty_reason(target: Item | ItemDoc | None, viewer: str | None) -> str:
    if viewer is None:
        return SIGN_IN
    if target is None:
        return "Inflow has not learned this item yet; similar work appears once it is indexed."
    return ("Nothing similar that you can see has been done before. When related issues or "
            "pages exist, they will be listed here.")


_WORK_ON = (select(Contribution.account_id, Contribution.role, Contribution.at)
            .where(Contribution.tenant_id == bindparam("tenant"), Contribution.item_id == bindparam("item"))
            .order_by(Contribution.at, Contribution.id))
_KUDOS_ON = (select(Kudos.to_account_id, func.count(Kudos.id))
             .where(Kudos.tenant_id == bindparam("tenant"), Kudos.source == bindparam("source"),
                    Kudos.item_key == bindparam("key"))
             .group_by(Kudos.to_account_id))


def _contributors(session: Session, tenant_id: int, item: Item, names: People,
                  also_named: list[str]) -> list[dict[str, Any]]:
    rows = session.execute(_WORK_ON, {"tenant": tenant_id, "item": item.id}).all()
    roles: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for account, role, _ in rows:
        roles[account][role] += 1
    kudos = dict(session.execute(_KUDOS_ON, {"tenant": tenant_id, "source": item.source,
                                             "key": item.key}).all())
    names.prefetch([*roles, *also_named])  # one lookup for contributors and thankers alike
    return [{"account_id": account, "display_name": names.name(account),
             "avatar_url": names.avatar(account),
             "roles": dict(counts), "kudos": int(kudos.get(account, 0))}
            for account, counts in roles.items()]


def contributors(session: Session, tenant_id: int, source: str, key: str, project: str | None,
                 viewer: str | None, visible: Visible, now: datetime | None = None,
                 names: People | None = None, record: bool = True,
                 watch: Watch | None = None) -> dict[str, Any]:
    """Who contributed and how, the thanks given here, and the viewer's own impact."""
    now = now or utcnow()
    names = names or People(session, tenant_id)
    settings = project_settings(session, tenant_id, project)
    if not settings["panels"]["contributors"]:
        return _turned_off(session, tenant_id, "contributors", source, key, settings, visible,
                           None, watch, contributors=[], thanks=[], impact=None, viewer=viewer)
    item = _subject(session, tenant_id, source, key, None, visible, with_stored=False,
                    watch=watch).item
    thanks = recognition.kudos_on(session, tenant_id, source, key) if item is not None else []
    thanked = [a for k in thanks for a in (k.from_account_id, k.to_account_id)]
    people = _contributors(session, tenant_id, item, names, thanked) \
        if isinstance(item, Item) else []
    public = settings["privacy"]["public_kudos_messages"]
    if record:
        _record_view(session, tenant_id, "contributors", source, key, project, viewer,
                     len(people), watch)
    impact = _impact(session, tenant_id, viewer, now, watch) if viewer else None
    return {"panel": "contributors", "item": _item_summary(item), "purpose": settings["purpose"],
            "enabled": settings["panels"]["contributors"], "contributors": people,
            "thanks": [{"from": names.name(k.from_account_id), "to": names.name(k.to_account_id),
                        "from_account_id": k.from_account_id, "to_account_id": k.to_account_id,
                        "message": k.message if public or viewer in (k.to_account_id,
                                                                     k.from_account_id) else "",
                        "at": k.created_at.isoformat()} for k in thanks[:10]],
            "impact": impact,
            "viewer": viewer,
            "empty_reason": None if people else _contributors_empty_reason(viewer)}


def _contributors_empty_reason(viewer: str | None) -> str:
    # Someone not signed in sees no item at all: its work is not missing, only not theirs to see.
    if viewer is None:
        return "Log in to see who worked on this and the thanks they were given."
    return "Inflow has not recorded anyone's work on this item yet."


def _impact(session: Session, tenant_id: int, viewer: str, now: datetime,
            watch: Watch | None) -> dict[str, int]:
    found = recognition.impact(session, tenant_id, viewer, now - timedelta(days=IMPACT_DAYS), now)
    if watch is not None:  # the window moves with the clock: a cached view counts again
        watch.record(freshness.Impact(viewer, IMPACT_DAYS), tuple(found.values()))
    return found


def counts(session: Session, tenant_id: int, source: str, key: str, project: str | None,
           viewer: str | None, visible: Visible, eligible: Eligible,
           watch: Watch | None = None) -> dict[str, int]:
    """How many experts and related items a page has (the byline's title), of the panels on."""
    shown = project_settings(session, tenant_id, project)["panels"]
    subject = _subject(session, tenant_id, source, key, None, visible, watch=watch)
    if subject.item is None:
        return {"experts": 0, "related": 0}
    found = _expert_candidates(session, tenant_id, subject, None, viewer, visible, eligible,
                               watch) if shown["experts"] else []
    related = _reuse_candidates(session, tenant_id, subject, visible, watch) \
        if shown["reuse"] else []
    return {"experts": len(found), "related": len(related)}


def open_questions_count(session: Session, tenant_id: int, source: str, key: str) -> int:
    """Open questions on an item."""
    return int(session.scalar(select(func.count(Question.id)).where(
        Question.tenant_id == tenant_id, Question.source == source, Question.item_key == key,
        Question.state == "asked")) or 0)
