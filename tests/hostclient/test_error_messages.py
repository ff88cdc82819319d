"""What the host client makes of a host's answers."""
from __future__ import annotations

import pytest

from connect.host_client import HostError


@pytest.mark.parametrize("body, said", [
    ('{"errorMessages": ["Comment body is too long"], "errors": {"body": "too long"}}',
     ["Comment body is too long", "body: too long"]),  # Jira
    ('{"errors": [{"status": 400, "code": "INVALID", "title": "pageId must be a number"}]}',
     ["pageId must be a number"]),  # Confluence REST v2
    ('{"statusCode": 400, "message": "Bad representation"}', ["Bad representation"]),  # v1
    ("<html>Bad gateway</html>", []),
])
def test_a_host_error_says_what_the_host_said(body: str, said: list[str]) -> None:
    assert HostError(400, body).messages() == said
