"""Every storage model, imported so one metadata (and Alembic) sees all tables."""
from __future__ import annotations

from connect.models import Tenant, WebhookEvent  # noqa: F401
from plugin.models import content, pipeline, social  # noqa: F401
