"""Host-protocol storage: installed tenants and the raw webhook events they send."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from connect.db import Base, UTCDateTime, utcnow


class Tenant(Base):
    """One installation of the app in one product (a Jira or a Confluence site), or a Forge install."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_key: Mapped[str] = mapped_column(String(255), unique=True)
    shared_secret: Mapped[str] = mapped_column(String(512))
    base_url: Mapped[str] = mapped_column(String(512))
    display_url: Mapped[str | None] = mapped_column(String(512), nullable=True)
    product_type: Mapped[str] = mapped_column(String(32))  # jira | confluence
    oauth_client_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    cloud_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    forge_installation_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    host: Mapped[str] = mapped_column(String(16), default="connect")  # connect | forge
    # Forge hands product tokens out only with each call; the latest system token is kept so
    # background jobs (pipeline, backfill, follow-ups) can call the product between calls.
    forge_api_base_url: Mapped[str | None] = mapped_column(String(512), nullable=True)
    forge_system_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    forge_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Forge sends no uninstall event: product calls refused since this time (None: not refused)
    # and how many checks in a row were refused; enough of them mark the tenant uninstalled.
    forge_refused_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    forge_refusals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    installed: Mapped[bool] = mapped_column(Boolean, default=True)
    uninstalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WebhookEvent(Base):
    """A raw event as the host sent it: the truth the pipeline (outbox relay) works from."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_key", name="uq_webhook_event_key"),
        Index("ix_webhook_events_pending", "processed_at", "id"),
        Index("ix_webhook_events_item", "tenant_id", "item_ref", "event_ts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(128))
    product: Mapped[str] = mapped_column(String(32))
    item_ref: Mapped[str | None] = mapped_column(String(255), nullable=True)
    event_ts: Mapped[int] = mapped_column(BigInteger, default=0)  # host timestamp, ms
    payload: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
