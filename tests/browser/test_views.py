"""Each view in a real browser inside a host page: actions work, effects land, axe is clean."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connect.db import utcnow
from plugin.models.pipeline import BackfillState
from plugin.models.social import Feedback, Kudos, ProjectSettings, Question
from plugin.pipeline import digests
from plugin.services.settings import preference, set_preference
from tests.browser.conftest import ALL_JS, Stack, run_axe, shoot

pytestmark = pytest.mark.browser

ADMIN = "chirino"


def _panel(stack: Stack, panel: str) -> str:
    return f"/jira/panels/{panel}?issueKey={stack.keys[-1]}&projectKey=AMQ"


def test_asking_an_expert_posts_a_comment_and_tracks_the_question(host_page: Any,
                                                                   stack: Stack) -> None:
    frame = host_page.open_view(_panel(stack, "experts"))
    frame.get_by_role("button", name="Ask").first.click()
    box = frame.get_by_label("Your question to", exact=False).first
    assert stack.keys[-1] in box.input_value()  # prefilled with the issue's context
    box.fill("Hi James, how do durable subscribers reconnect after a TCP drop?")
    frame.get_by_role("button", name="Send question").first.click()
    frame.locator(".status", has_text="Question posted as your comment.").first.wait_for()
    shoot(host_page, "jira-experts-after-ask")
    with stack.db.session() as session:
        question = session.scalars(select(Question)).one()
        assert (question.asker_account_id, question.state) == ("aco", "asked")
    comment = stack.host.comments(stack.keys[-1])[-1]
    assert comment["author"]["accountId"] == "aco"
    assert comment["body"]["content"][0]["content"][0]["attrs"]["id"] == question.expert_account_id


def test_the_asker_accepts_the_answer_from_the_experts_panel(host_page: Any, stack: Stack) -> None:
    key = stack.keys[-3]
    frame = host_page.open_view(f"/jira/panels/experts?issueKey={key}&projectKey=AMQ")
    frame.get_by_role("button", name="Ask").first.click()
    frame.get_by_role("button", name="Send question").first.click()
    frame.locator(".status", has_text="Question posted as your comment.").first.wait_for()
    frame = host_page.open_view(f"/jira/panels/experts?issueKey={key}&projectKey=AMQ")
    mine = frame.locator("#questions li", has_text="You asked")
    mine.get_by_role("button", name="Accept answer").click()
    mine.get_by_text("Answer accepted.").wait_for()  # said where it was clicked
    assert mine.locator(".loz").text_content() == "Accepted"  # no longer "Waiting"
    with stack.db.session() as session:
        question = session.scalars(select(Question).where(Question.item_key == key)).one()
        assert (question.asker_account_id, question.state) == ("aco", "accepted")


def test_feedback_and_linking_from_the_reuse_panel(host_page: Any, stack: Stack) -> None:
    frame = host_page.open_view(_panel(stack, "reuse"))
    helped = frame.get_by_role("button", name="Helped").first
    helped.click()
    frame.locator('button[aria-pressed="true"]').first.wait_for()
    frame.get_by_role("button", name="Link as duplicate").first.click()
    frame.get_by_text("Linked ", exact=False).first.wait_for()
    shoot(host_page, "jira-reuse-after-feedback")
    with stack.db.session() as session:
        feedback = session.scalars(select(Feedback)).one()
        assert (feedback.account_id, feedback.verdict) == ("aco", "helped")
    [link] = stack.host.links
    assert (link["type"], link["outward"], link["account_id"]) == \
        ("Duplicate", stack.keys[-1], "aco")


def test_without_all_js_a_button_says_why_it_cannot_work(host_page: Any, stack: Stack) -> None:
    host_page.unroute(ALL_JS)
    host_page.route(ALL_JS, lambda route: route.abort())  # offline: Atlassian's CDN is out of reach
    path = _panel(stack, "reuse")
    frame = host_page.open_view(path)
    frame.get_by_role("button", name="Helped").first.click()
    frame.get_by_text("Atlassian's page script (all.js) did not load, so this button cannot "
                      "reach Jira. Check the network and reload.").wait_for()
    host_page.goto(stack.signed(path))  # the same panel on its own, in no host's frame
    host_page.get_by_role("button", name="Helped").first.click()
    host_page.get_by_text("Open this page inside Jira or Confluence.").wait_for()


def test_thanking_a_contributor(host_page: Any, stack: Stack) -> None:
    frame = host_page.open_view(_panel(stack, "contributors"))
    frame.get_by_role("button", name="Thank").first.click()
    frame.get_by_label("Message to", exact=False).first.fill("Your fix saved my day")
    frame.get_by_role("button", name="Send thanks").first.click()
    frame.locator(".status", has_text="Thanks sent.").first.wait_for()
    shoot(host_page, "jira-contributors-after-thanks")
    with stack.db.session() as session:
        kudos = session.scalars(select(Kudos).where(Kudos.kind == "thanks")).one()
        assert (kudos.from_account_id, kudos.message) == ("aco", "Your fix saved my day")


def _stored_purpose(stack: Stack) -> str | None:
    with stack.db.session() as session:
        row = session.scalars(select(ProjectSettings)).first()
        return row.data.get("purpose") if row is not None else None


def test_a_project_admin_changes_settings(host_page: Any, stack: Stack) -> None:
    stack.host.set_project_admin(ADMIN, "AMQ")
    stack.viewer = ADMIN
    try:
        frame = host_page.open_view("/jira/admin?projectKey=AMQ", width=1040, height=1500)
        frame.get_by_label("Shown at the top of every panel").fill("Broker team: ask early.")
        frame.get_by_label("Contributors", exact=True).uncheck()
        frame.get_by_label("Hours before an unanswered question", exact=False).fill("12")
        frame.get_by_label("Never these people", exact=False).fill("rajdavies, gary tully")
        frame.get_by_role("button", name="Save settings").click()
        frame.locator(".status", has_text="Settings saved.").first.wait_for()
        shoot(host_page, "jira-admin")
        # An emptied number is left out of the save: the stored value stays, and the rest saves.
        frame.get_by_label("Hours before an unanswered question", exact=False).fill("")
        frame.get_by_label("Shown at the top of every panel").fill("Broker team: ask early, please.")
        frame.get_by_role("button", name="Save settings").click()
        deadline = time.monotonic() + 20
        while _stored_purpose(stack) != "Broker team: ask early, please." and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stack.viewer = "aco"
    with stack.db.session() as session:
        data = session.scalars(select(ProjectSettings)).one().data
    assert data["purpose"] == "Broker team: ask early, please."
    assert data["panels"]["contributors"] is False and data["follow_up_hours"] == 12
    assert data["exclude_people"] == ["rajdavies", "gtully"]  # typed by id or by name


def test_invalid_admin_input_shows_field_messages(host_page: Any, stack: Stack) -> None:
    stack.host.set_project_admin(ADMIN, "AMQ")
    stack.viewer = ADMIN
    try:
        frame = host_page.open_view("/jira/admin?projectKey=AMQ", width=1040, height=1500)
        frame.get_by_label("Suggest similar issues only from these projects", exact=False).fill("not a key")
        frame.get_by_role("button", name="Save settings").click()
        # Named as the page labels it, not by the API's field name.
        status = frame.locator("#settings > .status")
        status.get_by_text("Not a project key.", exact=False).wait_for()
        assert status.inner_text() == \
            "Suggest similar issues only from these projects (keys; empty: all): Not a project key."
        frame.get_by_label("Suggest similar issues only from these projects", exact=False).fill("AMQ")
        frame.get_by_label("Never these people", exact=False).fill("not-a-real-person")
        frame.get_by_role("button", name="Save settings").click()
        status.get_by_text("not-a-real-person", exact=False).wait_for()
        assert status.inner_text() == ("Never these people (names or account ids): This site has no person "
                                       "named 'not-a-real-person' (display name or account id).")
    finally:
        stack.viewer = "aco"


def test_the_settings_form_fits_a_narrow_frame(host_page: Any, stack: Stack) -> None:
    stack.host.set_project_admin(ADMIN, "AMQ")
    stack.viewer = ADMIN
    try:
        frame = host_page.open_view("/jira/admin?projectKey=AMQ", width=327, height=1500)
        widths = frame.locator("html").evaluate(
            "() => [document.documentElement.clientWidth,"
            " Math.max(...[...document.querySelectorAll('fieldset')].map(f => f.getBoundingClientRect().right))]")
        assert widths[1] <= widths[0], widths  # no fieldset runs out of the frame
    finally:
        stack.viewer = "aco"


def test_a_project_admin_starts_a_backfill_and_sees_its_status(host_page: Any,
                                                               stack: Stack) -> None:
    stack.host.set_project_admin(ADMIN, "AMQ")
    stack.viewer = ADMIN
    try:
        frame = host_page.open_view("/jira/admin?projectKey=AMQ", width=1040, height=1500)
        frame.locator("#bf-status").get_by_text("Not run yet").wait_for()
        frame.get_by_role("button", name="Backfill now").click()
        frame.locator(".status", has_text="Backfill requested.").first.wait_for()
        frame.locator("#bf-status").get_by_text("Queued").wait_for()
        assert frame.locator("#bf-errors").inner_text().strip() == "No errors."  # as rewritten from the answer
        shoot(host_page, "jira-admin-backfill")
        with stack.db.session() as session:  # the worker reads the site (the page asks every 3 s)
            state = session.scalars(select(BackfillState)).one()
            state.status, state.items_done, state.items_total = "running", 1200, 5000
        frame.locator("#bf-done", has_text="1,200 of about 5,000").wait_for()
        with stack.db.session() as session:
            state = session.scalars(select(BackfillState)).one()
            state.status, state.items_done, state.finished_at = "done", 4649, utcnow()
        frame.locator("#bf-status").get_by_text("Done").wait_for()
        assert frame.locator("#bf-done").inner_text() == "4,649"  # exact once done, not "of about"
    finally:
        stack.viewer = "aco"
    with stack.db.session() as session:
        state = session.scalars(select(BackfillState)).one()
        assert (state.tenant_id, state.status) == (stack.tenant.tenant_id, "done")
        session.delete(state)  # later tests see the site as it was


def test_opting_in_to_the_weekly_digest(host_page: Any, stack: Stack) -> None:
    stack.viewer = "jstrachan"
    try:
        frame = host_page.open_view("/jira/me", width=1040, height=900)
        frame.get_by_label("Send me a weekly digest", exact=False).check()
        frame.get_by_role("button", name="Save", exact=True).click()
        frame.locator(".status", has_text="Preferences saved.").first.wait_for()
    finally:
        stack.viewer = "aco"
    with stack.db.session() as session:
        assert digests.is_subscribed(session, stack.tenant.tenant_id, "jstrachan")
        digests.set_subscription(session, stack.tenant.tenant_id, "jstrachan", False)


def test_saving_other_choices_keeps_a_pause_and_a_failed_erase_can_be_sent_again(
        host_page: Any, stack: Stack) -> None:
    stack.viewer = "jstrachan"
    try:
        frame = host_page.open_view("/jira/me", width=1040, height=900)
        frame.get_by_label("Pause suggestions").select_option("14")
        frame.get_by_role("button", name="Save", exact=True).click()
        frame.locator(".status", has_text="Preferences saved.").first.wait_for()
        frame = host_page.open_view("/jira/me", width=1040, height=900)
        frame.get_by_label("Send me a weekly digest", exact=False).check()
        frame.get_by_role("button", name="Save", exact=True).click()
        frame.locator(".status", has_text="Preferences saved.").first.wait_for()
        with stack.db.session() as session:
            kept = preference(session, stack.tenant.tenant_id, "jstrachan")
            assert kept is not None and kept.paused_until is not None  # the digest did not end it
        erase = frame.get_by_role("button", name="Erase my data")
        frame.get_by_label("Type ERASE to confirm").fill("erase please")
        erase.click()
        frame.locator("#erase .status", has_text="ERASE").wait_for()
        # One sentence: not the general "Some fields are not valid.", nor the box's label again.
        assert frame.locator("#erase .status").inner_text() == \
            "Nothing was erased: type ERASE, in capitals, to confirm."
        assert erase.is_enabled()  # refused, so it may be sent again once corrected
    finally:
        stack.viewer = "aco"
        with stack.db.session() as session:
            set_preference(session, stack.tenant.tenant_id, "jstrachan", False, None)
            digests.set_subscription(session, stack.tenant.tenant_id, "jstrachan", False)


def test_downloading_my_data(host_page: Any, stack: Stack) -> None:
    stack.viewer = "jstrachan"
    try:
        frame = host_page.open_view("/jira/me", width=1040, height=900)
        with host_page.expect_download() as info:
            frame.get_by_role("button", name="Download my data").click()
        exported = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
        frame.locator(".status", has_text="Downloaded inflow-my-data.json.").first.wait_for()
        shoot(host_page, "jira-me")
    finally:
        stack.viewer = "aco"
    assert exported["account_id"] == "jstrachan"
    assert {c["key"] for c in exported["contributions"]} >= {stack.keys[-1]}


VIEWS = {
    "experts": "/jira/panels/experts?issueKey={key}&projectKey=AMQ",
    "reuse": "/jira/panels/reuse?issueKey={key}&projectKey=AMQ",
    "contributors": "/jira/panels/contributors?issueKey={key}&projectKey=AMQ",
    "admin": "/jira/admin?projectKey=AMQ",
    "me": "/jira/me",
    "empty": "/jira/panels/experts?issueKey=AMQ-999999&projectKey=AMQ",
}


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_every_view_has_no_serious_accessibility_violations(audit_page: Any, stack: Stack,
                                                            mode: str) -> None:
    stack.host.set_project_admin("aco", "AMQ")
    stack.mode = mode
    try:
        for name, path in VIEWS.items():
            wide = name in ("admin", "me")
            audit_page.open_view(path.format(key=stack.keys[-1]), width=1040 if wide else 360,
                                 height=1500 if name == "admin" else 800)
            assert run_axe(audit_page) == [], name
            shoot(audit_page, f"{mode}-{name}")
    finally:
        stack.mode = "light"


CONFLUENCE_VIEWS = {
    "macro-experts": "/confluence/macros/experts?pageId={page}&spaceKey=TSC&outputType=display",
    "macro-related": "/confluence/macros/related?pageId={page}&spaceKey=TSC&outputType=display",
    "macro-contributors": "/confluence/macros/contributors?pageId={page}&spaceKey=TSC"
                          "&outputType=display",
    "macro-recognition": "/confluence/macros/recognition?pageId={page}&spaceKey=TSC&scope=site"
                         "&period=month&outputType=display",
    "macro-pdf": "/confluence/macros/related?pageId={page}&spaceKey=TSC&outputType=pdf",
    "byline": "/confluence/byline?pageId={page}",
    "me": "/confluence/me",
}


def test_confluence_views_work_and_pass_axe(audit_page: Any, stack: Stack) -> None:
    stack.product = "confluence"
    try:
        page = stack.page_ids[-1]
        frame = audit_page.open_view(CONFLUENCE_VIEWS["macro-contributors"].format(page=page),
                                     width=700)
        frame.get_by_role("button", name="Thank").first.click()
        frame.get_by_role("button", name="Send thanks").first.click()
        frame.locator(".status", has_text="Thanks sent.").first.wait_for()
        for name, path in CONFLUENCE_VIEWS.items():
            audit_page.open_view(path.format(page=page), width=700, height=900)
            assert run_axe(audit_page) == [], name
            shoot(audit_page, f"confluence-{name}")
    finally:
        stack.product = "jira"
    with stack.db.session() as session:
        kudos = session.scalars(select(Kudos).where(Kudos.source == "confluence")).one()
        assert kudos.item_key == page and kudos.space


def test_an_issue_panel_suggests_the_runbook_page_with_its_reason(host_page: Any,
                                                                  stack: Stack) -> None:
    """One site, both products: a Confluence page about an issue shows on the issue's panel."""
    import copy

    from plugin import search
    from plugin.content.normalize import confluence_page_to_doc
    from plugin.matching import precompute
    from plugin.matching.store import get_item, upsert_item
    from sandbox.site import data

    key, wiki = stack.keys[-2], stack.tenants["confluence"]
    jira_tenant = stack.tenants["jira"].tenant_id
    with stack.db.session() as session:
        issue = get_item(session, jira_tenant, "jira", key)
        page = copy.deepcopy(data.confluence_pages()[0])
        page["id"], page["title"] = "990002", f"Runbook: {issue.title}"
        page["body"]["storage"]["value"] = (f"<p>When this happens: {issue.title}.</p>"
                                            f"<p>{issue.text[:1200]}</p><p>What fixed it for us.</p>")
        stack.host.load_confluence_pages([page])
        upsert_item(session, wiki.tenant_id, confluence_page_to_doc(page, wiki.base_url))
    assert search.catch_up(stack.db)
    with stack.db.session() as session:
        item = get_item(session, jira_tenant, "jira", key)
        precompute.refresh_suggestions(session, jira_tenant, item.id)
    frame = host_page.open_view(f"/jira/panels/reuse?issueKey={key}&projectKey=AMQ")
    row = frame.locator("#reuse li", has_text="Runbook:").first
    row.wait_for()
    assert "Why:" in row.inner_text()
    assert row.locator("mark").count() > 0  # the matched words, marked in its snippet
    shoot(host_page, "jira-reuse-with-confluence-page")
