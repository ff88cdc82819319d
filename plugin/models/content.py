"""Content storage: items (issues, pages), who contributed to them, people, and index bookkeeping."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
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
    # The tenant's change sequence at this item's last change; the search engine follows it.
    index_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    indexed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The title's meaning as 256 signed bytes (`plugin.matching.semantic`), read for every candidate.
    title_vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    # The big columns come last: SQLite walks a row's overflow pages to reach later columns, so
    # ranking reads (titles, urls, status of 40 neighbours) stay cheap when bodies are long.
    text: Mapped[str] = mapped_column(Text, default="")
    comments_text: Mapped[str] = mapped_column(Text, default="")
    # Compact term vector {"field": {"term": tf}}: what the search engine indexes and reasons name.
    terms: Mapped[dict] = mapped_column(JSON, default=dict, deferred=True)
    # The same vector packed for ranking (`plugin.matching.packed`), written with it.
    packed_terms: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)


# PostgreSQL keeps the packed vector in the row: ranking reads it for hundreds of candidates,
# and each value moved out of line would cost a lookup in the TOAST table (texts go there first).
KEEP_PACKED_TERMS_IN_ROW = "ALTER TABLE items ALTER COLUMN packed_terms SET STORAGE MAIN"
# The title vector too, read for the same candidates: a long packed vector would push it out first.
KEEP_TITLE_VECTOR_IN_ROW = "ALTER TABLE items ALTER COLUMN title_vector SET STORAGE MAIN"
event.listen(Item.__table__, "after_create", DDL(KEEP_PACKED_TERMS_IN_ROW).execute_if(dialect="postgresql"))
event.listen(Item.__table__, "after_create", DDL(KEEP_TITLE_VECTOR_IN_ROW).execute_if(dialect="postgresql"))


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
    __table_args__ = (
        UniqueConstraint("tenant_id", "account_id", name="uq_people_tenant_account"),
        # Few people of a site are deactivated: every experts view reads them through this.
        Index("ix_people_inactive", "tenant_id", sqlite_where=text("active = 0"),
              postgresql_where=text("active = false")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    avatar_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    # The host's `active` as last seen (a deactivated account is never suggested); None: not shown yet.
    active: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # The host's `accountType` ("atlassian", "app", "customer"), asked of Confluence, whose pages
    # name accounts by id only; "": asked, the site did not say; None: not asked (Jira's payloads
    # say it, and apps are left out as they are read).
    account_type: Mapped[str | None] = mapped_column(String(16), nullable=True)


class Erasure(Base):
    """Someone who erased their data (or whose account closed) in a tenant, and when.

    What the host still shows of their work before that moment is never learned again: an
    edit by someone else re-reads an old issue they had commented on. Work after it is new.
    """

    __tablename__ = "erasures"
    __table_args__ = (UniqueConstraint("tenant_id", "account_id", name="uq_erasures_tenant_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(String(255))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IndexState(Base):
    """Per-tenant change sequence: bumped (row-locked) by every index change, so commit order = seq order."""

    __tablename__ = "index_state"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class IndexTombstone(Base):
    """A deleted item, until the search engine has dropped it too."""

    __tablename__ = "index_tombstones"
    __table_args__ = (Index("ix_index_tombstones_tenant_seq", "tenant_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(BigInteger)


class IndexProgress(Base):
    """Where a tenant's documents live in the search engine, and how far they follow the database.

    `shard` is the index that holds the tenant; `site` the key its documents are indexed under;
    `index_id` the identity of that index when it last applied the tenant's changes (another
    identity, or none, means the tenant must be indexed there from scratch); `seq` the tenant's
    change sequence applied so far: every item
    with `index_seq` up to it is in the index and every tombstone up to it is applied.
    """

    __tablename__ = "index_progress"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    shard: Mapped[str] = mapped_column(String(32))
    index_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=-1)
    # The site key its documents carry (`plugin.search.sites`): shared with the other product's
    # installation on the same site, so each finds the other's content.
    site: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


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
