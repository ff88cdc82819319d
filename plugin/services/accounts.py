"""Which accounts are people's: Confluence names accounts by id only, so each new one is asked of
the host (one bulk call per batch of pages) before its work is credited.

Jira's payloads carry `accountType`, and `normalize` leaves apps out as it reads them. An app's
account (an automation, an integration that writes pages) or a portal customer's is never
credited nor suggested: what it wrote is kept as text, without it as a contributor. An account
found to be one after its work was stored loses that credit (`store.uncredit`) and its kudos.
"""
from __future__ import annotations

import logging
from dataclasses import replace

import requests
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from plugin.content.model import ItemDoc
from plugin.content.normalize import NOT_PEOPLE
from plugin.matching import store
from plugin.models.content import Person
from plugin.models.social import Kudos
from plugin.search.sites import of_site
from plugin.services import people
from plugin.services.permissions import Requester

log = logging.getLogger(__name__)

BATCH = 100  # accounts per bulk call (Confluence answers up to 200)
Learned = dict[str, tuple[str, str | None, bool | None]]  # account -> (type, display name, active)


def ask(client: Requester, accounts: list[str]) -> Learned:
    """Each account's type, name and activity as Confluence's bulk user lookup gives them; an
    account it does not return (deleted, say) has type "": asked, and not asked again."""
    found: Learned = {}
    for start in range(0, len(accounts), BATCH):
        for user in people.confluence_users(client, accounts[start:start + BATCH]):
            kind = user.get("accountType")
            if isinstance(kind, str) and kind:
                name = people.confluence_name(user)
                found[str(user["accountId"])[:255]] = (kind[:16], str(name)[:255] if name else None,
                                                       people.confluence_active(user))
    return {account: found.get(account, ("", None, None)) for account in accounts}


def record(session: Session, tenant_id: int, learned: Learned, credited: set[str]) -> None:
    """Remember each account's type (and name); those of `credited` that are no person's lose their credit."""
    if not learned:
        return
    insert = store.dialect_insert(session, Person)
    rows = [{"tenant_id": tenant_id, "account_id": account, "account_type": kind, "display_name": name,
             "active": is_active} for account, (kind, name, is_active) in sorted(learned.items())]
    session.execute(insert.values(rows).on_conflict_do_update(
        index_elements=["tenant_id", "account_id"],
        set_={"account_type": insert.excluded.account_type,
              "display_name": func.coalesce(insert.excluded.display_name, Person.display_name),
              "active": func.coalesce(insert.excluded.active, Person.active)}))
    for account, (kind, _, _) in sorted(learned.items()):
        if kind in NOT_PEOPLE and account in credited:
            store.uncredit(session, tenant_id, account)
            _unthank(session, tenant_id, account)


def _unthank(session: Session, tenant_id: int, account_id: str) -> None:
    """Take back the kudos an app's account received while taken for a person's.

    Why: credited for a page it wrote ("helped") or thanked then, it would stay on the site's
    recognition board and in impact counts, where no app may be.
    """
    session.execute(delete(Kudos).where(of_site(Kudos.tenant_id, tenant_id),
                                        Kudos.to_account_id == account_id))


def screened(session: Session, tenant_id: int, client: Requester, docs: list[ItemDoc]) -> list[ItemDoc]:
    """The documents without the work of apps and portal customers; accounts not asked yet are
    asked first. A host that does not answer leaves them unknown: asked again with the next pages."""
    accounts = sorted({c.account_id for doc in docs for c in doc.contributions})
    if not accounts:
        return docs
    types = dict(session.execute(select(Person.account_id, Person.account_type).where(
        Person.tenant_id == tenant_id, Person.account_id.in_(accounts))).tuples().all())
    # Someone who erased their data is not written down again here (their new work, if any,
    # is stored as anyone's; their old work never is).
    erased = store.erased_among(session, tenant_id, accounts)
    unknown = [a for a in accounts if types.get(a) is None and a not in erased]
    if unknown:
        try:
            learned = ask(client, unknown)
        except (requests.RequestException, ValueError) as exc:
            log.warning("could not ask the site about %d accounts: %s", len(unknown), exc)
            learned = {}
        record(session, tenant_id, learned, set(types))
        types.update({account: kind for account, (kind, _, _) in learned.items()})
    apps = {account for account, kind in types.items() if kind in NOT_PEOPLE}
    if not apps:
        return docs
    return [replace(doc, contributions=[c for c in doc.contributions if c.account_id not in apps])
            for doc in docs]


def learn(session: Session, tenant_id: int, client: Requester, limit: int) -> int:
    """Ask Confluence about up to `limit` people stored before their type was asked; how many it told."""
    unknown = list(session.scalars(select(Person.account_id).where(
        Person.tenant_id == tenant_id, Person.account_type.is_(None)).order_by(Person.id).limit(limit)))
    learned = ask(client, unknown) if unknown else {}
    record(session, tenant_id, learned, set(unknown))
    return sum(1 for kind, _, _ in learned.values() if kind)
