"""Links people follow from Inflow's panels open the demo's view, not the REST API's 401."""
from __future__ import annotations

import requests

from sandbox.site.server import FakeHost


def _get(host: FakeHost, path: str) -> requests.Response:
    return requests.get(host.url + path, allow_redirects=False, timeout=5)


def test_issue_and_page_links_lead_to_the_demo_views(fake_host: FakeHost) -> None:
    fake_host.viewer_url = "http://localhost:8000/demo"
    issue = _get(fake_host, "/browse/AMQ-7024")
    assert issue.status_code == 302 and issue.headers["Location"] == "http://localhost:8000/demo?issue=AMQ-7024"
    page = _get(fake_host, "/wiki/spaces/TSC/pages/21445603/Archive+(Dev)")
    assert page.status_code == 302 and page.headers["Location"] == "http://localhost:8000/demo/page?page=21445603"
    assert _get(fake_host, "/rest/api/3/issue/AMQ-7024").status_code == 401  # the API still wants auth


def test_without_the_demo_the_links_say_where_to_look(fake_host: FakeHost) -> None:
    response = _get(fake_host, "/browse/AMQ-7024")
    assert response.status_code == 404 and "make demo" in response.text
