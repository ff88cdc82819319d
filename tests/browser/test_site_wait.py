"""The throttled site on the project admin page, in a real browser inside a host page."""
from __future__ import annotations

from typing import Any

import pytest
from redis import Redis

from jobs import throttle
from tests.browser.conftest import Stack, run_axe, shoot

pytestmark = pytest.mark.browser

ADMIN = "chirino"


def test_a_project_admin_sees_that_jira_is_rate_limiting_inflow(host_page: Any, audit_page: Any,
                                                                 stack: Stack,
                                                                 redis_url: str) -> None:
    stack.host.set_project_admin(ADMIN, "AMQ")
    stack.viewer = ADMIN
    stack.app.config["REDIS_URL"] = redis_url
    connection = Redis.from_url(redis_url)
    throttle.record(connection, stack.tenant.tenant_id, 429, retry_after=600)
    try:
        frame = host_page.open_view("/jira/admin?projectKey=AMQ", width=1040, height=1500)
        banner = frame.locator("#site-wait")
        banner.get_by_text("Jira is rate-limiting Inflow on this site", exact=False).wait_for()
        assert "next try at" in banner.inner_text()  # no count when no event waits
        assert banner.get_attribute("role") == "status"  # read out by screen readers
        shoot(host_page, "jira-admin-throttled")
        audit_page.open_view("/jira/admin?projectKey=AMQ", width=1040, height=1500)
        assert run_axe(audit_page) == []  # the notice keeps the page accessible

        throttle.clear(connection, stack.tenant.tenant_id)  # a batch went through
        frame = host_page.open_view("/jira/admin?projectKey=AMQ", width=1040, height=1500)
        frame.locator("#kpis").wait_for()
        assert frame.locator("#site-wait").count() == 0
    finally:
        stack.viewer = "aco"
        stack.app.config["REDIS_URL"] = None
        connection.close()
