"""Normalisation: ADF, wiki markup and storage XHTML become bounded plain text; hostile markup never survives."""
from __future__ import annotations

import sys

from plugin.content.normalize import (
    adf_to_text,
    confluence_page_to_doc,
    jira_issue_to_doc,
    storage_to_text,
    wiki_to_text,
)
from sandbox import datasets

ADF = {"type": "doc", "version": 1, "content": [
    {"type": "paragraph", "content": [
        {"type": "text", "text": "Ping "},
        {"type": "mention", "attrs": {"id": "acc-1", "text": "@Ada Lovelace"}},
        {"type": "text", "text": " about the ", "marks": [{"type": "strong"}]},
        {"type": "text", "text": "docs", "marks": [{"type": "link", "attrs": {"href": "javascript:alert(1)"}}]},
    ]},
    {"type": "codeBlock", "attrs": {"language": "java"}, "content": [{"type": "text", "text": "int x = 1;"}]},
    {"type": "paragraph", "content": [{"type": "inlineCard", "attrs": {"url": "https://example.com/a"}}]},
]}


def test_adf_keeps_text_mentions_code_and_card_urls_but_not_link_targets() -> None:
    text = adf_to_text(ADF)
    assert "Ping @Ada Lovelace about the docs" in text
    assert "int x = 1;" in text and "https://example.com/a" in text
    assert "javascript" not in text


def test_deeply_nested_adf_is_walked_without_recursion() -> None:
    node: dict = {"type": "text", "text": "bottom"}
    for _ in range(10_000):
        node = {"type": "blockquote", "content": [node]}
    assert sys.getrecursionlimit() < 10_000
    assert adf_to_text({"type": "doc", "content": [node]}) == "bottom"


def test_wiki_markup_is_reduced_to_text() -> None:
    text = wiki_to_text("h1. Crash\n*bold* _it_ {{code}} [docs|https://x.test] [~bob]\n{code:java}a();{code}")
    assert text.startswith("Crash")
    for part in ("bold", "it", "code", "docs https://x.test", "@bob", "a();"):
        assert part in text
    assert "{code" not in text and "h1." not in text


def test_hostile_html_loses_scripts_handlers_and_javascript_urls() -> None:
    html = ('<p onclick="steal()">Hello <a href="javascript:alert(1)">there</a></p>'
            '<script>alert("x")</script><style>p{}</style><img src=x onerror="boom()">'
            '<iframe src="https://evil.test">inner</iframe>&lt;b&gt;')
    text = storage_to_text(html)
    assert "Hello there" in text
    for bad in ("alert", "steal", "boom", "javascript", "onerror", "inner", "<script"):
        assert bad not in text
    assert "<b>" in text  # an entity is text, and stays text: it is never rendered


def test_one_mebibyte_of_text_is_capped() -> None:
    text = storage_to_text("<p>" + "word " * 210_000 + "</p>")
    assert 0 < len(text) <= 100_000
    assert len(wiki_to_text("x" * (1 << 20))) <= 100_000


def test_jira_v2_issue_with_comments_becomes_item_doc() -> None:
    issue = next(i for i in datasets.jira_issues("apache-zookeeper") if i["key"] == "ZOOKEEPER-8")
    doc = jira_issue_to_doc(issue, "https://site.test")
    assert doc.source == "jira" and doc.key == "ZOOKEEPER-8" and doc.kind == "issue"
    assert doc.url == "https://site.test/browse/ZOOKEEPER-8" and doc.project == "ZOOKEEPER"
    assert doc.components == ["c client", "java client"] and doc.resolution == "Fixed"
    roles = {(c.account_id, c.role) for c in doc.contributions}
    assert {("phunt", "reporter"), ("phunt", "assignee"), ("mahadev", "commenter")} <= roles
    assert doc.comments and "preleminary patch" in doc.comments[0]


def test_apps_and_portal_customers_are_not_credited_but_their_words_are_kept() -> None:
    bot = {"accountId": "557058:automation", "displayName": "Automation for Jira", "accountType": "app"}
    customer = {"accountId": "qm:customer-1", "displayName": "A customer", "accountType": "customer"}
    agent = {"accountId": "agent-1", "displayName": "Agent", "accountType": "atlassian"}
    issue = {"id": "1", "key": "HELP-1", "fields": {
        "summary": "VPN drops", "reporter": customer, "creator": agent, "assignee": bot,
        "resolution": {"name": "Done"}, "resolutiondate": "2024-01-02T00:00:00.000+0000",
        "created": "2024-01-01T00:00:00.000+0000", "comment": {"comments": [
            {"author": bot, "body": "Auto-closed after 5 days without reply",
             "created": "2024-01-02T00:00:00.000+0000"},
            {"author": agent, "body": "Reopened", "created": "2024-01-03T00:00:00.000+0000"}]}}}
    doc = jira_issue_to_doc(issue, "https://site.test")
    assert {(c.account_id, c.role) for c in doc.contributions} == {("agent-1", "reporter"), ("agent-1", "commenter")}
    assert doc.comments == ["Auto-closed after 5 days without reply", "Reopened"]


def test_jira_v3_adf_issue_and_links() -> None:
    issue = {"id": "10001", "key": "APP-7", "fields": {
        "summary": "Login fails", "description": ADF, "created": "2024-01-02T03:04:05.000+0000",
        "updated": "2024-01-03T03:04:05.000Z", "status": {"name": "Done"},
        "resolution": {"name": "Done"}, "resolutiondate": "2024-01-03T03:04:05.000+0000",
        "assignee": {"accountId": "acc-2", "displayName": "Grace"},
        "issuelinks": [{"outwardIssue": {"key": "APP-1"}}],
        "comment": {"comments": [{"author": {"accountId": "acc-3"}, "created": "2024-01-02T05:00:00Z",
                                  "body": ADF}]}}}
    doc = jira_issue_to_doc(issue, "https://site.test/")
    assert "@Ada Lovelace" in doc.text and doc.links == ["APP-1"]
    assert ("acc-2", "resolver") in {(c.account_id, c.role) for c in doc.contributions}
    assert doc.created.tzinfo is not None and doc.updated > doc.created


def test_confluence_page_with_creator_editor_and_comments() -> None:
    page = datasets.confluence_pages()[0]
    comment = {"body": {"storage": {"value": "<p>Thanks <script>x()</script>!</p>"}},
               "version": {"authorId": "acc-9", "createdAt": "2024-10-04T00:00:00.000Z"}}
    doc = confluence_page_to_doc(page, "https://site.test", space_key="BESU", comments=[comment])
    assert doc.source == "confluence" and doc.key == page["id"] and doc.space == "BESU"
    assert doc.title == page["title"] and doc.text
    assert doc.url == f"https://site.test/wiki{page['_links']['webui']}"
    roles = {c.role for c in doc.contributions}
    assert {"creator", "editor", "commenter"} <= roles
    assert doc.comments == ["Thanks !"]


def test_entity_escaped_confluence_titles_are_stored_as_plain_text() -> None:
    page = {"id": "7", "title": "Besu Roadmap &amp; Planning <b>", "spaceId": "1",
            "authorId": "a", "version": {"authorId": "a", "createdAt": "2024-01-01T00:00:00Z"},
            "body": {"storage": {"value": "<p>x</p>"}}}
    assert confluence_page_to_doc(page, "https://site.test").title == "Besu Roadmap & Planning <b>"
