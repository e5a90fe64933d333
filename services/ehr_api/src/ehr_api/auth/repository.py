"""Queries on principals, role assignments and API keys; rules live in `service.py`.

Tenant-scoped functions take `org_id` as a required keyword and filter on it even though
the org session would add the filter anyway: the query then reads correctly on its own
and stays correct in a platform session. Three lookups happen before any organisation is
known and are meant for a platform session: an organisation by slug or id (a token's
`org` claim), an API key by prefix (the key is the credential), and global role
assignments (`org_id` NULL).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehr_api.auth.models import ApiKey, Principal, RoleAssignment
from ehr_api.tenants.models import Organization

__all__ = [
    "add",
    "find_principal",
    "find_role_assignment",
    "get_api_key",
    "get_api_key_by_prefix",
    "get_organization_by_ref",
    "get_role_assignment",
    "list_api_keys",
    "list_global_role_assignments",
    "list_role_assignments",
]

_Row = TypeVar("_Row", ApiKey, Principal, RoleAssignment)


async def get_organization_by_ref(db: AsyncSession, *, ref: str) -> Organization | None:
    """The organisation a token's `org` claim names: its id (as text) or its slug."""
    try:
        org_id = uuid.UUID(ref)
    except ValueError:
        query = select(Organization).where(Organization.slug == ref)
    else:
        query = select(Organization).where(Organization.id == org_id)
    return (await db.execute(query)).scalar_one_or_none()


async def get_api_key_by_prefix(db: AsyncSession, *, prefix: str) -> ApiKey | None:
    """The key with this lookup prefix, in any organisation (platform session)."""
    query = select(ApiKey).where(ApiKey.prefix == prefix)
    return (await db.execute(query)).scalar_one_or_none()


async def get_api_key(db: AsyncSession, *, org_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
    query = select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.id == key_id)
    return (await db.execute(query)).scalar_one_or_none()


async def list_api_keys(db: AsyncSession, *, org_id: uuid.UUID) -> Sequence[ApiKey]:
    """Every key of the organisation, newest first (revoked ones included)."""
    query = (
        select(ApiKey)
        .where(ApiKey.org_id == org_id)
        .order_by(ApiKey.created_at.desc(), ApiKey.prefix)
    )
    return (await db.execute(query)).scalars().all()


async def list_role_assignments(db: AsyncSession, *, org_id: uuid.UUID) -> Sequence[RoleAssignment]:
    """The organisation's assignments (what the authorizer indexes per organisation)."""
    query = (
        select(RoleAssignment)
        .where(RoleAssignment.org_id == org_id)
        .order_by(RoleAssignment.subject, RoleAssignment.role)
    )
    return (await db.execute(query)).scalars().all()


async def list_global_role_assignments(db: AsyncSession) -> Sequence[RoleAssignment]:
    """Assignments that hold in every organisation (platform session only)."""
    query = select(RoleAssignment).where(RoleAssignment.org_id.is_(None))
    return (await db.execute(query)).scalars().all()


async def get_role_assignment(
    db: AsyncSession, *, org_id: uuid.UUID, assignment_id: uuid.UUID
) -> RoleAssignment | None:
    query = select(RoleAssignment).where(
        RoleAssignment.org_id == org_id, RoleAssignment.id == assignment_id
    )
    return (await db.execute(query)).scalar_one_or_none()


async def find_role_assignment(
    db: AsyncSession, *, org_id: uuid.UUID, subject: str, role: str
) -> RoleAssignment | None:
    query = select(RoleAssignment).where(
        RoleAssignment.org_id == org_id,
        RoleAssignment.subject == subject,
        RoleAssignment.role == role,
    )
    return (await db.execute(query)).scalar_one_or_none()


async def find_principal(db: AsyncSession, *, org_id: uuid.UUID, subject: str) -> Principal | None:
    query = select(Principal).where(Principal.org_id == org_id, Principal.subject == subject)
    return (await db.execute(query)).scalar_one_or_none()


async def add(db: AsyncSession, row: _Row) -> _Row:
    """Insert `row` now (flush), so constraint violations surface in the service."""
    db.add(row)
    await db.flush()
    return row
