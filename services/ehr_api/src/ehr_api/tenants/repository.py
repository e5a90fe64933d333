"""Queries on `organizations`, and nothing else: rules live in `service.py`.

Listing and creating organisations is platform work, so these run in a platform session;
`get` also works in an organisation's own session, which sees only its own row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ehr_api.tenants.models import Organization, OrgStatus

__all__ = ["add", "count", "get", "get_by_slug", "list_page"]


async def get(db: AsyncSession, *, org_id: uuid.UUID) -> Organization | None:
    return await db.get(Organization, org_id)


async def get_by_slug(db: AsyncSession, *, slug: str) -> Organization | None:
    result = await db.execute(select(Organization).where(Organization.slug == slug))
    return result.scalar_one_or_none()


async def list_page(
    db: AsyncSession, *, limit: int, offset: int, status: OrgStatus | None = None
) -> Sequence[Organization]:
    query = select(Organization).order_by(Organization.created_at, Organization.slug)
    if status is not None:
        query = query.where(Organization.status == status)
    result = await db.execute(query.limit(limit).offset(offset))
    return result.scalars().all()


async def count(db: AsyncSession, *, status: OrgStatus | None = None) -> int:
    query = select(func.count()).select_from(Organization)
    if status is not None:
        query = query.where(Organization.status == status)
    return int((await db.execute(query)).scalar_one())


async def add(db: AsyncSession, organization: Organization) -> Organization:
    db.add(organization)
    await db.flush()
    return organization
