"""The social services on every storage backend (SQLite and PostgreSQL run the same test)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connect.db import Database, utcnow
from connect.host_client import HostClient
from connect.models import Tenant
from plugin.models.content import Item
from plugin.models.social import Question
from plugin.services import adoption, feedback, privacy, questions, recognition
from plugin.services.errors import Refused
from plugin.services.people import matching_people, typed_names
from plugin.services.settings import is_eligible, save_project_settings, set_preference
from sandbox.site.server import FakeHost
from tests.conftest import build_app
from tests.panels.conftest import seed_issues
from tests.sandbox_site import install_into


def test_social_services_work_the_same_on_each_backend(database_url: str, fake_host: FakeHost,
                                                       activemq_issues: list[dict[str, Any]]
                                                       ) -> None:
    app = build_app(database_url, INFLOW_APP_KEY=fake_host.app_key,
                    INFLOW_AUTH_SERVER_URL=fake_host.url)
    db: Database = app.extensions["inflow.db"]
    issues = activemq_issues[:40]
    fake_host.load_jira_issues(issues)
    tenant = install_into(fake_host, db)
    keys = seed_issues(db, tenant.tenant_id, tenant.base_url, issues)
    tid, key = tenant.tenant_id, keys[-1]
    try:
        with db.session() as session:
            client = HostClient.for_tenant(session.get(Tenant, tid), fake_host.app_key,
                                           auth_server=fake_host.url).as_user("aco")
            question = questions.ask(session, tid, source="jira", key=key, project="AMQ",
                                     asker_account_id="aco", expert_account_id="jstrachan",
                                     expert_name="james", text="Why?", client=client,
                                     next_experts=["chirino"])
            assert questions.on_comment(session, tid, "jira", key, "jstrachan", utcnow()) == \
                [question.id]
            target = session.scalar(select(Item.id).where(Item.tenant_id == tid,
                                                          Item.key == keys[0]))
            feedback.give(session, tid, source="jira", key=key, project="AMQ",
                          target_item_id=target, verdict="helped", account_id="aco")
            recognition.thank(session, tid, source="jira", key=key, space=None, giver="aco",
                              receiver="jstrachan", message="ta")
            with pytest.raises(Refused) as refused:
                recognition.thank(session, tid, source="jira", key=key, space=None,
                                  giver="aco", receiver="jstrachan", message="again")
            assert refused.value.status == 429
            save_project_settings(session, tid, "AMQ", {"exclude_people": ["chirino"]}, "admin")
            saved = save_project_settings(session, tid, "AMQ", {"purpose": "Ask early."}, "admin")
            assert saved["exclude_people"] == ["chirino"]  # a later save of another field keeps it
            assert matching_people(session, tid, ["HIRAM CHIRINO", "chirino", "nobody"]) == {
                "HIRAM CHIRINO": ["chirino"], "chirino": ["chirino"], "nobody": []}
            assert typed_names(session, tid, ["chirino", "nobody"]) == {"chirino": "Hiram Chirino",
                                                                        "nobody": "nobody"}
            set_preference(session, tid, "rajdavies", False, utcnow() + timedelta(days=3))
            assert not is_eligible(session, tid, "chirino", "AMQ")
            assert not is_eligible(session, tid, "rajdavies", "AMQ")
            adoption.record(session, tid, "reuse", "clicked", "jira", key, "AMQ", "aco", keys[0])
        with db.session() as session:
            weeks = adoption.dashboard(session, tid, "AMQ")["weeks"]
            assert (weeks[-1]["questions_answered"], weeks[-1]["reuse_clicks"]) == (1, 1)
            assert recognition.impact(session, tid, "jstrachan",
                                      utcnow() - timedelta(days=1))["questions_answered"] == 1
            assert recognition.board(session, tid, utcnow() - timedelta(days=7))[0]["kudos"] >= 1
            exported = privacy.export_person(session, tid, "aco")
            assert exported["questions"] and exported["feedback"] and exported["kudos"]
            privacy.erase_person(session, tid, "aco")
        with db.session() as session:
            assert session.get(Question, question.id) is None
            assert privacy.export_person(session, tid, "aco")["kudos"] == []
    finally:
        db.dispose()


def test_thanks_sent_at_once_keep_to_the_daily_limits(database_url: str) -> None:
    # A double click or a script: requests of one giver that overlap still count one by one.
    from concurrent.futures import ThreadPoolExecutor

    from tests.conftest import install_tenant

    app = build_app(database_url)
    db: Database = app.extensions["inflow.db"]
    tid = install_tenant(db, "jira").tenant_id

    def thank(receiver: str) -> int:
        try:
            with db.session() as session:
                recognition.thank(session, tid, source="jira", key="AMQ-1", space=None,
                                  giver="aco", receiver=receiver, message="")
            return 201
        except Refused as refused:
            return refused.status

    try:
        with ThreadPoolExecutor(8) as pool:
            same = list(pool.map(thank, ["jstrachan"] * 8))
            many = list(pool.map(thank, [f"person-{n}" for n in range(30)]))
        assert same.count(201) == 1 and set(same) == {201, 429}
        assert many.count(201) == recognition.PER_GIVER_PER_DAY - 1  # the first thanks counts too
    finally:
        db.dispose()
