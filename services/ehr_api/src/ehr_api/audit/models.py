"""The audit log table: append-only, hash-chained per organisation.

Rows with `org_id` NULL are platform-level actions (creating or suspending an
organisation, requests that never reached an organisation) and form their own chain.
Each row stores the `hash` of the previous row of the same chain in `prev_hash`; the
unique constraints on `(org_id, prev_hash)` (and on `prev_hash` for the platform chain)
make a fork impossible: two writers appending after the same row cannot both commit, the
loser gets an IntegrityError and retries on the new tail.

On PostgreSQL a trigger rejects UPDATE, DELETE and TRUNCATE and the application role has
only SELECT and INSERT; on SQLite triggers reject UPDATE and DELETE.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Identity, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ehr_api.db.base import Base, BigIdentity, OptionalOrgScopedMixin, text_enum, utcnow

__all__ = ["ActorType", "AuditLog"]


class ActorType(StrEnum):
    USER = "user"
    API_KEY = "api_key"
    SYSTEM = "system"


class AuditLog(OptionalOrgScopedMixin, Base):
    """One recorded access or change. Hot append path: write it with Core, not the ORM."""

    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("ix_audit_logs_org_id_id", "org_id", "id"),
        Index("ix_audit_logs_org_id_occurred_at", "org_id", "occurred_at"),
        UniqueConstraint("org_id", "prev_hash"),
        Index(
            "uq_audit_logs_platform_prev_hash",
            "prev_hash",
            unique=True,
            postgresql_where=text("org_id IS NULL"),
            sqlite_where=text("org_id IS NULL"),
        ),
        {"sqlite_autoincrement": True},
    )
    __org_id_index__ = False  # (org_id, id) leads with org_id

    id: Mapped[int] = mapped_column(BigIdentity, Identity(), primary_key=True, sort_order=-10)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    actor_type: Mapped[ActorType] = mapped_column(text_enum(ActorType, name="actor_type"))
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str | None] = mapped_column(String(64))
    resource_ids: Mapped[list[str]] = mapped_column(default=list)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    client_ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str | None] = mapped_column(String(128))
    hash: Mapped[str] = mapped_column(String(128))
