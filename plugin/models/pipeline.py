"""Pipeline bookkeeping: item versions, backfill checkpoints, watermarks, privacy, digests."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from connect.db import Base, UTCDateTime, utcnow


class ItemVersion(Base):
    """The newest version applied to one item (ms), so stale or repeated events change nothing."""

    __tablename__ = "item_versions"
    __table_args__ = (UniqueConstraint("tenant_id", "source", "key", name="uq_item_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(255))
    version_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    # A tombstone: deleted at version_ms; only a strictly newer version brings the item back.
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BackfillState(Base):
    """One tenant's backfill: status, resumable checkpoint, progress, errors and the run lease."""

    __tablename__ = "backfill_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|failed
    checkpoint: Mapped[dict] = mapped_column(JSON, default=dict)
    items_done: Mapped[int] = mapped_column(Integer, default=0)
    items_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    resumed_from_checkpoint: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list] = mapped_column(JSON, default=list)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Watermark(Base):
    """How far reconciliation has caught up with a tenant's product; advances only on success."""

    __tablename__ = "watermarks"
    __table_args__ = (UniqueConstraint("tenant_id", "source", name="uq_watermark"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    value: Mapped[datetime] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class PrivacyCycle(Base):
    """When a tenant's personal-data report runs next, as the host's Cycle-Period asks."""

    __tablename__ = "privacy_cycles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    period_seconds: Mapped[int] = mapped_column(Integer, default=7 * 24 * 3600)
    accounts_reported: Mapped[int] = mapped_column(Integer, default=0)
    accounts_closed: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class DigestDelivery(Base):
    """One weekly digest sent to one person: the row makes delivery idempotent per week."""

    __tablename__ = "digest_deliveries"
    __table_args__ = (UniqueConstraint("tenant_id", "account_id", "week_start", name="uq_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(String(128))
    week_start: Mapped[date] = mapped_column(Date)
    issue_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="sending")  # sending|sent|skipped
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DigestSubscription(Base):
    """A person who opted in to the weekly recognition digest (nobody gets one otherwise)."""

    __tablename__ = "digest_subscriptions"
    __table_args__ = (UniqueConstraint("tenant_id", "account_id", name="uq_digest_subscription"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
