"""Organisations: create, look up, list, suspend and reactivate.

Organisations are never deleted (their audit chain must stay verifiable): an
organisation that should lose access is suspended, which keeps its data but makes the
authentication layer refuse its tokens and API keys (`is_active`). Everything here runs
in a platform session except `get`, which an organisation's own session may also use.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from ehr_api.errors import ConflictError, NotFoundError
from ehr_api.pagination import check_page
from ehr_api.tenants import repository
from ehr_api.tenants.models import Organization, OrgStatus
from ehr_api.tenants.schemas import (
    SLUG_PATTERN,
    OrganizationCreate,
    OrganizationList,
    OrganizationRead,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "MAX_PAGE",
    "create",
    "get",
    "get_by_slug",
    "is_active",
    "list",
    "reactivate",
    "resolve",
    "suspend",
]

logger = logging.getLogger(__name__)

#: The largest page `list` returns, so one request cannot pull the whole registry.
MAX_PAGE = 200


def is_active(organization: Organization) -> bool:
    """Whether the organisation's credentials may be used (it is not suspended).

    The authentication layer calls this after resolving a token's or API key's
    organisation, so suspension takes effect on the next request, without revoking
    anything.
    """
    return organization.status == OrgStatus.ACTIVE


async def create(db: AsyncSession, *, data: OrganizationCreate) -> Organization:
    """Register a new, active organisation.

    Raises:
        ConflictError: the slug is taken (field ``slug``).
    """
    if await repository.get_by_slug(db, slug=data.slug) is not None:
        raise ConflictError(f"an organisation with slug {data.slug!r} exists", field="slug")
    organization = Organization(slug=data.slug, name=data.name, status=OrgStatus.ACTIVE)
    try:
        await repository.add(db, organization)
    except IntegrityError:
        # Lost a race with a concurrent create of the same slug.
        raise ConflictError(
            f"an organisation with slug {data.slug!r} exists", field="slug"
        ) from None
    logger.info("organisation %s created (%s)", organization.slug, organization.id)
    return organization


async def get(db: AsyncSession, *, org_id: uuid.UUID) -> Organization:
    """The organisation with this id.

    Raises:
        NotFoundError: no such organisation (or not visible to this session).
    """
    organization = await repository.get(db, org_id=org_id)
    if organization is None:
        raise NotFoundError(f"organisation {org_id} not found")
    return organization


async def get_by_slug(db: AsyncSession, *, slug: str) -> Organization:
    """The organisation with this slug.

    Raises:
        NotFoundError: no such organisation.
    """
    organization = await repository.get_by_slug(db, slug=slug)
    if organization is None:
        raise NotFoundError(f"organisation {slug!r} not found")
    return organization


async def resolve(db: AsyncSession, *, ref: uuid.UUID | str) -> Organization:
    """The organisation named by `ref`, an id or a slug (URLs and the CLI accept both).

    Raises:
        NotFoundError: `ref` names no organisation (or is neither an id nor a slug).
    """
    if isinstance(ref, uuid.UUID):
        return await get(db, org_id=ref)
    try:
        org_id = uuid.UUID(ref)
    except ValueError:
        if not SLUG_PATTERN.fullmatch(ref):
            raise NotFoundError(f"organisation {ref!r} not found") from None
        return await get_by_slug(db, slug=ref)
    return await get(db, org_id=org_id)


async def list(
    db: AsyncSession, *, limit: int = 50, offset: int = 0, status: OrgStatus | None = None
) -> OrganizationList:
    """One page of organisations (oldest first), optionally only those with `status`.

    Raises:
        InvalidError: `limit` outside 1..MAX_PAGE or a negative `offset`.
    """
    check_page(limit, offset, max_page=MAX_PAGE)
    rows = await repository.list_page(db, limit=limit, offset=offset, status=status)
    return OrganizationList(
        items=[OrganizationRead.model_validate(row) for row in rows],
        total=await repository.count(db, status=status),
        limit=limit,
        offset=offset,
    )


async def suspend(db: AsyncSession, *, ref: uuid.UUID | str) -> Organization:
    """Suspend the organisation named by `ref` (id or slug); idempotent.

    Raises:
        NotFoundError: no such organisation.
    """
    return await _set_status(db, ref=ref, status=OrgStatus.SUSPENDED)


async def reactivate(db: AsyncSession, *, ref: uuid.UUID | str) -> Organization:
    """Lift the suspension of the organisation named by `ref` (id or slug); idempotent.

    Raises:
        NotFoundError: no such organisation.
    """
    return await _set_status(db, ref=ref, status=OrgStatus.ACTIVE)


async def _set_status(db: AsyncSession, *, ref: uuid.UUID | str, status: OrgStatus) -> Organization:
    organization = await resolve(db, ref=ref)
    if organization.status != status:
        organization.status = status
        await db.flush()
        logger.info("organisation %s is now %s", organization.slug, status.value)
    return organization
