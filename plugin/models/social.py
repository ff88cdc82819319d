"""Social storage: project settings, questions to experts, feedback, kudos, preferences, adoption."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from connect.db import Base, UTCDateTime, utcnow


class ProjectSettings(Base):
    """An admin's settings for one Jira project (validated JSON; defaults fill the gaps)."""

    __tablename__ = "project_settings"
    __table_args__ = (UniqueConstraint("tenant_id", "project_key", name="uq_project_settings"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    project_key: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Question(Base):
    """A question put to an expert on an item: asked → answered → accepted, or passed on."""

    __tablename__ = "questions"
    __table_args__ = (
        Index("ix_questions_item", "tenant_id", "source", "item_key"),
        Index("ix_questions_due", "state", "follow_up_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    item_key: Mapped[str] = mapped_column(String(255))
    project: Mapped[str | None] = mapped_column(String(255), nullable=True)
    asker_account_id: Mapped[str] = mapped_column(String(128))
    expert_account_id: Mapped[str] = mapped_column(String(128))
    # Who to pass the question to when the current expert does not answer, in order.
    next_experts: Mapped[list] = mapped_column(JSON, default=list)
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="asked")  # asked|answered|accepted|unanswered
    comment_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    follow_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class QuestionEvent(Base):
    """One step in a question's life (asked, reminded, passed, answered, accepted)."""

    __tablename__ = "question_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Feedback(Base):
    """A viewer's verdict on one suggestion shown for an item; one per viewer, item and target."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "item_key", "target_item_id", "account_id",
                         name="uq_feedback_once"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    item_key: Mapped[str] = mapped_column(String(255))
    target_item_id: Mapped[int] = mapped_column(Integer)
    account_id: Mapped[str] = mapped_column(String(128))
    verdict: Mapped[str] = mapped_column(String(16))  # helped | not_relevant
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Kudos(Base):
    """Recognition from one person to another for an item: a thank-you, a helpful answer or reuse."""

    __tablename__ = "kudos"
    __table_args__ = (
        Index("ix_kudos_to", "tenant_id", "to_account_id", "created_at"),
        Index("ix_kudos_from", "tenant_id", "from_account_id", "created_at"),
        Index("ix_kudos_item", "tenant_id", "source", "item_key"),  # each contributors panel
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    item_key: Mapped[str] = mapped_column(String(255))
    space: Mapped[str | None] = mapped_column(String(255), nullable=True)
    from_account_id: Mapped[str] = mapped_column(String(128))
    to_account_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default="thanks")  # thanks | helped | answer
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PersonPreference(Base):
    """A person's own choices: not to be suggested, or a pause until a date."""

    __tablename__ = "person_preferences"
    __table_args__ = (UniqueConstraint("tenant_id", "account_id", name="uq_person_preference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(String(128))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PanelEvent(Base):
    """Adoption metric: a suggestion was shown, used (helped, asked, linked) or clicked."""

    __tablename__ = "panel_events"
    __table_args__ = (Index("ix_panel_events_project", "tenant_id", "project", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    panel: Mapped[str] = mapped_column(String(16))  # experts | reuse | contributors
    kind: Mapped[str] = mapped_column(String(16))  # shown | used | clicked
    source: Mapped[str] = mapped_column(String(16))
    item_key: Mapped[str] = mapped_column(String(255))
    project: Mapped[str | None] = mapped_column(String(255), nullable=True)
    account_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    target: Mapped[str | None] = mapped_column(String(255), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
