"""`/api/admin/orgs`: the platform's organisation registry (platform administrators only).

Thin: each route declares its permission, calls one service function and returns the
result. `{org}` is an organisation id or slug.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from ehr_api.deps import PlatformSession, require
from ehr_api.tenants import service as organizations
from ehr_api.tenants.models import Organization, OrgStatus
from ehr_api.tenants.schemas import OrganizationCreate, OrganizationList, OrganizationRead

__all__ = ["router"]

router = APIRouter(prefix="/api/admin/orgs", tags=["organisations"])


@router.post(
    "",
    response_model=OrganizationRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[require("orgs", "write")],
)
async def create_organization(body: OrganizationCreate, db: PlatformSession) -> Organization:
    return await organizations.create(db, data=body)


@router.get("", response_model=OrganizationList, dependencies=[require("orgs", "read")])
async def list_organizations(
    db: PlatformSession,
    limit: Annotated[int, Query(ge=1, le=organizations.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    status: OrgStatus | None = None,
) -> OrganizationList:
    return await organizations.list(db, limit=limit, offset=offset, status=status)


@router.get("/{org}", response_model=OrganizationRead, dependencies=[require("orgs", "read")])
async def get_organization(org: str, db: PlatformSession) -> Organization:
    return await organizations.resolve(db, ref=org)


@router.post(
    "/{org}/suspend", response_model=OrganizationRead, dependencies=[require("orgs", "write")]
)
async def suspend_organization(org: str, db: PlatformSession) -> Organization:
    return await organizations.suspend(db, ref=org)


@router.post(
    "/{org}/reactivate", response_model=OrganizationRead, dependencies=[require("orgs", "write")]
)
async def reactivate_organization(org: str, db: PlatformSession) -> Organization:
    return await organizations.reactivate(db, ref=org)
