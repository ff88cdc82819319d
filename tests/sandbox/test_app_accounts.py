"""The sandbox serves the ASF's integration accounts as Jira Cloud serves an integration: as apps."""
from __future__ import annotations

from plugin.content.normalize import jira_issue_to_doc
from sandbox.site import data
from sandbox.site.server import FakeHost


def test_commit_notices_and_ci_reports_come_from_app_accounts() -> None:
    host = FakeHost()
    host.load_jira_dataset("apache-zookeeper")
    key = next(k for k, issue in host.store.issues.items()
               if any((c.get("author") or {}).get("accountId") == "hadoopqa"
                      for c in (issue["fields"].get("comment") or {}).get("comments", [])))
    view = host.issue_view(key)
    assert view is not None
    authors = {c["author"]["accountId"]: c["author"]["accountType"] for c in view["fields"]["comment"]["comments"]}
    assert authors["hadoopqa"] == "app"
    assert {kind for account, kind in authors.items() if account not in data.APP_ACCOUNTS} == {"atlassian"}
    credited = {c.account_id for c in jira_issue_to_doc(view, "https://sandbox.test").contributions}
    assert "hadoopqa" not in credited and credited  # the people on the issue still are
