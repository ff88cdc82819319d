"""The personal page opened from Confluence (confluence:globalPage), in Chromium through Forge Remote."""
from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from connect.models import Tenant
from tests.forge.conftest import ForgeInstall
from tests.forge.test_browser import browser, open_page, served  # noqa: F401

pytestmark = pytest.mark.browser
ACCOUNT = "acc-wiki"


def test_the_personal_page_works_in_confluence_without_the_jira_only_digest(
        browser: Any, served: str, full_app: Flask, forge_confluence: ForgeInstall) -> None:  # noqa: F811
    from plugin.pipeline.digests import is_subscribed
    from plugin.services.settings import preference

    token = forge_confluence.token(principal=ACCOUNT, context={
        "cloudId": forge_confluence.cloud_id, "moduleKey": "inflow-personal-page",
        "siteUrl": "https://wiki-site.atlassian.net"})
    page = open_page(browser, served, "personal-settings", token,
                     {"moduleKey": "inflow-personal-page",
                      "extension": {"type": "confluence:globalPage"}})
    saved: list[Any] = []
    page.on("request", lambda r: saved.append(r.post_data_json)
            if r.url.endswith("/api/me/preferences") else None)
    page.get_by_role("button", name="Download my data").click()  # nothing of Jira is needed
    page.get_by_role("link", name="inflow-my-data.json").wait_for()
    # Digests are sent through Jira: a Confluence site refuses them (422), so none is offered.
    assert page.get_by_label("Send me a weekly digest", exact=False).count() == 0
    page.get_by_label("Do not suggest me as an expert").check()
    page.get_by_role("button", name="Save preferences").click()
    page.get_by_text("Saved: you will not be suggested.").wait_for()
    assert saved == [{"opted_out": True, "pause_days": None}]  # the digest is left as it is
    with full_app.extensions["inflow.db"].session() as session:
        tenant = session.scalar(select(Tenant).where(
            Tenant.forge_installation_id == forge_confluence.installation_id))
        assert tenant.product_type == "confluence"
        assert preference(session, tenant.id, ACCOUNT).opted_out is True
        assert not is_subscribed(session, tenant.id, ACCOUNT)

