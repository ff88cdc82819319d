"""Search jobs: rankings asked by machines that do not hold the site's shard."""
from __future__ import annotations

from typing import Any

from jobs.core import database
from plugin.matching.query import Target
from plugin.matching.ranking import answer


def rank(tenant_id: int, target: dict[str, Any], k: int) -> dict[str, Any] | None:
    """The target's ranking on this machine's shard (None when the site is not indexed here)."""
    with database().session() as session:
        return answer(session, tenant_id, Target(**target), k)
