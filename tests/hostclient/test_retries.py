"""429 and 503 are retried honouring Retry-After; other failures raise HostError."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from connect.host_client import HostClient, HostError
from sandbox.site.server import FakeHost


def test_429_waits_at_least_retry_after_then_succeeds(fake_host: FakeHost,
                                                      jira_client: HostClient) -> None:
    fake_host.inject("/rest/api/3/project/search", 429, times=1, retry_after=1)
    started = time.monotonic()
    response = jira_client.request("GET", "/rest/api/3/project/search")
    waited = time.monotonic() - started
    assert response.status_code == 200
    assert waited >= 1.0
    statuses = [c.status for c in fake_host.calls_to("/rest/api/3/project/search")]
    assert statuses == [429, 200]


def test_retry_after_as_an_http_date_is_honoured(fake_host: FakeHost,
                                                 jira_client: HostClient) -> None:
    when = datetime.now(UTC) + timedelta(seconds=2)
    fake_host.inject("/rest/api/3/project/search", 429, times=1,
                     retry_after=format_datetime(when, usegmt=True))
    jira_client.request("GET", "/rest/api/3/project/search")
    # HTTP dates have whole-second precision, so the wait can be up to a second shorter.
    assert datetime.now(UTC) >= when - timedelta(seconds=1)


def test_503_is_retried_until_the_site_recovers(fake_host: FakeHost,
                                                jira_client: HostClient) -> None:
    fake_host.load_jira_dataset("apache-activemq", limit=3)
    fake_host.inject("/rest/api/3/issue/", 503, times=2)
    assert jira_client.jira().issue("AMQ-29")["key"] == "AMQ-29"
    assert [c.status for c in fake_host.calls_to("/rest/api/3/issue/")] == [503, 503, 200]


def test_every_retry_is_signed_afresh(fake_host: FakeHost, jira_client: HostClient) -> None:
    fake_host.inject("/rest/api/3/project/search", 503, times=1)
    jira_client.request("GET", "/rest/api/3/project/search")
    assert all(c.auth == "jwt" for c in fake_host.calls_to("/rest/api/3/project/search")[1:])


def test_persistent_500_raises_host_error_without_retrying(fake_host: FakeHost,
                                                           jira_client: HostClient) -> None:
    fake_host.inject("/rest/api/3/project/search", 500, times=5)
    with pytest.raises(HostError) as caught:
        jira_client.request("GET", "/rest/api/3/project/search")
    assert caught.value.status == 500 and "Injected 500" in caught.value.body
    assert len(fake_host.calls_to("/rest/api/3/project/search")) == 1


def test_endless_503_gives_up_after_bounded_attempts(fake_host: FakeHost,
                                                     jira_client: HostClient) -> None:
    fake_host.inject("/rest/api/3/project/search", 503, times=50, retry_after=0)
    with pytest.raises(HostError) as caught:
        jira_client.request("GET", "/rest/api/3/project/search")
    assert caught.value.status == 503
    assert len(fake_host.calls_to("/rest/api/3/project/search")) == 4


def test_retry_after_beyond_the_cap_is_not_shortened_but_reported(
        fake_host: FakeHost, jira_client: HostClient) -> None:
    fake_host.inject("/rest/api/3/project/search", 429, times=1, retry_after=3600)
    started = time.monotonic()
    with pytest.raises(HostError) as caught:
        jira_client.request("GET", "/rest/api/3/project/search")
    assert time.monotonic() - started < 5
    assert caught.value.status == 429 and caught.value.retry_after == 3600


def test_not_found_raises_host_error_with_the_body(fake_host: FakeHost,
                                                   jira_client: HostClient) -> None:
    with pytest.raises(HostError) as caught:
        jira_client.jira().issue("NOPE-1")
    assert caught.value.status == 404 and "does not exist" in caught.value.body


def test_a_slow_site_times_out_instead_of_hanging(fake_host: FakeHost) -> None:
    from requests.exceptions import Timeout

    from connect.host_client import HostUnreachable
    from tests.hostclient.conftest import tenant_of

    client = HostClient.for_tenant(tenant_of(fake_host), "io.inflow.app", timeout=(1, 0.5))
    fake_host.inject("/rest/api/3/project/search", 200, times=1, delay=2.0)
    started = time.monotonic()
    with pytest.raises(HostUnreachable) as caught:
        client.request("GET", "/rest/api/3/project/search")
    assert time.monotonic() - started < 1.9
    assert caught.value.status == 0 and isinstance(caught.value.__cause__, Timeout)
