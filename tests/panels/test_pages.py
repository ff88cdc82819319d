"""Iframe pages: complete on first response, escaped, and Confluence macros degrade in exports."""
from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from markupsafe import escape

from connect.auth import REFUSED_ADVICE
from plugin import search
from plugin.content.normalize import jira_issue_to_doc
from plugin.matching.store import get_item, upsert_item
from tests.panels.conftest import VIEWER, Site

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _hostile_issue(template: dict[str, Any], number: int) -> dict[str, Any]:
    issue = copy.deepcopy(template)
    issue["id"], issue["key"] = str(99000 + number), f"AMQ-{9000 + number}"
    fields = issue["fields"]
    fields["summary"] = f"{HOSTILE} kahadb journal corruption after restart"
    fields["description"] = (f"{HOSTILE} the kahadb journal is corrupt after a broker restart; "
                             "javascript:alert(2) <b>bold</b> & kahadb journal")
    fields["reporter"] = {"accountId": "mallory", "displayName": '<svg onload=alert(3)>Mallory'}
    fields["assignee"] = fields["reporter"]
    fields["comment"] = {"comments": []}
    return issue


@pytest.fixture
def hostile(site: Site, activemq_issues: list[dict[str, Any]]) -> list[str]:
    issues = [_hostile_issue(activemq_issues[0], n) for n in (1, 2)]
    site.host.load_jira_issues(issues)
    with site.db.session() as session:
        for issue in issues:
            upsert_item(session, site.tenant.tenant_id, jira_issue_to_doc(issue, site.tenant.base_url))
    assert search.catch_up(site.db)
    return [issue["key"] for issue in issues]


@pytest.mark.parametrize("panel", ["experts", "reuse", "contributors"])
def test_hostile_issue_text_is_rendered_escaped(site: Site, hostile: list[str], panel: str) -> None:
    response = site.page(f"/jira/panels/{panel}?issueKey={hostile[1]}&projectKey=AMQ",
                         sub="chirino")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<script>alert" not in html and "<img src=x" not in html and "<svg onload" not in html
    if panel == "reuse":
        assert "&lt;script&gt;alert(" in html and hostile[0] in html
    if panel == "contributors":
        assert "&lt;svg onload=alert(3)&gt;Mallory" in html


def test_panels_are_complete_in_the_first_response(site: Site) -> None:
    key = site.keys[-1]
    experts = site.page(f"/jira/panels/experts?issueKey={key}&projectKey=AMQ").get_data(True)
    assert "james strachan" in experts and "Ask</button>" in experts
    assert 'src="https://connect-cdn.atl-paas.net/all.js"' in experts
    reuse = site.page(f"/jira/panels/reuse?issueKey={key}&projectKey=AMQ").get_data(True)
    assert reuse.count(">Helped</button>") == 5 and "Link as duplicate" in reuse
    contributors = site.page(f"/jira/panels/contributors?issueKey={key}").get_data(True)
    # The viewer's impact says nothing while all of it is zero; a kudos makes it worth a line.
    assert "Thank</button>" in contributors and "Your work helped" not in contributors
    assert site.post("/api/kudos", {"source": "jira", "key": key, "to_account_id": VIEWER},
                     sub="jstrachan").status_code == 201
    thanked = site.page(f"/jira/panels/contributors?issueKey={key}").get_data(True)
    assert "Your work helped" in thanked and "<b>1</b> kudos received" in thanked
    # What was answered is said, as on the personal page: not "you answered <b>0</b>".
    assert "<b>0</b> questions answered" in thanked and "you answered" not in thanked
    for html in (experts, reuse, contributors):
        assert len(html.encode()) < 100_000



def test_the_asker_sees_their_question_as_theirs_and_can_accept_the_answer(site: Site) -> None:
    key = site.keys[-1]
    path = f"/jira/panels/experts?issueKey={key}&projectKey=AMQ"
    asked = site.post("/api/questions", {"source": "jira", "key": key, "expert_account_id": "rajdavies",
                                         "text": "Which setting fixes the reconnect?"}).get_json()
    html = site.page(path).get_data(True)
    assert "<b>You</b> asked <b>Rob Davies</b>" in html
    assert f'data-post="/api/questions/{asked["id"]}/accept"' in html  # only the asker accepts
    other = site.page(path, sub="jstrachan").get_data(True)
    assert "<b>Adrian Co</b> asked <b>Rob Davies</b>" in other and "/accept" not in other


def test_the_viewer_reads_you_where_they_were_asked_or_thanked(site: Site) -> None:
    """As their own question reads "You asked": "asked you", "thanked you", not their own name."""
    key = site.keys[-1]
    assert site.post("/api/questions", {"source": "jira", "key": key, "expert_account_id": "rajdavies",
                                        "text": "Which setting fixes the reconnect?"}).status_code == 201
    assert site.post("/api/kudos", {"source": "jira", "key": key, "to_account_id": "rajdavies"}
                     ).status_code == 201
    experts = site.page(f"/jira/panels/experts?issueKey={key}&projectKey=AMQ", sub="rajdavies")
    assert "<b>Adrian Co</b> asked <b>you</b>" in experts.get_data(True)
    thanks = site.page(f"/jira/panels/contributors?issueKey={key}&projectKey=AMQ", sub="rajdavies")
    assert "<b>Adrian Co</b> thanked <b>you</b>" in thanks.get_data(True)
    mine = site.page(f"/jira/panels/contributors?issueKey={key}&projectKey=AMQ").get_data(True)
    assert "<b>You</b> thanked <b>Rob Davies</b>" in mine


def test_the_asker_sees_their_question_on_a_page_as_theirs_and_can_accept_it(wiki: Site) -> None:
    page = wiki.keys[-1]
    [expert, *_] = wiki.get(f"/api/content/confluence/{page}/experts").get_json()["experts"]
    asked = wiki.post("/api/questions", {"source": "confluence", "key": page, "text": "Still so?",
                                         "expert_account_id": expert["account_id"]}).get_json()
    for path in (f"/confluence/byline?pageId={page}",
                 f"/confluence/macros/experts?pageId={page}&spaceKey=TSC&outputType=display"):
        html = wiki.page(path).get_data(True)
        assert f"<b>You</b> asked <b>{escape(expert['display_name'])}</b>" in html, path
        assert f'data-post="/api/questions/{asked["id"]}/accept"' in html, path


def test_an_unknown_issue_explains_why_nothing_is_shown(site: Site) -> None:
    html = site.page("/jira/panels/experts?issueKey=AMQ-424242&projectKey=AMQ").get_data(True)
    assert "has not learned this item yet" in html


def test_a_panel_url_without_a_valid_jwt_is_refused(site: Site) -> None:
    key = site.keys[-1]
    missing = site.client.get(f"/jira/panels/experts?issueKey={key}")
    assert missing.status_code == 401
    wrong_qsh = site.tenant.headers("GET", "/jira/panels/reuse?issueKey=AMQ-1")
    refused = site.client.get(f"/jira/panels/experts?issueKey={key}", headers=wrong_qsh)
    assert refused.status_code == 401
    # Frames opened by a browser get a short HTML page in words, not the verifier's message.
    for response in (missing, refused):
        html = response.get_data(as_text=True)
        assert response.mimetype == "text/html" and escape(REFUSED_ADVICE) in html
        assert '<p role="alert">JWT' not in html


def test_an_expired_panel_says_to_reload_while_the_api_keeps_its_json(site: Site) -> None:
    path = f"/jira/panels/experts?issueKey={site.keys[-1]}&projectKey=AMQ"
    expired = site.client.get(path, headers=site.tenant.headers("GET", path, ttl=-100))
    html = expired.get_data(as_text=True)
    assert (expired.status_code, expired.mimetype) == (401, "text/html")
    assert re.search(r'<p role="alert">This view has expired\. Reload the page to see it '
                     r'again\.</p>', html)
    assert "JWT" not in html  # nothing for an administrator to fix either
    api = site.client.get("/api/me", headers=site.tenant.context_headers(ttl=-100))
    assert (api.status_code, api.get_json()) == (401, {"error": "unauthorized",
                                                       "message": "JWT expired"})


def test_confluence_macros_render_in_view_mode_and_degrade_in_exports(wiki: Site) -> None:
    page = wiki.keys[-1]
    for macro in ("experts", "related", "contributors", "recognition"):
        url = f"/confluence/macros/{macro}?pageId={page}&spaceKey=TSC&outputType=display"
        response = wiki.page(url)
        assert response.status_code == 200, macro
        assert "interactive" not in response.get_data(True)
        pdf = wiki.page(url.replace("display", "pdf")).get_data(True)
        assert "this part of the page is interactive" in pdf and "<button" not in pdf
    export = wiki.page(f"/confluence/macros/export?macro=related&pageId={page}&spaceKey=TSC")
    assert export.status_code == 200
    assert "Related work</strong>: this part of the page is interactive. Open the page in Confluence to use it." \
        in export.get_data(True)
    assert wiki.page(f"/confluence/macros/export?macro=bogus&pageId={page}").status_code == 404


def test_byline_shows_counts_and_opens_the_combined_view(wiki: Site) -> None:
    page = wiki.keys[-1]
    assert wiki.page("/confluence/byline/context").status_code == 400  # as the byline: a page
    title = wiki.page(f"/confluence/byline/context?pageId={page}").get_json()["title"]["value"]
    assert "related" in title and "expert" in title
    html = wiki.page(f"/confluence/byline?pageId={page}").get_data(True)
    for heading in ("Ask an expert", "Related work", "Contributors &amp; kudos"):
        assert heading in html
    # Each section's own lists nest under its heading, as a screen reader's outline reads them.
    assert wiki.post("/api/kudos", {"source": "confluence", "key": page,
                                    "to_account_id": _a_contributor(wiki, page)}).status_code == 201
    outline = re.findall(r"<(h[1-3])>([^<]*)</h[1-3]>",
                         wiki.page(f"/confluence/byline?pageId={page}").get_data(True))
    assert outline == [("h1", "Inflow for this page"), ("h2", "Ask an expert"),
                       ("h3", "Questions on this page"), ("h2", "Related work"),
                       ("h2", "Contributors &amp; kudos"), ("h3", "Thanks given here")]


def _a_contributor(wiki: Site, page: str) -> str:
    return wiki.get(f"/api/content/confluence/{page}/contributors").get_json()["contributors"][0]["account_id"]


def test_thanks_on_a_confluence_page_count_on_the_space_board(wiki: Site) -> None:
    page = wiki.keys[-1]
    contributors = wiki.get(f"/api/content/confluence/{page}/contributors").get_json()
    person = contributors["contributors"][0]["account_id"]
    assert wiki.post("/api/kudos", {"source": "confluence", "key": page,
                                    "to_account_id": person, "message": "great page"},
                     sub="someone-else").status_code == 201
    html = wiki.page(f"/confluence/macros/recognition?pageId={page}&scope=site&period=week"
                     "&outputType=display").get_data(True)
    assert "1 kudos" in html and "Whole site" in html


def test_asking_on_a_confluence_page_posts_a_footer_comment_as_the_user(wiki: Site) -> None:
    page = wiki.keys[-1]
    author = wiki.get(f"/api/content/confluence/{page}/contributors").get_json()[
        "contributors"][0]["account_id"]
    response = wiki.post("/api/questions", {"source": "confluence", "key": page,
                                            "expert_account_id": author,
                                            "text": "Is this page still current?"}, sub="aco")
    assert response.status_code == 201, response.get_json()
    [comment] = wiki.host.comments(page)
    assert comment["version"]["authorId"] == "aco"
    storage = comment["body"]["storage"]["value"]
    assert f'<ri:user ri:account-id="{author}" />' in storage
    assert "Is this page still current?" in storage


def test_the_admin_tab_for_an_unknown_project_is_refused(site: Site) -> None:
    site.host.set_project_admin("chirino", "AMQ")
    response = site.page("/jira/admin?projectKey=NOPE", sub="chirino")
    assert response.status_code == 403
    assert site.get("/api/admin/projects/NOPE/settings", sub="chirino").status_code == 403


def test_a_confluence_site_offers_no_weekly_digest(wiki: Site) -> None:
    page = wiki.page("/confluence/me", sub="aco").get_data(as_text=True)
    assert 'name="weekly_digest"' not in page and 'name="opted_out"' in page
    response = wiki.post("/api/me/preferences", {"opted_out": False, "weekly_digest": True})
    assert response.status_code == 422 and "weekly_digest" in response.get_json()["errors"]
    assert wiki.get("/api/me").get_json()["preferences"]["weekly_digest"] is False


def test_titles_with_ampersands_are_escaped_exactly_once(site: Site,
                                                         activemq_issues: list[dict[str, Any]]
                                                         ) -> None:
    issues = [_hostile_issue(activemq_issues[0], n) for n in (3, 4)]
    for issue in issues:
        issue["fields"]["summary"] = "Roadmap & Planning: kahadb journal corruption after restart"
    site.host.load_jira_issues(issues)
    with site.db.session() as session:
        for issue in issues:
            upsert_item(session, site.tenant.tenant_id, jira_issue_to_doc(issue, site.tenant.base_url))
    assert search.catch_up(site.db)
    html = site.page(f"/jira/panels/reuse?issueKey={issues[1]['key']}&projectKey=AMQ",
                     sub="chirino").get_data(as_text=True)
    assert "Roadmap &amp; Planning" in html and "&amp;amp;" not in html
    data = site.get(f"/api/content/jira/{issues[1]['key']}/reuse", sub="chirino").get_json()
    assert data["item"]["title"].startswith("Roadmap & Planning")  # JSON carries plain text


@pytest.mark.parametrize("panel, key", [
    ("experts", "stored"), ("reuse", "stored"),
    ("experts", "AMQ-424242"), ("reuse", "AMQ-424242"),  # not stored: these panels fetch it
])
def test_a_site_that_cannot_be_reached_gets_an_explanation_not_an_error(site: Site, panel: str,
                                                                        key: str) -> None:
    key = site.keys[-1] if key == "stored" else key
    site.host.stop()  # Jira down or unreachable: no permission check or fetch can be made
    response = site.page(f"/jira/panels/{panel}?issueKey={key}&projectKey=AMQ")
    assert response.status_code == 502
    assert "could not reach Jira" in response.get_data(True)


def test_contributors_of_a_stored_issue_show_while_the_site_cannot_be_reached(site: Site) -> None:
    key = site.keys[-1]
    site.host.stop()  # Jira signed the view; its REST API is what is down
    response = site.page(f"/jira/panels/contributors?issueKey={key}&projectKey=AMQ")
    assert response.status_code == 200 and 'id="contributors"' in response.get_data(True)


def test_confluence_views_explain_a_site_that_cannot_be_reached(wiki: Site) -> None:
    page = wiki.keys[-1]
    wiki.host.stop()
    macro = wiki.page(f"/confluence/macros/experts?pageId={page}&spaceKey=TSC&outputType=display")
    byline = wiki.page(f"/confluence/byline?pageId={page}")
    for response in (macro, byline):
        assert response.status_code == 502
        assert "could not reach" in response.get_data(True)
    # The byline's title has no counts to show, but the byline itself still renders.
    context = wiki.page(f"/confluence/byline/context?pageId={page}")
    assert context.status_code == 200
    assert "expert" not in context.get_json()["title"]["value"]


def test_the_question_offered_on_a_page_names_pages_by_their_titles(wiki: Site) -> None:
    page = wiki.keys[-1]
    html = wiki.page(f"/confluence/macros/experts?pageId={page}&spaceKey=TSC&outputType=display"
                     ).get_data(True)
    texts = re.findall(r'<textarea[^>]*name="text"[^>]*>([^<]*)</textarea>', html)
    assert texts
    for text in texts:
        assert 'Could you help with the page "' in text and page not in text
        named = re.search(r"You worked on similar (issues|pages|issues and pages) \((.*)\)\.", text)
        assert named, text
        # Issues by their keys, pages by their titles: never a bare page id.
        assert not re.search(r"(^|, )\d+(,|$)", named.group(2)), text



def test_feedback_on_a_page_is_labelled_with_its_title_not_its_id(wiki: Site) -> None:
    """A screen reader reads "Feedback on Besu", not "Feedback on 22151173"."""
    page = wiki.stored()
    found = wiki.get(f"/api/content/confluence/{page}/reuse").get_json()["suggestions"]
    html = wiki.page(f"/confluence/macros/related?pageId={page}&spaceKey=TSC&outputType=display"
                     ).get_data(True)
    labels = re.findall(r'role="group" aria-label="Feedback on ([^"]*)"', html)
    assert any(s["source"] == "confluence" for s in found)
    assert labels == [str(escape(s["key"] if s["source"] == "jira" else s["title"]))
                      for s in found]


@pytest.mark.parametrize("panel", ["experts", "reuse"])
def test_someone_not_logged_in_is_asked_to_log_in_not_told_the_item_is_unknown(
        site: Site, panel: str) -> None:
    html = site.page(f"/jira/panels/{panel}?issueKey={site.keys[-1]}&projectKey=AMQ", sub=None
                     ).get_data(True)
    assert "Log in to see who knows about this" in html and "not learned" not in html
    # Questions are shown only to whom may see the issue: "none yet" would not be true.
    assert "No questions asked here yet" not in html and "Questions on this issue" not in html


def test_someone_not_logged_in_is_asked_to_log_in_to_see_the_contributors(site: Site) -> None:
    """Not "Inflow has not recorded anyone's work" on an issue whose work it has recorded."""
    key = site.keys[-1]
    assert "james strachan" in site.page(f"/jira/panels/contributors?issueKey={key}").get_data(True)
    html = site.page(f"/jira/panels/contributors?issueKey={key}&projectKey=AMQ", sub=None
                     ).get_data(True)
    assert "Log in to see who worked on this" in html and "has not recorded" not in html


def test_the_personal_page_does_not_say_a_paused_person_is_suggested(site: Site) -> None:
    assert "<h2>Topics you are suggested for</h2>" in site.page("/jira/me", sub="jstrachan").get_data(True)
    paused = site.post("/api/me/preferences", {"opted_out": False, "pause_days": 7}, sub="jstrachan")
    until = paused.get_json()["paused_until"][:10]
    html = site.page("/jira/me", sub="jstrachan").get_data(True)
    assert f"<h2>Topics you would be suggested for (paused until {until})</h2>" in html


def test_someone_not_logged_in_is_asked_to_log_in_as_atlassian_says_it(site: Site) -> None:
    """"Log in" on every view and refusal, as the panels and Atlassian's pages say it, not "Sign in"."""
    me = site.page("/jira/me", sub=None)
    assert me.status_code == 403 and "Log in to see what Inflow knows about you." in me.get_data(True)
    for refused in (site.get("/api/me", sub=None),
                    site.post("/api/kudos", {"source": "jira", "key": site.keys[-1],
                                             "to_account_id": "jstrachan"}, sub=None)):
        assert refused.status_code == 403 and refused.get_json()["message"].startswith("Log in to ")


def test_a_view_of_the_other_products_descriptor_is_refused(wiki: Site) -> None:
    """Each installation's token opens its own product's modules only."""
    from tests.conftest import install_tenant

    jira = install_tenant(wiki.db, "jira")
    page = wiki.keys[-1]
    assert wiki.page("/jira/panels/experts?issueKey=AMQ-1&projectKey=AMQ").status_code == 403
    assert wiki.page("/jira/me").status_code == 403
    for path in (f"/confluence/byline?pageId={page}", f"/confluence/macros/experts?pageId={page}"):
        assert wiki.client.get(path, headers=jira.headers("GET", path, sub="aco")).status_code == 403
        assert wiki.page(path).status_code == 200  # the Confluence installation's own view


def test_the_pages_space_settings_hold_in_the_byline(wiki: Site) -> None:
    """The byline's URL names the page only; its space's settings (people excluded) still hold."""
    from plugin.services.settings import save_project_settings

    with wiki.db.session() as session:
        spaced = [key for key in wiki.keys
                  if (item := get_item(session, wiki.tenant.tenant_id, "confluence", key)) and item.space]
        page = spaced[-1]
        space = get_item(session, wiki.tenant.tenant_id, "confluence", page).space

    def experts() -> list[str]:
        html = wiki.page(f"/confluence/byline?pageId={page}").get_data(True)
        return re.findall(r'name="expert_account_id" value="([^"]+)"', html)

    first, *_ = experts()
    with wiki.db.session() as session:
        save_project_settings(session, wiki.tenant.tenant_id, space, {"exclude_people": [first]}, "admin")
    assert first not in experts()


def test_a_spaces_group_rule_asks_confluence_for_groups(wiki: Site) -> None:
    """Confluence has its own API for a person's groups (Jira's is not on a Confluence-only site)."""
    from plugin.services.settings import save_project_settings

    with wiki.db.session() as session:
        page = next(key for key in wiki.keys
                    if (item := get_item(session, wiki.tenant.tenant_id, "confluence", key)) and item.space)
        space = get_item(session, wiki.tenant.tenant_id, "confluence", page).space

    def experts() -> list[str]:
        response = wiki.page(f"/confluence/macros/experts?pageId={page}&spaceKey={space}")
        assert response.status_code == 200
        return re.findall(r'name="expert_account_id" value="([^"]+)"', response.get_data(True))

    first, *_ = experts()
    wiki.host.add_to_group(first, "contractors")
    with wiki.db.session() as session:
        save_project_settings(session, wiki.tenant.tenant_id, space, {"exclude_groups": ["contractors"]}, "admin")
    assert first not in experts()
    assert wiki.host.calls_to("/wiki/rest/api/user/memberof", "GET")
    assert not wiki.host.calls_to("/wiki/rest/api/3/user/groups", "GET")


def test_a_purged_page_among_suggestions_is_hidden_not_a_failed_view(wiki: Site) -> None:
    """Confluence answers 404 for a page purged before its event reached Inflow: that page is left
    out; the views around it still answer."""
    from plugin.services.permissions import CACHE

    key = wiki.stored(0)
    shown = [s["key"] for s in wiki.get(f"/api/content/confluence/{key}/reuse").get_json()["suggestions"]
             if s["source"] == "confluence"]
    with wiki.host.lock:
        del wiki.host.store.pages[shown[0]]
    CACHE.clear()  # as the 60 s of an earlier answer run out
    reuse = wiki.get(f"/api/content/confluence/{key}/reuse", sub="aco")
    assert reuse.status_code == 200
    assert shown[0] not in [s["key"] for s in reuse.get_json()["suggestions"]]
    for path in (f"/confluence/macros/related?pageId={key}", f"/confluence/macros/experts?pageId={key}",
                 f"/confluence/byline?pageId={key}"):
        assert wiki.page(path, sub="aco").status_code == 200, path


def _blog_post(wiki: Site, post_id: str) -> dict[str, Any]:
    from sandbox.site import data

    post = copy.deepcopy(data.confluence_pages()[300])
    post["id"] = post_id
    wiki.host.load_confluence_pages([post], kind="blogpost")
    return post


def test_a_blog_post_not_learned_yet_is_read_as_a_blog_post_in_its_space(wiki: Site) -> None:
    from sandbox.site import data

    post = _blog_post(wiki, "880003")
    item = wiki.get("/api/content/confluence/880003/reuse").get_json()["item"]
    space = {s["id"]: s["key"] for s in data.confluence_spaces()}[post["spaceId"]]
    assert item["title"] == post["title"] and item["space"] == space  # its key, not its id


def test_a_question_on_a_blog_post_is_a_comment_on_the_blog_post(wiki: Site) -> None:
    from plugin.content.normalize import confluence_page_to_doc

    post = _blog_post(wiki, "880002")
    with wiki.db.session() as session:
        upsert_item(session, wiki.tenant.tenant_id,
                    confluence_page_to_doc(post, wiki.tenant.base_url, kind="blogpost"))
    author = str(post["authorId"])
    response = wiki.post("/api/questions", {"source": "confluence", "key": "880002",
                                            "expert_account_id": author, "text": "Still true?"}, sub="aco")
    assert response.status_code == 201, response.get_json()
    [sent] = wiki.host.calls_to("/wiki/api/v2/footer-comments", "POST")
    assert sent.json["blogPostId"] == "880002" and "pageId" not in sent.json


def test_an_account_the_site_says_is_an_app_cannot_be_thanked_or_asked(wiki: Site) -> None:
    """Its row stays once Confluence names its type: the API took it for a person to credit."""
    from sqlalchemy import func, select

    from plugin.models.content import Person
    from plugin.models.social import Kudos, Question
    from plugin.services import accounts

    page = wiki.keys[-1]
    bot = wiki.get(f"/api/content/confluence/{page}/contributors").get_json()["contributors"][0]["account_id"]
    with wiki.db.session() as session:  # as the privacy cycle records what Confluence said
        accounts.record(session, wiki.tenant.tenant_id, {bot: ("app", "Automation", None)}, {bot})
    thanked = wiki.post("/api/kudos", {"source": "confluence", "key": page, "to_account_id": bot,
                                       "message": "thanks"}, sub=VIEWER)
    asked = wiki.post("/api/questions", {"source": "confluence", "key": page, "expert_account_id": bot,
                                         "text": "Can you help?"}, sub=VIEWER)
    assert thanked.status_code == 422 and "to_account_id" in thanked.get_json()["errors"]
    assert asked.status_code == 422 and "expert_account_id" in asked.get_json()["errors"]
    assert wiki.host.comments(page) == []
    with wiki.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Kudos)) == 0
        assert session.scalar(select(func.count()).select_from(Question)) == 0
        assert session.scalar(select(Person.account_type).where(Person.account_id == bot)) == "app"


def test_kudos_count_where_the_item_is_not_where_the_client_says(wiki: Site) -> None:
    page = wiki.keys[-1]
    person = wiki.get(f"/api/content/confluence/{page}/contributors").get_json()["contributors"][0]["account_id"]
    made_up = wiki.post("/api/kudos", {"source": "confluence", "key": "77777", "space": "~557058:abc",
                                       "to_account_id": person}, sub="someone-else")
    assert made_up.status_code == 422 and made_up.get_json()["errors"] == {
        "key": ["This site has no such issue or page that Inflow can see."]}
    post = _blog_post(wiki, "880004")  # not learned yet: the site says where it is
    given = wiki.post("/api/kudos", {"source": "confluence", "key": "880004", "space": "~557058:abc",
                                     "to_account_id": person}, sub="someone-else")
    assert given.status_code == 201
    from sqlalchemy import select

    from plugin.models.social import Kudos
    with wiki.db.session() as session:
        stored = session.scalar(select(Kudos.space).where(Kudos.item_key == "880004"))
    assert stored != "~557058:abc" and stored is not None and post["spaceId"] != stored


def test_kudos_on_an_issue_by_its_id_and_by_its_key_are_for_one_issue(site: Site, activemq_issues: list) -> None:
    issue = copy.deepcopy(activemq_issues[0])
    issue["id"], issue["key"] = "99777", "AMQ-9777"
    site.host.load_jira_issues([issue])  # on the site, not learned by Inflow yet
    body = {"source": "jira", "to_account_id": "jstrachan"}
    assert site.post("/api/kudos", {**body, "key": "99777"}, sub="someone-else").status_code == 201
    again = site.post("/api/kudos", {**body, "key": "AMQ-9777"}, sub="someone-else")
    assert again.status_code == 429  # the same issue, already thanked today


def test_page_permissions_are_asked_several_at_a_time(wiki: Site) -> None:
    """Confluence checks one page per call: the checks of a view run side by side, same answers."""
    from connect.host_client import HostClient
    from connect.models import Tenant
    from plugin.services.permissions import TTLCache, answers_to

    with wiki.db.session() as session:
        tenant = session.get(Tenant, wiki.tenant.tenant_id)
        session.expunge(tenant)
    client = HostClient.for_tenant(tenant, wiki.host.app_key)
    refs = {("confluence", key) for key in wiki.keys[:6]}
    wiki.host.deny(VIEWER, sorted(refs)[0][1])  # one page this viewer may not read
    one_by_one = {ref: ok for ref in sorted(refs)
                  for ok in answers_to(client, tenant.id, VIEWER, cache=TTLCache())({ref}).values()}
    assert sorted(one_by_one.values()) == [False] + [True] * 5
    wiki.host.latency = 0.5
    start = len(wiki.host.calls)
    assert answers_to(client, tenant.id, VIEWER, cache=TTLCache())(refs) == one_by_one
    arrived = [c.at for c in wiki.host.calls[start:] if c.path.endswith("/permission/check")]
    assert len(arrived) == 6 and max(arrived) - min(arrived) < 0.5  # all asked before one was answered


def test_an_accepted_answer_on_a_page_counts_on_its_space_board(wiki: Site) -> None:
    with wiki.db.session() as session:
        page = next(key for key in reversed(wiki.keys)
                    if (item := get_item(session, wiki.tenant.tenant_id, "confluence", key)) and item.space)
        space = get_item(session, wiki.tenant.tenant_id, "confluence", page).space
    [expert, *_] = wiki.get(f"/api/content/confluence/{page}/experts").get_json()["experts"]
    asked = wiki.post("/api/questions", {"source": "confluence", "key": page, "text": "Still so?",
                                         "expert_account_id": expert["account_id"]}).get_json()
    assert wiki.post(f"/api/questions/{asked['id']}/accept", {}).status_code == 200
    html = wiki.page(f"/confluence/macros/recognition?pageId={page}&spaceKey={space}&scope=space"
                     "&period=week&outputType=display").get_data(True)
    assert f"Space {space}" in html and "1 kudos" in html


def test_the_byline_title_counts_nothing_its_space_turned_off(wiki: Site) -> None:
    from plugin.services.settings import save_project_settings

    with wiki.db.session() as session:
        page = next(key for key in reversed(wiki.keys)
                    if (item := get_item(session, wiki.tenant.tenant_id, "confluence", key)) and item.space)
        space = get_item(session, wiki.tenant.tenant_id, "confluence", page).space

    def title() -> str:
        return wiki.page(f"/confluence/byline/context?pageId={page}").get_json()["title"]["value"]

    assert title() != "0 experts · 0 related"
    with wiki.db.session() as session:
        save_project_settings(session, wiki.tenant.tenant_id, space,
                              {"panels": {"experts": False, "reuse": False}}, "admin")
    assert title() == "0 experts · 0 related"
    html = wiki.page(f"/confluence/byline?pageId={page}").get_data(True)
    assert 'name="expert_account_id"' not in html and "turned this off" in html


def test_the_pages_space_settings_hold_in_the_json_api_whatever_space_it_names(wiki: Site) -> None:
    """Forge's page panel asks the JSON API with the page alone, as the byline's URL names it."""
    from plugin.services.settings import save_project_settings

    with wiki.db.session() as session:
        page = next(key for key in reversed(wiki.keys)
                    if (item := get_item(session, wiki.tenant.tenant_id, "confluence", key)) and item.space)
        space = get_item(session, wiki.tenant.tenant_id, "confluence", page).space

    def experts(query: str = "") -> list[str]:
        data = wiki.get(f"/api/content/confluence/{page}/experts{query}").get_json()
        return [expert["account_id"] for expert in data["experts"]]

    first, *_ = experts()
    with wiki.db.session() as session:
        save_project_settings(session, wiki.tenant.tenant_id, space,
                              {"exclude_people": [first], "panels": {"reuse": False}}, "admin")
    assert first not in experts() and experts()
    assert first not in experts("?project=ELSEWHERE")  # a client's word does not pick the rules
    assert first not in experts("?project=" + "P" * 256)  # nor reaches the adoption events
    assert wiki.get(f"/api/content/confluence/{page}/reuse?project=ELSEWHERE").get_json()["enabled"] is False
