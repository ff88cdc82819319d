"""A panel view records its adoption events without waiting for the database's write lock."""
from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import make_url

from plugin.services.panel_cache import EVENTS
from tests.panels.conftest import Site


def test_a_first_view_answers_while_a_worker_holds_the_write_lock(site: Site) -> None:
    key = site.keys[-1]
    assert site.get(f"/api/content/jira/{key}/reuse").status_code == 200  # people and items read once
    EVENTS.flush()
    before = site.views("experts")
    holder = sqlite3.connect(make_url(site.db.url).database, isolation_level=None)
    with ThreadPoolExecutor(1) as pool:
        holder.execute("BEGIN IMMEDIATE")  # as a drain's batch holds it while it stores items
        try:
            # Uncached (another panel): it renders, and a write in its transaction would wait here.
            response = pool.submit(site.get, f"/api/content/jira/{key}/experts").result(timeout=10)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    assert response.status_code == 200 and response.get_json()["experts"]
    EVENTS.flush()  # the buffer writes within a second; a test need not wait for it
    assert site.views("experts") == before + 1
