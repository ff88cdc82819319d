"""Questions to experts: asked as a host comment that @mentions them, followed up, passed on."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from html import escape
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, delete, select, update
from sqlalchemy.orm import Session

from connect.db import utcnow
from connect.host_client import HostError, segment
from connect.models import Tenant
from plugin.content.model import ItemDoc
from plugin.matching.store import get_item, space_of
from plugin.models.content import Item, Person
from plugin.models.social import Kudos, Question, QuestionEvent
from plugin.pipeline import fetch
from plugin.services import permissions
from plugin.services.errors import Refused
from plugin.services.settings import eligibility, project_settings

log = logging.getLogger(__name__)

OPEN_STATES = ("asked",)
# How long a claimed follow-up waits before another run may take it: the retry delay after a
# host error, and the bound on a run that died mid-step (far longer than one comment takes).
RETRY_DELAY = timedelta(minutes=30)
# The host no longer lets the app comment on the item: the question closes with this reason.
UNREACHABLE = {403: "item_forbidden", 404: "item_missing"}


def _adf_comment(account_id: str, name: str | None, text: str) -> dict[str, Any]:
    mention = {"type": "mention", "attrs": {"id": account_id, "text": f"@{name or account_id}",
                                            "accessLevel": ""}}
    return {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [mention, {"type": "text", "text": " " + text}]}]}


def content_kind(session: Session, tenant_id: int, source: str, key: str,
                 client: Any = None) -> str:
    """What the item is (issue, page or blogpost): as stored, else as the host (if given) says."""
    kind = session.scalar(select(Item.kind).where(Item.tenant_id == tenant_id, Item.source == source,
                                                  Item.key == key))
    if kind or source == "jira":
        return kind or "issue"
    # Content not stored yet (new since the last sync): a blog post's id given as pageId finds
    # nothing, so the site is asked which it is; neither visible: refused as a page would be.
    return (fetch.confluence_kind(client, key) or "page") if client is not None else "page"


def post_comment(client: Any, source: str, key: str, account_id: str, name: str | None,
                 text: str, kind: str = "page") -> str | None:
    """Post a comment mentioning `account_id` on an issue, page or blog post; returns the comment id."""
    body: dict[str, Any]
    if source == "jira":
        body = {"body": _adf_comment(account_id, name, text)}
        response = client.request("POST", f"/rest/api/3/issue/{segment(key)}/comment", json=body)
    else:
        value = (f'<p><ac:link><ri:user ri:account-id="{escape(account_id)}" /></ac:link> '
                 f"{escape(text)}</p>")
        parent = "blogPostId" if kind == "blogpost" else "pageId"
        body = {parent: key, "body": {"representation": "storage", "value": value}}
        response = client.request("POST", "/wiki/api/v2/footer-comments", json=body)
    comment_id = (response.json() or {}).get("id") if response.content else None
    return str(comment_id) if comment_id is not None else None


def _event(session: Session, question: Question, kind: str, account_id: str | None,
           at: datetime) -> QuestionEvent:
    event = QuestionEvent(tenant_id=question.tenant_id, question_id=question.id, kind=kind,
                          account_id=account_id, at=at)
    session.add(event)
    return event


def ask(session: Session, tenant_id: int, *, source: str, key: str, project: str | None,
        asker_account_id: str, expert_account_id: str, expert_name: str | None, text: str,
        client: Any, next_experts: list[str], now: datetime | None = None) -> Question:
    """Post the question as the asker (client acts as them) and track it until answered."""
    if expert_account_id == asker_account_id:
        raise Refused(422, "You cannot ask yourself.", "expert_account_id")
    now = now or utcnow()
    hours = project_settings(session, tenant_id, project)["follow_up_hours"]
    comment_id = post_comment(client, source, key, expert_account_id, expert_name, text,
                              content_kind(session, tenant_id, source, key, client))
    question = Question(tenant_id=tenant_id, source=source, item_key=key, project=project,
                        asker_account_id=asker_account_id, expert_account_id=expert_account_id,
                        next_experts=[a for a in next_experts
                                      if a not in (expert_account_id, asker_account_id)],
                        text=text, state="asked", comment_id=comment_id, asked_at=now,
                        follow_up_at=now + timedelta(hours=hours))
    session.add(question)
    session.flush()
    _event(session, question, "asked", asker_account_id, now)
    return question


def open_question(session: Session, tenant_id: int, *, source: str, key: str,
                  asker_account_id: str, expert_account_id: str, text: str) -> Question | None:
    """The asker's open question with this text to this expert on the item, if there is one."""
    return session.scalars(select(Question).where(
        Question.tenant_id == tenant_id, Question.source == source, Question.item_key == key,
        Question.asker_account_id == asker_account_id,
        Question.expert_account_id == expert_account_id, Question.text == text,
        Question.state.in_(OPEN_STATES)).order_by(Question.id).limit(1)).first()


def questions_on(session: Session, tenant_id: int, source: str, key: str,
                 limit: int = 10) -> list[Question]:
    """The latest questions asked on an item, newest first."""
    return list(session.scalars(_ON_ITEM, {"tenant": tenant_id, "source": source, "key": key,
                                           "limit": limit}))


# Built once: the experts panel lists them at every render.
_ON_ITEM = (select(Question).where(Question.tenant_id == bindparam("tenant"), Question.source == bindparam("source"),
                                   Question.item_key == bindparam("key"))
            .order_by(Question.asked_at.desc(), Question.id.desc()).limit(bindparam("limit")))


# Built once, and ids only: every comment event a drain applies asks it, almost always in vain,
# and building the statement or loading through the ORM cost more than the database's answer.
_OPEN_ON = select(Question.id).where(
    Question.tenant_id == bindparam("tenant"), Question.source == bindparam("source"),
    Question.item_key == bindparam("key"), Question.state.in_(OPEN_STATES),
    Question.asked_at <= bindparam("at"))


def on_comment(session: Session, tenant_id: int, source: str, key: str,
               author_account_id: str, at: datetime) -> list[int]:
    """A comment by someone the question was put to answers it (`_asked`); returns their ids."""
    ids = session.connection().execute(_OPEN_ON, {"tenant": tenant_id, "source": source, "key": key,
                                                  "at": at}).scalars().all()
    if not ids:
        return []
    questions = session.scalars(select(Question).where(Question.id.in_(ids)).order_by(Question.id)).all()
    answered = []
    for question in questions:
        since = _asked(session, question).get(author_account_id)
        if since is not None and at >= since:
            _answered(session, question, author_account_id, at)
            answered.append(question.id)
    session.flush()
    return answered


def answered_in(session: Session, tenant_id: int, docs: list[ItemDoc]) -> list[int]:
    """Open questions that stored items show answered by their expert's comment; their ids.

    The comment's own event answers at once; this finds answers whose event never came (a lost
    webhook read back by reconciliation, an issue event carrying the comments).
    """
    comments = {(doc.source, doc.key): [(c.account_id, c.at) for c in doc.contributions
                                        if c.role == "commenter"] for doc in docs}
    comments = {ref: found for ref, found in comments.items() if found}
    if not comments:
        return []
    candidates = session.scalars(select(Question).where(
        Question.tenant_id == tenant_id, Question.source.in_({source for source, _ in comments}),
        Question.item_key.in_({key for _, key in comments}), Question.state.in_(OPEN_STATES))
        .order_by(Question.id)).all()
    answered = []
    for question in candidates:
        asked = _asked(session, question)
        answers = [(at, account) for account, at in comments.get((question.source, question.item_key), [])
                   if account in asked and at >= asked[account]]
        if answers:
            at, account = min(answers)
            _answered(session, question, account, at)
            answered.append(question.id)
    session.flush()
    return answered


def _asked(session: Session, question: Question) -> dict[str, datetime]:
    """Everyone the question was put to, and since when: the first expert since it was asked,
    each next one since it was passed to them (their comments before that answered nothing)."""
    steps = session.execute(select(QuestionEvent.kind, QuestionEvent.account_id, QuestionEvent.at)
                            .where(QuestionEvent.question_id == question.id,
                                   QuestionEvent.kind.in_(("reminded", "passed")))
                            .order_by(QuestionEvent.at, QuestionEvent.id)).all()
    asked: dict[str, datetime] = {}
    for kind, account_id, at in steps:
        if account_id:
            asked.setdefault(account_id, at if kind == "passed" else question.asked_at)
    asked.setdefault(question.expert_account_id, question.asked_at)
    return asked


def _answered(session: Session, question: Question, account_id: str, at: datetime) -> None:
    """The question answered by `account_id`, who becomes its expert: credited if accepted."""
    question.state, question.answered_at, question.follow_up_at = "answered", at, None
    question.expert_account_id = account_id
    _event(session, question, "answered", account_id, at)


def withdraw(session: Session, tenant_id: int, source: str, key: str, comment_id: str) -> list[int]:
    """Delete the open questions posted as this comment, now deleted; returns their ids.

    The asker took the question back (or an admin removed it): reminding the expert of it, or
    passing it on, would ask what the item no longer asks, and listing it would show its text.
    """
    ids = list(session.scalars(select(Question.id).where(
        Question.tenant_id == tenant_id, Question.source == source, Question.item_key == key,
        Question.comment_id == comment_id, Question.state.in_(OPEN_STATES))))
    if ids:
        session.execute(delete(QuestionEvent).where(QuestionEvent.question_id.in_(ids)))
        session.execute(delete(Question).where(Question.id.in_(ids)))
    return ids


def moved(session: Session, tenant_id: int, old_key: str, new_key: str) -> None:
    """Questions on a Jira issue follow it to its new key and project (a move).

    Under the old key, the expert's answer on the moved issue (its events name the new key)
    answered nothing, and the new key's panel did not list them.
    """
    session.execute(update(Question).where(
        Question.tenant_id == tenant_id, Question.source == "jira", Question.item_key == old_key)
        .values(item_key=new_key, project=new_key.rsplit("-", 1)[0]))


def accept(session: Session, tenant_id: int, question_id: int, account_id: str,
           now: datetime | None = None) -> Question:
    """The asker accepts the answer: the question closes and the expert gets credit."""
    question = session.get(Question, question_id) if 0 < question_id < 2**31 else None
    if question is None or question.tenant_id != tenant_id:
        raise Refused(404, "No such question.")
    if question.asker_account_id != account_id:
        raise Refused(403, "Only the person who asked can accept the answer.")
    if question.state == "accepted":
        return question
    now = now or utcnow()
    # One conditional write, so of two accepts at once (a double click) one changes the row and
    # credits the expert; the other finds it accepted already.
    won = cast(CursorResult[Any], session.execute(
        update(Question).where(Question.id == question.id, Question.state != "accepted")
        .values(state="accepted", accepted_at=now, follow_up_at=None,
                answered_at=question.answered_at or now)
        .execution_options(synchronize_session=False))).rowcount
    session.refresh(question)
    if not won:
        return question
    session.add(Kudos(tenant_id=tenant_id, source=question.source, item_key=question.item_key,
                      space=space_of(session, question.tenant_id, question.source, question.item_key),
                      from_account_id=account_id,
                      to_account_id=question.expert_account_id, kind="answer", message="",
                      created_at=now))
    _event(session, question, "accepted", account_id, now)
    session.flush()
    return question


def due_followups(session: Session, now: datetime) -> list[int]:
    """Ids of open questions (any tenant) whose follow-up time has come, on sites the app is on."""
    # An uninstalled or disabled app may not comment: its site would refuse every run until the
    # tenant is purged. Re-enabled, the questions are due again at once, nothing lost.
    return list(session.scalars(select(Question.id).join(Tenant, Tenant.id == Question.tenant_id).where(
        Question.state.in_(OPEN_STATES), Question.follow_up_at.is_not(None),
        Question.follow_up_at <= now, Tenant.installed.is_(True), Tenant.enabled.is_(True))
        .order_by(Question.id)))


class _Unreachable(Exception):
    """The host no longer lets the app comment on the question's item (deleted or private)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def follow_up(session: Session, question_id: int, client_factory: Callable[[Tenant], Any],
              now: datetime | None = None) -> str:
    """Remind the expert once, then pass the question on; idempotent. Returns what it did.

    Commits its claim on the question before calling the host: of two runs at once only one
    acts, and after a failure the question comes back after RETRY_DELAY. Each step is committed
    before its comment is posted (`_take_step`).
    """
    now = now or utcnow()
    question = session.get(Question, question_id)
    if question is None or not _claim(session, question, now):
        return "nothing"
    tenant = session.get_one(Tenant, question.tenant_id)
    client = client_factory(tenant)
    sees = _sees(session, tenant, client, question)
    allowed = _allowed(session, tenant, client, question, now, sees)
    try:
        # An answer the asker could not read is no one's to chase.
        if not sees(question.asker_account_id):
            raise _Unreachable("asker_forbidden")
        return _step(session, question, client, allowed, now)
    except _Unreachable as exc:
        return _close(session, question, exc.reason, now)
    except HostError as exc:
        # Down, rate limited or refusing for now: the claim already put it off by RETRY_DELAY.
        log.warning("follow-up of question %s put off by %s: %s", question.id, RETRY_DELAY, exc)
        return "retry"


def _claim(session: Session, question: Question, now: datetime) -> bool:
    """Take a due question for this run with one conditional write, committed at once."""
    seen = question.follow_up_at
    if question.state not in OPEN_STATES or seen is None or seen > now:
        return False
    # Only one of two runs that read the same follow-up time changes the row. The new time is
    # the retry delay, so a run that dies before recording its step does not lose the question.
    won = cast(CursorResult[Any], session.execute(
        update(Question).where(Question.id == question.id, Question.state.in_(OPEN_STATES),
                               Question.follow_up_at == seen)
        .values(follow_up_at=now + RETRY_DELAY)
        .execution_options(synchronize_session=False))).rowcount
    session.commit()  # visible to other runs before the host is called
    session.refresh(question)
    return bool(won)


def _sees(session: Session, tenant: Tenant, client: Any,
          question: Question) -> Callable[[str], bool]:
    """Whether someone may open the question's item now, as the host says."""
    # Checked by the stored item: Jira checks an issue by its id, which the question lacks.
    # An item not stored yet is not checked.
    item = get_item(session, tenant.id, question.source, question.item_key)

    def sees(account_id: str) -> bool:
        try:
            return item is None or bool(permissions.visible_to(client, tenant.id, account_id)([item]))
        except HostError as exc:
            # The site will not check an account it does not know: it is no one to mention.
            # Raised, the question would be retried for ever.
            if exc.status not in (400, 404):
                raise
            return False

    return sees


def _allowed(session: Session, tenant: Tenant, client: Any, question: Question,
             now: datetime, sees: Callable[[str], bool]) -> Callable[[str], bool]:
    """Who may be reminded or asked now: preferences and project rules, as on the panels, and
    who may see the item: mentioned where they may not look, no one could answer."""
    # Group rules need each person's groups, read from the host for the site's product.
    groups = permissions.groups_lookup(client, tenant.id, tenant.product_type)
    rules = eligibility(session, tenant.id, question.project, now, groups_of=groups)

    def allowed(account_id: str) -> bool:
        try:
            return rules(account_id) and sees(account_id)
        except HostError as exc:
            if exc.status != 404:
                raise
            return False  # the site no longer knows them: no one to mention

    return allowed


def _step(session: Session, question: Question, client: Any, allowed: Callable[[str], bool],
          now: datetime) -> str:
    hours = project_settings(session, question.tenant_id, question.project)["follow_up_hours"]
    # Someone who opted out, paused, left or was ruled out since being asked is not reminded:
    # the next one is asked. The question is quoted, not pointed "above": many sort newest first.
    if question.reminded_at is None and allowed(question.expert_account_id):
        _take_step(session, client, question, "reminded", question.expert_account_id,
                   f"a gentle reminder of this question: {question.text}", now,
                   reminded_at=now, follow_up_at=now + timedelta(hours=hours))
        return "reminded"
    return _pass_on(session, question, client, allowed, now, hours)


def _pass_on(session: Session, question: Question, client: Any, allowed: Callable[[str], bool],
             now: datetime, hours: int) -> str:
    queue = list(question.next_experts)
    expert = next((account for account in queue if allowed(account)), None)
    if expert is None:
        question.state, question.follow_up_at, question.next_experts = "unanswered", None, []
        _event(session, question, "unanswered", None, now)
        return "unanswered"
    # A failed post undoes the step: the queue stays as it was.
    _take_step(session, client, question, "passed", expert,
               f"could you help with this question? {question.text}", now,
               next_experts=queue[queue.index(expert) + 1:], expert_account_id=expert,
               reminded_at=None, follow_up_at=now + timedelta(hours=hours))
    return "passed"


def _take_step(session: Session, client: Any, question: Question, kind: str, account_id: str,
               text: str, now: datetime, **changes: Any) -> None:
    """Commit the step's changes and event, then post its comment; a failed post undoes them.

    Why first: a run killed (or losing the database) after the host took the comment and before
    the step was committed posted the same comment again once the claim's retry delay was over.
    So a step is posted at most once, as a digest is sent.
    """
    before = {name: getattr(question, name) for name in changes}
    for name, value in changes.items():
        setattr(question, name, value)
    event = _event(session, question, kind, account_id, now)
    session.commit()
    try:
        _post(session, client, question, account_id, text)
    except Exception:
        for name, value in before.items():
            setattr(question, name, value)
        session.delete(event)
        session.commit()
        raise


def _post(session: Session, client: Any, question: Question, account_id: str, text: str) -> None:
    """Post a follow-up comment as the app; raise _Unreachable when the item is gone or private."""
    kind = content_kind(session, question.tenant_id, question.source, question.item_key, client)
    # Named as the ask names them: a mention's text is what notifications show, not the account id.
    name = session.scalar(select(Person.display_name).where(
        Person.tenant_id == question.tenant_id, Person.account_id == account_id))
    try:
        post_comment(client, question.source, question.item_key, account_id, name, text, kind)
    except HostError as exc:
        if exc.status in UNREACHABLE:
            raise _Unreachable(UNREACHABLE[exc.status]) from exc
        raise


def _close(session: Session, question: Question, reason: str, now: datetime) -> str:
    # No one can answer on an item deleted or made private, and retrying would fail every run:
    # the question closes unanswered, its event saying why.
    log.info("question %s closed: %s %s (%s)", question.id, question.source, question.item_key,
             reason)
    question.state, question.follow_up_at = "unanswered", None
    _event(session, question, reason, None, now)
    return "closed"
