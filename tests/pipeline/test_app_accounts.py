"""An app's account (Automation for Jira, an integration) is never suggested or credited."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from jobs import pipeline as jobs
from plugin import search
from plugin.matching.service import suggest_experts
from plugin.models.content import Contribution, Item
from plugin.pipeline import backfill
from tests.pipeline.conftest import Site
from tests.pipeline.test_people_active import LEFT, issue_of


def credited(site: Site, account_id: str) -> int:
    with site.db.session() as session:
        return session.scalar(select(func.count()).select_from(Contribution).where(
            Contribution.tenant_id == site.tenant_id, Contribution.account_id == account_id)) or 0


def experts_on(site: Site, key: str) -> list[str]:
    with site.db.session() as session:
        item = session.scalar(select(Item).where(Item.tenant_id == site.tenant_id, Item.key == key))
        return [s.account_id for s in suggest_experts(session, site.tenant_id, item, limit=10, min_confidence=0.0)]


def test_an_app_commenting_everywhere_is_not_an_expert(database_url: str, make_site: Any) -> None:
    site = make_site(database_url)
    site.host.load_jira_dataset("apache-activemq", limit=200)
    key = issue_of(site, LEFT)
    site.host.make_app(LEFT)  # as if this committer's comments came from an integration
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    assert search.catch_up(site.db)

    assert credited(site, LEFT) == 0
    assert LEFT not in experts_on(site, key)
    assert experts_on(site, key)  # the people on those issues still are
