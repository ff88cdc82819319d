"""The admin page says when the site is throttling Inflow, how many events wait, and until when."""
from __future__ import annotations

import re
from typing import Any

from redis import Redis
from sqlalchemy import update

from connect.models import WebhookEvent
from jobs import throttle
from tests.panels.conftest import Site
from tests.pipeline.conftest import v2_issue
from tests.pipeline.test_events import T_A, jira_time, ms, snapshot, store_events

ADMIN = "chirino"
PAGE = "/jira/admin?projectKey=AMQ"


def _store_two_events(site: Any) -> None:
    issue = v2_issue("AMQ-9001", 99001, "Broker stalls", jira_time(T_A))
    store_events(site, site.tenant.tenant_id, "jira",
                 [("jira:issue_updated", {"issue": snapshot(issue, f"Broker stalls {n}", T_A)},
                   ms(T_A) + n) for n in range(2)])


def test_the_admin_page_shows_the_throttled_site_and_its_waiting_events(
    site: Site, redis_url: str
) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")
    site.app.config["REDIS_URL"] = redis_url
    with site.db.session() as session:  # the seeded events are all applied
        session.execute(update(WebhookEvent).values(processed_at=WebhookEvent.received_at))
    assert 'id="site-wait"' not in site.page(PAGE, sub=ADMIN).get_data(as_text=True)

    _store_two_events(site)
    connection = Redis.from_url(redis_url)
    throttle.record(connection, site.tenant.tenant_id, 429, retry_after=120)

    html = site.page(PAGE, sub=ADMIN).get_data(as_text=True)
    shown = re.search(r'<p class="card" id="site-wait"[^>]*>(.*?)</p>', html, re.S)
    assert shown, html[:2000]
    text = re.sub(r"<[^>]+>", "", shown.group(1))
    assert "Jira is rate-limiting Inflow on this site; 2 events waiting, next try at" in text
    assert re.search(r"next try at \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)

    throttle.clear(connection, site.tenant.tenant_id)  # a batch went through
    assert 'id="site-wait"' not in site.page(PAGE, sub=ADMIN).get_data(as_text=True)
    connection.close()
