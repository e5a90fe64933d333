"""Queries on `audit_logs` (reads only: appends go through `writer.py`).

Every function takes `org_id` and filters on it; the org session (and row-level security
on PostgreSQL) would add the same filter, but a query that names its chain reads right on
its own. `org_id=None` selects the platform chain, which only a platform session sees.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, String, cast, exists, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from ehr_api.audit.models import AuditLog

__all__ = ["AuditFilter", "chain_batch", "list_page"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditFilter:
    """What `GET /api/audit` narrows by; every field is optional."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    action: str | None = None
    outcome: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None


def _chain(org_id: uuid.UUID | None) -> ColumnElement[bool]:
    return AuditLog.org_id.is_(None) if org_id is None else AuditLog.org_id == org_id


def _has_resource_id(db: AsyncSession, resource_id: str) -> ColumnElement[bool]:
    if db.get_bind().dialect.name == "postgresql":
        return cast(AuditLog.resource_ids, JSONB).contains(literal([resource_id], JSONB))
    entries = func.json_each(AuditLog.resource_ids).table_valued("value")
    return exists(
        select(1).select_from(entries).where(cast(entries.c.value, String) == resource_id)
    )


async def list_page(
    db: AsyncSession,
    *,
    org_id: uuid.UUID | None,
    where: AuditFilter,
    before_id: int | None,
    limit: int,
) -> Sequence[AuditLog]:
    """Up to `limit` rows of the chain matching `where`, newest first, older than `before_id`."""
    query = select(AuditLog).where(_chain(org_id))
    if before_id is not None:
        query = query.where(AuditLog.id < before_id)
    if where.since is not None:
        query = query.where(AuditLog.occurred_at >= where.since)
    if where.until is not None:
        query = query.where(AuditLog.occurred_at < where.until)
    if where.actor is not None:
        query = query.where(AuditLog.actor == where.actor)
    if where.action is not None:
        query = query.where(AuditLog.action == where.action)
    if where.outcome is not None:
        query = query.where(AuditLog.outcome == where.outcome)
    if where.resource_type is not None:
        query = query.where(AuditLog.resource_type == where.resource_type)
    if where.resource_id is not None:
        query = query.where(_has_resource_id(db, where.resource_id))
    result = await db.execute(query.order_by(AuditLog.id.desc()).limit(limit))
    return result.scalars().all()


async def chain_batch(
    db: AsyncSession, *, org_id: uuid.UUID | None, after_id: int, limit: int
) -> Sequence[AuditLog]:
    """The next `limit` rows of the chain after `after_id`, oldest first (for verify)."""
    query = (
        select(AuditLog)
        .where(_chain(org_id), AuditLog.id > after_id)
        .order_by(AuditLog.id)
        .limit(limit)
    )
    return (await db.execute(query)).scalars().all()
