"""Project admin API (host-checked admins only), tenant isolation, and the personal data API."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from connect.db import utcnow
from plugin.models.content import Contribution, Person
from plugin.models.pipeline import DigestDelivery, DigestSubscription
from plugin.models.social import Kudos, PanelEvent, PersonPreference, ProjectSettings, Question
from plugin.pipeline import digests
from plugin.services.panel_cache import EVENTS
from plugin.services.permissions import CACHE
from tests.conftest import install_tenant
from tests.panels.conftest import Site

ADMIN = "chirino"
SETTINGS = "/api/admin/projects/AMQ/settings"


@pytest.fixture(autouse=True)
def contractors(site: Site) -> None:
    """The site has the group the settings below name."""
    site.host.add_to_group("rajdavies", "contractors")


def _valid_settings() -> dict:
    return {"purpose": "Help the broker team find answers fast.",
            "panels": {"experts": True, "reuse": True, "contributors": False},
            "include_groups": [], "exclude_groups": ["contractors"],
            "include_people": [], "exclude_people": ["rajdavies"], "follow_up_hours": 24,
            "learn_projects": ["AMQ"], "learn_spaces": [],
            "privacy": {"show_evidence": True, "public_kudos_messages": False}}


def test_non_admins_cannot_read_or_change_project_settings(site: Site) -> None:
    assert site.get(SETTINGS, sub="aco").status_code == 403
    assert site.post(SETTINGS, _valid_settings(), sub="aco").status_code == 403
    assert site.get("/api/admin/projects/AMQ/dashboard", sub="aco").status_code == 403
    with site.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ProjectSettings)) == 0
    # The host was asked, as the app, about this viewer and this project.
    checks = site.host.calls_to("/rest/api/3/permissions/check", "POST")
    assert checks and all(call.json["accountId"] == "aco" and call.auth == "jwt"
                          for call in checks)
    # A key with a trailing newline is no project key: not asked of the site at all.
    asked = len(site.host.calls_to("/rest/api/3/permissions/check", "POST"))
    assert site.get("/api/admin/projects/AMQ%0A/settings", sub="aco").status_code == 404
    assert len(site.host.calls_to("/rest/api/3/permissions/check", "POST")) == asked


def test_a_project_admin_saves_settings_and_panels_follow_them(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")
    response = site.post(SETTINGS, _valid_settings(), sub=ADMIN)
    assert response.status_code == 200, response.get_json()
    assert site.get(SETTINGS, sub=ADMIN).get_json()["follow_up_hours"] == 24
    typed = site.post(SETTINGS, {**_valid_settings(), "learn_projects": [" amq "]}, sub=ADMIN)
    assert typed.get_json()["learn_projects"] == ["AMQ"]  # keys as people type them
    key = site.keys[-1]
    experts = site.get(f"/api/content/jira/{key}/experts", sub="aco").get_json()
    assert experts["purpose"] == "Help the broker team find answers fast."
    assert "rajdavies" not in [e["account_id"] for e in experts["experts"]]
    assert site.get(f"/api/content/jira/{key}/contributors").get_json()["enabled"] is False
    page = site.page(f"/jira/panels/contributors?issueKey={key}&projectKey=AMQ")
    assert "turned this panel off" in page.get_data(as_text=True)


def test_invalid_settings_are_422_with_field_messages_and_keep_what_was_stored(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")
    assert site.post(SETTINGS, _valid_settings(), sub=ADMIN).status_code == 200
    bad = {**_valid_settings(), "follow_up_hours": 0, "learn_projects": ["not a key"],
           "panels": {"experts": "no"}, "privacy": {"show_evidence": 1}, "learn_spaces": ["tsc", "!!"],
           "colour": "red"}
    response = site.post(SETTINGS, bad, sub=ADMIN)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert set(errors) == {"follow_up_hours", "learn_projects", "panels", "privacy", "learn_spaces", "colour"}
    assert site.get(SETTINGS, sub=ADMIN).get_json()["follow_up_hours"] == 24


def test_a_partial_save_changes_only_the_fields_it_sends(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")
    assert site.post(SETTINGS, _valid_settings(), sub=ADMIN).status_code == 200
    saved = site.post(SETTINGS, {"exclude_people": ["jstrachan"]}, sub=ADMIN)
    assert saved.status_code == 200, saved.get_json()
    expected = {**_valid_settings(), "exclude_people": ["jstrachan"]}
    assert saved.get_json() == expected
    panels = site.post(SETTINGS, {"panels": {"reuse": False}}, sub=ADMIN)  # one key of a group
    assert panels.get_json()["panels"] == {"experts": True, "reuse": False, "contributors": False}
    assert site.post(SETTINGS, {}, sub=ADMIN).get_json() == {**expected, "panels": panels.get_json()["panels"]}
    assert site.get(SETTINGS, sub=ADMIN).get_json() == panels.get_json()


def test_a_first_partial_save_starts_from_the_defaults(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")
    saved = site.post(SETTINGS, {"purpose": "Ask early."}, sub=ADMIN).get_json()
    assert (saved["purpose"], saved["follow_up_hours"], saved["panels"]["experts"]) == ("Ask early.", 48, True)


def test_a_null_field_is_refused_not_taken_as_left_out(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")
    assert site.post(SETTINGS, _valid_settings(), sub=ADMIN).status_code == 200
    response = site.post(SETTINGS, {"purpose": None, "follow_up_hours": None}, sub=ADMIN)
    assert response.status_code == 422 and set(response.get_json()["errors"]) == {"purpose", "follow_up_hours"}
    assert site.get(SETTINGS, sub=ADMIN).get_json() == _valid_settings()


def test_groups_are_saved_as_the_site_spells_them_and_unknown_ones_refused(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")
    site.host.add_to_group("jstrachan", "broker-devs")
    saved = site.post(SETTINGS, {**_valid_settings(), "include_groups": ["Broker-Devs", "broker-devs"]},
                      sub=ADMIN)
    assert saved.status_code == 200
    assert saved.get_json()["include_groups"] == ["broker-devs"]  # people's groups are compared as Jira names them

    typo = site.post(SETTINGS, {**_valid_settings(), "include_groups": ["broker-dev"],
                                "exclude_groups": ["contractors", "interns"]}, sub=ADMIN)
    assert typo.status_code == 422
    errors = typo.get_json()["errors"]
    assert errors == {"include_groups": ["This site has no group named 'broker-dev'. Did you mean 'broker-devs'?"],
                      "exclude_groups": ["This site has no group named 'interns'."]}
    assert site.get(SETTINGS, sub=ADMIN).get_json()["include_groups"] == ["broker-devs"]  # kept


def test_a_group_deleted_since_it_was_saved_does_not_block_the_next_save(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")
    site.host.add_to_group("jstrachan", "broker-devs")
    assert site.post(SETTINGS, {**_valid_settings(), "include_groups": ["broker-devs"]}, sub=ADMIN).status_code == 200
    with site.host.lock:
        site.host.store.groups["jstrachan"].discard("broker-devs")  # the group is gone from Jira
    # The admin page sends every field: the stored group goes back as it is, and the rest saves.
    saved = site.post(SETTINGS, {**_valid_settings(), "include_groups": ["broker-devs"], "purpose": "New."},
                      sub=ADMIN)
    assert saved.status_code == 200, saved.get_json()
    assert (saved.get_json()["include_groups"], saved.get_json()["purpose"]) == (["broker-devs"], "New.")
    # A group named anew must still exist.
    refused = site.post(SETTINGS, {**_valid_settings(), "include_groups": ["broker-devs"],
                                   "exclude_groups": ["broker-devs"]}, sub=ADMIN)
    assert refused.status_code == 422 and set(refused.get_json()["errors"]) == {"exclude_groups"}


def test_the_dashboard_counts_twelve_weeks_of_adoption(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")
    key = site.keys[-1]
    site.get(f"/api/content/jira/{key}/reuse")
    site.post("/api/questions", {"source": "jira", "key": key, "expert_account_id": "jstrachan",
                                 "text": "Could you take a look?"})
    site.post("/api/kudos", {"source": "jira", "key": key, "to_account_id": "jstrachan"})
    EVENTS.flush()  # views are written in batches, within a second
    weeks = site.get("/api/admin/projects/AMQ/dashboard", sub=ADMIN).get_json()["weeks"]
    assert len(weeks) == 12
    assert weeks[-1]["shown_share"] == 1.0
    assert (weeks[-1]["questions_asked"], weeks[-1]["kudos"]) == (1, 1)
    html = site.page("/jira/admin?projectKey=AMQ", sub=ADMIN).get_data(as_text=True)
    assert html.count("<svg") == 5 and "Save settings" in html
    assert site.page("/jira/admin?projectKey=AMQ", sub="aco").status_code == 403


def test_the_dashboard_says_a_week_with_no_answer_had_no_answer_not_0_hours(site: Site) -> None:
    """A question asked this week and answered after 3 h, none answered the weeks before."""
    from datetime import timedelta

    site.host.set_project_admin(ADMIN, "AMQ")
    now = utcnow()
    with site.db.session() as session:
        session.add(Question(tenant_id=site.tenant.tenant_id, source="jira", item_key=site.keys[-1],
                             project="AMQ", asker_account_id="aco", expert_account_id="jstrachan",
                             text="Could you take a look?", state="answered",
                             asked_at=now - timedelta(hours=3), answered_at=now))
    html = site.page("/jira/admin?projectKey=AMQ", sub=ADMIN).get_data(as_text=True)
    chart = html[html.index('aria-label="Median time to answer'):]
    chart = chart[:chart.index("</svg>")]
    assert 'aria-label="Median time to answer, last 12 weeks, latest 3.0 h"' in chart
    assert chart.count(": no answers</title>") == 11 and " 0 h</title>" not in chart


def test_another_tenants_token_cannot_touch_this_tenants_data(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")
    assert site.post(SETTINGS, _valid_settings(), sub=ADMIN).status_code == 200
    asked = site.post("/api/questions", {"source": "jira", "key": site.keys[-1],
                                         "expert_account_id": "jstrachan", "text": "Any idea?"})
    question_id = asked.get_json()["id"]
    other = install_tenant(site.db, "jira", base_url=site.host.base_url("jira"))
    as_other = other.context_headers(sub="aco")
    # Same account id, other tenant: no question of ours can be accepted from there...
    response = site.client.post(f"/api/questions/{question_id}/accept", json={}, headers=as_other)
    assert response.status_code in (403, 404)
    # ...and its panels show none of our data.
    panel = site.client.get(f"/api/content/jira/{site.keys[-1]}/experts", headers=as_other)
    assert panel.status_code == 404 and panel.get_json()["error"] == "not_found"  # as a missing issue
    with site.db.session() as session:
        assert session.get(Question, question_id).state == "asked"
        assert session.scalar(select(func.count()).select_from(ProjectSettings)) == 1


def test_me_shows_what_inflow_knows_and_preferences_take_effect(site: Site) -> None:
    me = site.get("/api/me", sub="jstrachan").get_json()
    assert "AMQ" in me["topics"] and me["evidence"]
    key = site.keys[-1]
    assert "jstrachan" in [e["account_id"] for e in
                           site.get(f"/api/content/jira/{key}/experts").get_json()["experts"]]
    response = site.post("/api/me/preferences", {"opted_out": True}, sub="jstrachan")
    assert response.get_json() == {"opted_out": True, "paused_until": None,
                                   "weekly_digest": False}
    assert "jstrachan" not in [e["account_id"] for e in
                               site.get(f"/api/content/jira/{key}/experts").get_json()["experts"]]
    paused = site.post("/api/me/preferences", {"opted_out": False, "pause_days": 7},
                       sub="jstrachan").get_json()
    assert paused["paused_until"] and not paused["opted_out"]
    # Saving the other choices leaves the pause alone; 0 ends it.
    kept = site.post("/api/me/preferences", {"opted_out": False, "weekly_digest": True},
                     sub="jstrachan").get_json()
    assert kept["paused_until"] == paused["paused_until"] and kept["weekly_digest"]
    assert site.post("/api/me/preferences", {"opted_out": False, "pause_days": None},
                     sub="jstrachan").get_json()["paused_until"] == paused["paused_until"]
    assert site.post("/api/me/preferences", {"opted_out": False, "pause_days": 0},
                     sub="jstrachan").get_json()["paused_until"] is None
    bad = site.post("/api/me/preferences", {"opted_out": "true", "pause_days": -1})
    assert bad.status_code == 422 and set(bad.get_json()["errors"]) == {"opted_out", "pause_days"}


CHECKS = "/rest/api/3/permissions/check"


def test_the_personal_page_names_no_item_the_person_can_no_longer_see(site: Site) -> None:
    evidence = site.get("/api/me", sub="jstrachan").get_json()["evidence"]
    hidden = evidence[0]["key"]
    site.host.deny("jstrachan", hidden)  # the issue moved to a project they are not in
    CACHE.clear()
    before = len(site.host.calls_to(CHECKS, "POST"))
    evidence = site.get("/api/me", sub="jstrachan").get_json()["evidence"]
    assert evidence and hidden not in [e["key"] for e in evidence]
    # Asked about the items listed (and the next ones in place of the hidden), not all their work.
    asked = [c.json["projectPermissions"][0]["issues"] for c in site.host.calls_to(CHECKS, "POST")[before:]]
    assert asked and all(len(issues) <= 10 for issues in asked)
    title = site.host.issue_view(hidden)["fields"]["summary"]
    page = site.page("/jira/me", sub="jstrachan").get_data(as_text=True)
    assert evidence[0]["title"] in page and title not in page


def test_a_save_that_loses_a_race_for_a_new_row_is_a_409_and_keeps_the_winner(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    from plugin.services import settings

    assert site.post("/api/me/preferences", {"opted_out": True}, sub="jstrachan").status_code == 200
    # The other request inserted the row between this one's look (found none) and its insert.
    monkeypatch.setattr(settings, "own_preference", lambda *_: None)
    lost = site.post("/api/me/preferences", {"opted_out": False}, sub="jstrachan")
    assert lost.status_code == 409 and lost.get_json()["error"] == "conflict"
    monkeypatch.undo()
    assert site.get("/api/me", sub="jstrachan").get_json()["preferences"]["opted_out"] is True


def test_export_then_erase_removes_the_person_everywhere(site: Site) -> None:
    key = site.keys[-1]
    site.post("/api/kudos", {"source": "jira", "key": key, "to_account_id": "jstrachan",
                             "message": "thanks"}, sub="aco")
    assert site.page(f"/jira/panels/experts?issueKey={key}&projectKey=AMQ", sub="jstrachan").status_code == 200
    EVENTS.flush()
    exported = site.get("/api/me/export", sub="jstrachan")
    assert exported.status_code == 200
    assert "attachment" in exported.headers["Content-Disposition"]
    body = exported.get_json()
    assert body["contributions"] and body["kudos"][0]["message"] == "thanks"
    # Everything erasure removes is exported too: here the view of the experts panel.
    assert {"panel": "experts", "kind": "viewed", "key": key} in [
        {k: e[k] for k in ("panel", "kind", "key")} for e in body["panel_events"]]
    assert body["question_steps"] == [] and body["digests"] == []
    refused = site.post("/api/me/erase", {"confirm": "yes"}, sub="jstrachan")
    assert refused.status_code == 422
    assert refused.get_json()["errors"] == {"confirm": ["Nothing was erased: type ERASE, in capitals, to confirm."]}
    assert site.post("/api/me/erase", {"confirm": "ERASE"}, sub="jstrachan").status_code == 200
    with site.db.session() as session:
        for model, column in ((Contribution, Contribution.account_id), (Person, Person.account_id),
                              (Kudos, Kudos.to_account_id)):
            assert session.scalar(select(func.count()).select_from(model).where(
                column == "jstrachan")) == 0
        assert session.scalar(select(func.count()).select_from(PersonPreference)) == 0
    assert site.get("/api/me/export", sub="jstrachan").get_json()["contributions"] == []


def test_a_view_still_queued_when_its_viewer_erases_is_not_written_after(site: Site) -> None:
    key = site.keys[-1]
    assert site.get(f"/api/content/jira/{key}/experts", sub="jstrachan").status_code == 200
    # Queued for the next write, as a view in another process would be, when the erasure runs.
    assert site.post("/api/me/erase", {"confirm": "ERASE"}, sub="jstrachan").status_code == 200
    assert site.get(f"/api/content/jira/{key}/experts", sub="aco").status_code == 200
    EVENTS.flush()
    with site.db.session() as session:
        viewers = set(session.scalars(select(PanelEvent.account_id)))
    assert "aco" in viewers and "jstrachan" not in viewers


def test_the_weekly_digest_is_opt_in_from_the_personal_page(site: Site) -> None:
    assert site.get("/api/me", sub="jstrachan").get_json()["preferences"]["weekly_digest"] is False
    page = site.page("/jira/me", sub="jstrachan").get_data(as_text=True)
    assert 'name="weekly_digest"' in page and 'name="weekly_digest" checked' not in page
    on = site.post("/api/me/preferences", {"opted_out": False, "weekly_digest": True},
                   sub="jstrachan")
    assert on.status_code == 200 and on.get_json()["weekly_digest"] is True
    with site.db.session() as session:
        assert digests.is_subscribed(session, site.tenant.tenant_id, "jstrachan")
        assert digests.due(session, digests.last_week(utcnow())) == [
            (site.tenant.tenant_id, "jstrachan")]
    assert site.get("/api/me", sub="jstrachan").get_json()["preferences"]["weekly_digest"]
    assert 'name="weekly_digest" checked' in site.page("/jira/me", sub="jstrachan").get_data(
        as_text=True)
    # Saving other preferences without the field leaves the subscription as it is.
    assert site.post("/api/me/preferences", {"opted_out": True},
                     sub="jstrachan").get_json()["weekly_digest"] is True
    assert site.get("/api/me/export", sub="jstrachan").get_json()["weekly_digest"] is True
    bad = site.post("/api/me/preferences", {"opted_out": False, "weekly_digest": "often"},
                    sub="jstrachan")
    assert bad.status_code == 422 and set(bad.get_json()["errors"]) == {"weekly_digest"}
    off = site.post("/api/me/preferences", {"opted_out": False, "weekly_digest": False},
                    sub="jstrachan")
    assert off.get_json()["weekly_digest"] is False
    with site.db.session() as session:
        assert not digests.is_subscribed(session, site.tenant.tenant_id, "jstrachan")


def test_erasure_removes_the_digest_subscription_and_deliveries(site: Site) -> None:
    site.post("/api/me/preferences", {"opted_out": False, "weekly_digest": True}, sub="jstrachan")
    with site.db.session() as session:
        session.add(DigestDelivery(tenant_id=site.tenant.tenant_id, account_id="jstrachan",
                                   week_start=digests.last_week(utcnow()), status="sent"))
    assert site.post("/api/me/erase", {"confirm": "ERASE"}, sub="jstrachan").status_code == 200
    with site.db.session() as session:
        for model in (DigestSubscription, DigestDelivery):
            assert session.scalar(select(func.count()).select_from(model)) == 0
    assert site.get("/api/me/export", sub="jstrachan").get_json()["weekly_digest"] is False


def test_a_confluence_installation_has_no_project_settings_to_ask_jira_about(site: Site) -> None:
    from tests.panels.conftest import install_wiki

    wiki = install_wiki(site)
    calls = len(wiki.host.calls)
    for method, path in [("GET", SETTINGS), ("POST", SETTINGS), ("GET", "/api/admin/projects/AMQ/dashboard"),
                         ("GET", "/api/admin/projects/AMQ/people")]:
        response = wiki.client.open(path, method=method, json=_valid_settings() if method == "POST" else None,
                                    headers=wiki.tenant.context_headers(sub=ADMIN))
        assert response.status_code == 404, path
        assert response.get_json()["error"] == "not_found"
        assert "Confluence" in response.get_json()["message"]
    assert len(wiki.host.calls) == calls  # nothing asked of the site


def test_a_group_among_many_longer_names_is_saved_as_typed(site: Site) -> None:
    """Jira's picker answers a page of names containing the typed one: a full page may not hold it."""
    site.host.set_project_admin(ADMIN, "AMQ")
    for n in range(25):
        site.host.add_to_group("jstrachan", f"a{n:02d}-dev")
    site.host.add_to_group("jstrachan", "dev")
    saved = site.post(SETTINGS, {**_valid_settings(), "include_groups": ["dev"]}, sub=ADMIN)
    assert saved.status_code == 200 and saved.get_json()["include_groups"] == ["dev"]
