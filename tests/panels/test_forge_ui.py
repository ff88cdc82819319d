"""The Forge Custom UI does what the Connect panels do, in Chromium through a stubbed bridge.

Real FITs (the loopback JWKS), the real backend, and the fake site answering product calls made
with the tokens it issued; screenshots go to tests/artifacts/ (git-ignored).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from plugin.matching.store import remember_people
from plugin.models.social import Kudos, Question
from plugin.services.settings import project_settings, save_project_settings
from tests.forge.test_browser import ARTIFACTS, browser, open_page, serve  # noqa: F401
from tests.panels.conftest import Site, install_wiki
from tests.panels.test_rovo import VIEWER, Rovo, forge_key, rovo  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.fixture
def ui(rovo: Rovo, tmp_path: Path) -> Iterator[str]:  # noqa: F811
    base, stop = serve(rovo.site.app, tmp_path)
    yield base
    stop()


def open_as(browser: object, ui: str, rovo: Rovo, resource: str, context: dict,  # noqa: F811
            user: str = VIEWER) -> object:
    token = rovo.token(principal=user, context={"cloudId": rovo.site.host.cloud_id,
                                                "siteUrl": rovo.site.host.url})
    return open_page(browser, ui, resource, token, context, system_token=rovo.system["jira"],
                     user_token=rovo.site.host.issue_forge_token("jira", user))


def test_the_issue_panel_asks_follows_up_gives_feedback_links_and_thanks(
        browser: object, ui: str, rovo: Rovo) -> None:  # noqa: F811
    site: Site = rovo.site
    key = site.keys[-1]
    page = open_as(browser, ui, rovo, "issue-panel",
                   {"extension": {"type": "jira:issuePanel", "issue": {"key": key}}})
    experts = page.get_by_role("region", name="People who can help")
    experts.get_by_role("button", name="Ask").first.click()
    experts.get_by_role("textbox").first.fill("Could you look at the broker hang?")
    experts.get_by_role("button", name="Send question").click()
    page.get_by_role("button", name="Accept answer").wait_for()  # reloaded: the question is listed
    page.get_by_role("button", name="Accept answer").click()
    page.get_by_text("— accepted").wait_for()

    similar = page.get_by_role("region", name="Similar earlier work")
    similar.get_by_role("button", name="Helped").first.click()
    similar.get_by_role("button", name="Helped").first.and_(
        page.locator('[aria-pressed="true"]')).wait_for()
    similar.get_by_role("button", name="Link as duplicate").first.click()
    similar.get_by_text(f"Linked {key} to").wait_for()

    people = page.get_by_role("region", name="Contributors")
    people.get_by_role("button", name="Thank").first.click()
    people.get_by_role("textbox").first.fill("Thanks for the fix!")
    people.get_by_role("button", name="Send thanks").click()
    page.get_by_text("Thanks for the fix!").wait_for()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "forge-issue-panel.png"), full_page=True)

    [comment] = site.host.comments(key)  # posted as the viewer, with their user token
    assert "broker hang" in str(comment["body"])
    [link] = site.host.links
    assert (link["type"], link["outward"], link["account_id"]) == ("Duplicate", key, VIEWER)
    with site.db.session() as session:
        [question] = session.scalars(select(Question)).all()
        assert (question.asker_account_id, question.state) == (VIEWER, "accepted")
        assert session.scalar(select(Kudos)).from_account_id == VIEWER


def test_project_settings_show_adoption_and_the_backfill_and_save(
        browser: object, ui: str, rovo: Rovo) -> None:  # noqa: F811
    rovo.site.host.set_project_admin(VIEWER, "AMQ")
    page = open_as(browser, ui, rovo, "project-settings",
                   {"extension": {"type": "jira:projectSettingsPage", "project": {"key": "AMQ"}}})
    page.get_by_role("heading", name="Adoption, last 12 weeks").wait_for()
    page.get_by_text("issues this week with a suggestion shown").wait_for()
    learned = page.get_by_role("region", name="What Inflow has learned")
    learned.get_by_text("Not run yet").wait_for()
    learned.get_by_role("button", name="Backfill now").click()
    learned.get_by_text("Backfill requested.").wait_for()
    learned.get_by_text("Queued").wait_for()
    people = page.get_by_label("Never suggest these people (names or account ids)")
    people.fill("nobody-at-all")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("This site has no person named 'nobody-at-all'", exact=False).wait_for()
    people.fill("")
    page.get_by_label("What this project uses Inflow for").fill("Support for the broker")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Settings saved.").wait_for()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "forge-project-settings.png"), full_page=True)


def test_project_settings_show_people_by_name_and_save_them_unchanged(
        browser: object, ui: str, rovo: Rovo) -> None:  # noqa: F811
    site: Site = rovo.site
    site.host.set_project_admin(VIEWER, "AMQ")
    hostile = '<img src=x onerror="window.__hostile = 1"> Eve'
    with site.db.session() as session:
        remember_people(session, site.tenant.tenant_id, [("eve", hostile)])
        # earaya: "Etienne Araya" names two people of the site, so the id is shown.
        save_project_settings(session, site.tenant.tenant_id, "AMQ", {
            "exclude_people": ["gtully", "earaya", "eve"], "include_people": ["rajdavies"]}, "admin")
    page = open_as(browser, ui, rovo, "project-settings",
                   {"extension": {"type": "jira:projectSettingsPage", "project": {"key": "AMQ"}}})
    never = page.get_by_label("Never suggest these people (names or account ids)")
    never.wait_for()
    assert never.input_value() == f"Gary Tully, earaya, {hostile}"  # as text, run as nothing
    assert page.get_by_label("Always allow these people", exact=False).input_value() == "Rob Davies"
    assert page.evaluate("window.__hostile") is None and not page.locator("img[src=x]").count()
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Settings saved.").wait_for()
    with site.db.session() as session:
        saved = project_settings(session, site.tenant.tenant_id, "AMQ")
    assert (saved["exclude_people"], saved["include_people"]) == (["gtully", "earaya", "eve"],
                                                                  ["rajdavies"])


def test_project_settings_refuse_someone_who_does_not_administer_the_project(
        browser: object, ui: str, rovo: Rovo) -> None:  # noqa: F811
    page = open_as(browser, ui, rovo, "project-settings",
                   {"extension": {"type": "jira:projectSettingsPage", "project": {"key": "AMQ"}}})
    page.get_by_role("alert").get_by_text("Only project administrators").wait_for()


def test_the_personal_page_turns_the_weekly_digest_on(browser: object, ui: str,  # noqa: F811
                                                      rovo: Rovo) -> None:  # noqa: F811
    from plugin.pipeline.digests import is_subscribed

    page = open_as(browser, ui, rovo, "personal-settings",
                   {"extension": {"type": "jira:personalSettingsPage"}})
    page.get_by_label("Send me a weekly digest").check()
    page.get_by_role("button", name="Save preferences").click()
    page.get_by_text("Saved: you can be suggested.").wait_for()
    with rovo.site.db.session() as session:
        assert is_subscribed(session, rovo.site.tenant.tenant_id, VIEWER)


def test_the_issue_panel_marks_matched_words_and_says_why(browser: object, ui: str, rovo: Rovo) -> None:  # noqa: F811
    key = rovo.site.keys[-1]
    page = open_as(browser, ui, rovo, "issue-panel",
                   {"extension": {"type": "jira:issuePanel", "issue": {"key": key}}})
    similar = page.get_by_role("region", name="Similar earlier work")
    similar.locator(".inflow-snippet mark").first.wait_for()
    data = rovo.site.get(f"/api/content/jira/{key}/reuse").get_json()["suggestions"][0]
    first = similar.locator(".inflow-snippet").first
    assert first.inner_text() == data["snippet"]  # text nodes: the snippet reads as the API sent it
    assert first.locator("mark").all_inner_texts() == [data["snippet"][a:b] for a, b in data["snippet_marks"]]
    assert similar.locator(".inflow-reason").first.inner_text() == "; ".join(data["reasons"])
    people = page.get_by_role("region", name="People who can help")
    assert re.search(r"similar issues?: (was assigned|resolved|commented on) AMQ-\d+",
                     people.locator(".inflow-reason").first.inner_text())
    # Nothing on hover in the stored reason's shorthand ("18 similar item(s) as commenter").
    assert all(title is None for title in people.locator(".inflow-reason").evaluate_all(
        "spans => spans.map(s => s.getAttribute('title'))"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "forge-issue-panel-why.png"), full_page=True)


def test_following_a_suggestion_counts_as_a_reuse_click_and_never_waits_for_it(
        browser: object, ui: str, rovo: Rovo) -> None:  # noqa: F811
    """The Connect panel's click event, from the Forge panel: the dashboard's reuse clicks rise."""
    from plugin.models.social import PanelEvent

    key = rovo.site.keys[-1]
    page = open_as(browser, ui, rovo, "issue-panel",
                   {"extension": {"type": "jira:issuePanel", "issue": {"key": key}}})
    # The suggestion's own page opens in a new tab: answered here, as the site would answer it.
    page.context.route(re.compile(r"^https://"), lambda route: route.fulfill(
        status=200, content_type="text/html", body="<title>The issue</title>"))
    followed = page.get_by_role("region", name="Similar earlier work").locator(
        ".inflow-suggestion a").first
    target = followed.inner_text().split()[0]
    with page.expect_response(lambda r: r.url.endswith("/api/events"), timeout=10_000) as sent, \
            page.expect_popup() as tab:
        followed.click()
    assert sent.value.status == 204 and tab.value.url == followed.get_attribute("href")
    assert sent.value.request.post_data_json == {"source": "jira", "key": key, "panel": "reuse",
                                                 "kind": "clicked", "target": target}
    with rovo.site.db.session() as session:
        [click] = session.scalars(select(PanelEvent).where(PanelEvent.kind == "clicked")).all()
        assert (click.panel, click.item_key, click.target, click.account_id) == (
            "reuse", key, target, VIEWER)

    # The backend cannot be reached: the link still opens, and the panel says nothing of it.
    page.route("**/api/events", lambda route: route.abort())
    with page.expect_request(lambda r: r.url.endswith("/api/events")), page.expect_popup() as again:
        followed.click()
    assert again.value.url == followed.get_attribute("href")
    assert page.get_by_role("alert").count() == 0

    rovo.site.host.set_project_admin(VIEWER, "AMQ")
    admin = open_as(browser, ui, rovo, "project-settings",
                    {"extension": {"type": "jira:projectSettingsPage", "project": {"key": "AMQ"}}})
    tile = admin.locator(".inflow-kpi").filter(has_text="reuse clicks")
    tile.wait_for()
    assert tile.locator("b").inner_text() == "1"


def test_contributors_say_what_each_did_in_words_and_count_kudos(browser: object, ui: str,  # noqa: F811
                                                                 rovo: Rovo) -> None:  # noqa: F811
    """As the Connect panel says it: "assigned, commented, resolved · 1 kudos", not role names."""
    site: Site = rovo.site
    key = site.keys[-1]
    assert site.post("/api/kudos", {"source": "jira", "key": key,
                                    "to_account_id": "jstrachan"}).status_code == 201
    page = open_as(browser, ui, rovo, "issue-panel",
                   {"extension": {"type": "jira:issuePanel", "issue": {"key": key}}})
    row = page.get_by_role("region", name="Contributors").locator(".inflow-person",
                                                                  has_text="james strachan")
    row.wait_for()
    assert row.inner_text().startswith("james strachan assigned, commented, resolved · 1 kudos")


def test_the_page_panel_names_pages_by_their_titles_not_their_ids(browser: object, ui: str,  # noqa: F811
                                                                  rovo: Rovo) -> None:  # noqa: F811
    """A page's key is a number nobody knows: links to pages read as the pages' titles."""
    site: Site = install_wiki(rovo.site)
    rovo.__init__(site, rovo.key)  # the Confluence tenant moves to Forge too
    rovo.product = "confluence"
    page_id = site.stored()
    data = site.get(f"/api/content/confluence/{page_id}/reuse").get_json()["suggestions"]
    experts = site.get(f"/api/content/confluence/{page_id}/experts").get_json()["experts"]
    pages = [s for s in data if s["source"] == "confluence"]
    work = [e for p in experts for e in p["evidence"] if e["source"] == "confluence"]
    assert pages and work  # both lists name pages
    token = rovo.token(principal=VIEWER, context={"cloudId": site.host.cloud_id,
                                                  "siteUrl": site.host.url})
    page = open_page(browser, ui, "page-panel", token,
                     {"extension": {"type": "confluence:contentBylineItem",
                                    "content": {"id": page_id}}},
                     system_token=rovo.system["confluence"],
                     user_token=site.host.issue_forge_token("confluence", VIEWER))
    similar = page.get_by_role("region", name="Similar earlier work")
    similar.locator(".inflow-suggestion a").first.wait_for()
    links = similar.locator(".inflow-suggestion > a").all_inner_texts()
    assert [s["title"] for s in pages] == [t for t in links if not re.match(r"[A-Z]+-\d+ ", t)]
    shown = page.get_by_role("region", name="People who can help").locator(
        ".inflow-evidence a").all_inner_texts()
    assert {e["title"] for e in work} <= set(shown)
    assert not [t for t in links + shown if re.match(r"\d+ ", t)]  # no page id before a title
    # A page's "current" status says nothing: no word beside its title (an issue keeps its own).
    assert "current" not in similar.locator(".inflow-meta").all_inner_texts()


def test_questions_say_their_state_in_words_and_the_viewers_own_as_you(
        browser: object, ui: str, rovo: Rovo) -> None:  # noqa: F811
    """As the Connect panel says it: "You asked Rob Davies ... Waiting", not "Adrian Co ... asked"."""
    site: Site = rovo.site
    key = site.keys[-1]
    assert site.post("/api/questions", {"source": "jira", "key": key, "expert_account_id": "rajdavies",
                                        "text": "Which setting fixes the reconnect?"}).status_code == 201
    assert site.post("/api/questions", {"source": "jira", "key": key, "expert_account_id": "chirino",
                                        "text": "Is the journal safe?"}, sub="jstrachan").status_code == 201
    page = open_as(browser, ui, rovo, "issue-panel",
                   {"extension": {"type": "jira:issuePanel", "issue": {"key": key}}})
    rows = page.get_by_role("region", name="People who can help").locator("li", has=page.locator("q"))
    rows.first.wait_for()
    assert sorted(rows.all_inner_texts()) == [
        "You asked Rob Davies: Which setting fixes the reconnect? — Waiting Accept answer",
        "james strachan asked Hiram Chirino: Is the journal safe? — Waiting"]


def test_the_viewer_reads_you_where_they_were_asked_or_thanked(browser: object, ui: str,  # noqa: F811
                                                               rovo: Rovo) -> None:  # noqa: F811
    """As the Connect panel says it: "james strachan asked you", "You thanked john", "... thanked you"."""
    site: Site = rovo.site
    key = site.keys[-1]
    assert site.post("/api/questions", {"source": "jira", "key": key, "expert_account_id": VIEWER,
                                        "text": "Is the journal safe?"}, sub="jstrachan").status_code == 201
    for giver, receiver in (("jstrachan", VIEWER), (VIEWER, "jstrachan")):
        assert site.post("/api/kudos", {"source": "jira", "key": key, "to_account_id": receiver},
                         sub=giver).status_code == 201
    page = open_as(browser, ui, rovo, "issue-panel",
                   {"extension": {"type": "jira:issuePanel", "issue": {"key": key}}})
    asked = page.get_by_role("region", name="People who can help").locator("li", has=page.locator("q"))
    asked.first.wait_for()
    assert asked.all_inner_texts() == ["james strachan asked you: Is the journal safe? — Waiting"]
    thanks = page.get_by_role("region", name="Contributors").locator("li", has_text="thanked")
    assert sorted(thanks.all_inner_texts()) == ["You thanked james strachan", "james strachan thanked you"]



def test_project_settings_name_the_panels_as_their_sections_are_titled(
        browser: object, ui: str, rovo: Rovo) -> None:  # noqa: F811
    """An admin turns off "People who can help", the section people see, not "experts"."""
    site: Site = rovo.site
    site.host.set_project_admin(VIEWER, "AMQ")
    page = open_as(browser, ui, rovo, "project-settings",
                   {"extension": {"type": "jira:projectSettingsPage", "project": {"key": "AMQ"}}})
    page.get_by_label("People who can help").uncheck()
    assert page.get_by_label("Similar earlier work").is_checked()
    assert page.get_by_label("Contributors", exact=True).is_checked()
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Settings saved.").wait_for()
    with site.db.session() as session:
        assert project_settings(session, site.tenant.tenant_id, "AMQ")["panels"] == {
            "experts": False, "reuse": True, "contributors": True}


def test_project_settings_show_the_backfills_times_as_people_read_them(
        browser: object, ui: str, rovo: Rovo) -> None:  # noqa: F811
    """As the Connect page shows them ("2026-11-25 20:31 UTC"), not as ISO strings."""
    from datetime import UTC, datetime

    from plugin.models.pipeline import BackfillState

    site: Site = rovo.site
    site.host.set_project_admin(VIEWER, "AMQ")
    with site.db.session() as session:
        session.add(BackfillState(tenant_id=site.tenant.tenant_id, status="done", items_done=300,
                                  finished_at=datetime(2026, 11, 25, 20, 31, 7, tzinfo=UTC),
                                  errors=[{"at": "2026-11-25T20:02:09.123456+00:00",
                                           "error": "HostError: 503"}]))
    page = open_as(browser, ui, rovo, "project-settings",
                   {"extension": {"type": "jira:projectSettingsPage", "project": {"key": "AMQ"}}})
    learned = page.get_by_role("region", name="What Inflow has learned")
    learned.get_by_text("HostError: 503").wait_for()
    facts = learned.locator("dd").all_inner_texts()
    assert facts[2:] == ["2026-11-25 20:31 UTC", "2026-11-25 20:31 UTC"]  # checkpoint, finished
    assert learned.locator("li").all_inner_texts() == ["2026-11-25 20:02 UTC HostError: 503"]


def test_the_personal_page_lists_the_work_with_every_role_in_words(browser: object, ui: str,  # noqa: F811
                                                                   rovo: Rovo) -> None:  # noqa: F811
    """As the Connect page lists it: each item linked, "assigned, resolved, commented", the day."""
    me = rovo.site.get("/api/me", sub="jstrachan").get_json()
    [entry] = [e for e in me["evidence"] if len(e["roles"]) == 3][:1]
    page = open_as(browser, ui, rovo, "personal-settings",
                   {"extension": {"type": "jira:personalSettingsPage"}}, user="jstrachan")
    known = page.get_by_role("region", name="What Inflow knows")
    row = known.locator("li", has_text=entry["key"]).first
    row.wait_for()
    words = {"assignee": "assigned", "resolver": "resolved", "commenter": "commented", "reporter": "reported"}
    assert row.inner_text() == (f"{entry['key']} {entry['title']} · "
                                f"{', '.join(words[r] for r in entry['roles'])} · {entry['at'][:10]}")
    assert row.get_by_role("link").get_attribute("href") == entry["url"]
    assert not any(role in known.inner_text() for role in words)  # no role by its stored name



def test_erasing_my_data_clears_what_the_personal_page_listed(browser: object, ui: str,  # noqa: F811
                                                             rovo: Rovo) -> None:  # noqa: F811
    """Once erased, the work listed is not shown still, as if Inflow kept it."""
    page = open_as(browser, ui, rovo, "personal-settings",
                   {"extension": {"type": "jira:personalSettingsPage"}}, user="jstrachan")
    known = page.get_by_role("region", name="What Inflow knows")
    known.get_by_role("link").first.wait_for()
    page.get_by_label("Type ERASE to confirm").fill("ERASE")
    page.get_by_role("button", name="Erase my data").click()
    page.get_by_text("Your data was erased from Inflow.").wait_for()
    assert known.get_by_role("link").count() == 0
    assert "Inflow no longer holds your work, questions, kudos or feedback." in known.inner_text()



def test_a_panel_with_every_section_turned_off_says_why(browser: object, ui: str,  # noqa: F811
                                                       rovo: Rovo) -> None:  # noqa: F811
    """Not a blank panel: the Connect panels say an admin turned them off; so does Forge's."""
    site: Site = rovo.site
    with site.db.session() as session:
        save_project_settings(session, site.tenant.tenant_id, "AMQ", {"panels": {
            "experts": False, "reuse": False, "contributors": False}}, "admin")
    page = open_as(browser, ui, rovo, "issue-panel",
                   {"extension": {"type": "jira:issuePanel", "issue": {"key": site.keys[-1]}}})
    page.get_by_text("A project admin has turned Inflow's panels off for this project.").wait_for()
    assert page.get_by_role("region").count() == 0
