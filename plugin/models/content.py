"""Content storage: items (issues, pages), who contributed to them, people, and index bookkeeping."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from connect.db import Base, UTCDateTime, utcnow


class Item(Base):
    """One Jira issue or Confluence page/blog post, normalised to text, with its term vector."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "key", name="uq_items_tenant_source_key"),
        Index("ix_items_tenant_seq", "tenant_id", "index_seq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))  # jira | confluence
    key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # issue | page | blogpost
    title: Mapped[str] = mapped_column(String(1000), default="")
    project: Mapped[str | None] = mapped_column(String(255), nullable=True)
    space: Mapped[str | None] = mapped_column(String(255), nullable=True)
    labels: Mapped[list] = mapped_column(JSON, default=list)
    components: Mapped[list] = mapped_column(JSON, default=list)
    links: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str | None] = mapped_column(String(255), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(255), nullable=True)
    url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)
    helpful_count: Mapped[int] = mapped_column(Integer, default=0)
    not_relevant_count: Mapped[int] = mapped_column(Integer, default=0)
    # The tenant's change sequence at this item's last change; caches sync on it.
    index_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    indexed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The big columns come last: SQLite walks a row's overflow pages to reach later columns, so
    # ranking reads (titles, urls, status of 40 neighbours) stay cheap when bodies are long.
    text: Mapped[str] = mapped_column(Text, default="")
    comments_text: Mapped[str] = mapped_column(Text, default="")
    # Compact term vector {"field": {"term": tf}} so every process can rebuild its index cache.
    terms: Mapped[dict] = mapped_column(JSON, default=dict, deferred=True)


class Contribution(Base):
    """Someone's part in an item (assignee, commenter, editor, ...), the raw material of expertise.

    No foreign keys: PostgreSQL's checks of them cost about 6 s of server CPU per 100,000 items
    stored. Only `plugin.matching.store` writes these rows, for items of the tenant under its
    sequence lock, and deletes them with their item (migration 842b01e0df27 says more).
    """

    __tablename__ = "contributions"
    __table_args__ = (
        Index("ix_contributions_item", "item_id"),
        Index("ix_contributions_tenant_account", "tenant_id", "account_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[int] = mapped_column(Integer)
    account_id: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Person(Base):
    """A person known in a tenant, as the host last showed them."""

    __tablename__ = "people"
    __table_args__ = (UniqueConstraint("tenant_id", "account_id", name="uq_people_tenant_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    avatar_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)


class IndexState(Base):
    """Per-tenant change sequence: bumped (row-locked) by every index change, so commit order = seq order."""

    __tablename__ = "index_state"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class IndexTombstone(Base):
    """A deleted item, so process caches drop it on their next sync."""

    __tablename__ = "index_tombstones"
    __table_args__ = (Index("ix_index_tombstones_tenant_seq", "tenant_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(BigInteger)


class IndexSnapshot(Base):
    """A tenant's whole index cache as compact arrays at one change sequence.

    A fresh process loads it and then applies only the changes after `seq` (items re-announced,
    tombstones), instead of rebuilding every term vector; any process may replace it with a newer one.
    """

    __tablename__ = "index_snapshots"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    items: Mapped[int] = mapped_column(Integer)
    format: Mapped[int] = mapped_column(Integer)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StoredSuggestion(Base):
    """Precomputed top candidates for an item (reuse or experts), served by panels without a query."""

    __tablename__ = "stored_suggestions"
    # By item too: deleting an item cascades here, and without it each deletion scanned the table.
    __table_args__ = (UniqueConstraint("tenant_id", "item_id", "kind", name="uq_stored_suggestion"),
                      Index("ix_stored_suggestions_item", "item_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # reuse | experts
    payload: Mapped[list] = mapped_column(JSON, default=list)
    index_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
