"""The event log: the outbox every change writes in its own transaction.

Consumers (Socket.IO, webhooks) read forward by `id`. Ids are monotonic per database
(PostgreSQL identity; SQLite AUTOINCREMENT, which never reuses an id), but on PostgreSQL a
transaction that took a lower id may commit after one that took a higher id, so a reader
that remembers "last id seen" must re-read a short window behind it (or wait for older
in-flight transactions) rather than assume ids appear in commit order.

The table is append-only for the application role (SELECT, INSERT).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Identity, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from ehr_api.db.base import Base, BigIdentity, OrgScopedMixin, utcnow

__all__ = ["EventLog"]


class EventLog(OrgScopedMixin, Base):
    """One event (`report.final`, `patient.updated`, ...). Hot path: insert with Core."""

    __tablename__ = "event_log"
    __table_args__ = (
        Index("ix_event_log_org_id_id", "org_id", "id"),
        {"sqlite_autoincrement": True},
    )
    __org_id_index__ = False  # (org_id, id) leads with org_id

    id: Mapped[int] = mapped_column(BigIdentity, Identity(), primary_key=True, sort_order=-10)
    event_type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    message_type: Mapped[str | None] = mapped_column(String(32))
    control_id: Mapped[str | None] = mapped_column(String(255))
    resource_type: Mapped[str | None] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
