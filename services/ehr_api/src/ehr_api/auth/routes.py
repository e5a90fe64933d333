"""`/api/me`, `/api/apikeys` and `/api/members`: the caller, and the organisation's access.

API keys and members are organisation administration (`org_admin`; auditors may read):
every route runs in the caller's organisation session, so another organisation's key or
member id is simply not found (404), which reveals nothing.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status

from ehr_api.audit.middleware import annotate
from ehr_api.auth import service as access_admin
from ehr_api.auth.models import ApiKey, RoleAssignment
from ehr_api.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    MemberCreate,
    MemberRead,
    PrincipalRead,
)
from ehr_api.deps import CurrentOrgId, CurrentPrincipal, OrgSession, get_access, require

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["access"])


@router.get("/me", response_model=PrincipalRead, dependencies=[require("organization", "read")])
async def read_me(request: Request, principal: CurrentPrincipal) -> PrincipalRead:
    """The caller as the platform sees them (roles from the credential and the database)."""
    roles = get_access(request).authorizer.roles_in(principal)
    return PrincipalRead(
        subject=principal.subject,
        kind=principal.kind,
        org_id=principal.org_id,
        org_slug=principal.org_slug,
        roles=sorted(roles),
    )


@router.post(
    "/apikeys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    dependencies=[require("apikeys", "write")],
)
async def create_api_key(
    request: Request, body: ApiKeyCreate, db: OrgSession, org_id: CurrentOrgId
) -> ApiKeyCreated:
    """Mint a key; the response is the only time the key is ever shown."""
    created = await access_admin.create_api_key(
        db, org_id=org_id, name=body.name, roles=body.roles, expires_at=body.expires_at
    )
    annotate(
        request, action="apikey.create", resource_type="apikeys", resource_ids=[created.row.id]
    )
    return ApiKeyCreated(**ApiKeyRead.model_validate(created.row).model_dump(), key=created.key)


@router.get("/apikeys", response_model=list[ApiKeyRead], dependencies=[require("apikeys", "read")])
async def list_api_keys(db: OrgSession, org_id: CurrentOrgId) -> list[ApiKey]:
    return [*await access_admin.list_api_keys(db, org_id=org_id)]


@router.delete(
    "/apikeys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[require("apikeys", "delete")],
)
async def revoke_api_key(key_id: uuid.UUID, db: OrgSession, org_id: CurrentOrgId) -> Response:
    """Revoke the key (it stops working at once in this process, within seconds elsewhere)."""
    await access_admin.revoke_api_key(db, org_id=org_id, key_id=key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/members", response_model=list[MemberRead], dependencies=[require("members", "read")])
async def list_members(db: OrgSession, org_id: CurrentOrgId) -> list[RoleAssignment]:
    return [*await access_admin.list_role_assignments(db, org_id=org_id)]


@router.post(
    "/members",
    response_model=MemberRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[require("members", "write")],
)
async def add_member(
    request: Request, body: MemberCreate, db: OrgSession, org_id: CurrentOrgId
) -> RoleAssignment:
    """Grant a role in the caller's organisation."""
    row = await access_admin.assign_role(db, org_id=org_id, subject=body.subject, role=body.role)
    annotate(request, action="member.add", resource_type="members", resource_ids=[row.id])
    return row


@router.delete(
    "/members/{assignment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[require("members", "delete")],
)
async def remove_member(assignment_id: uuid.UUID, db: OrgSession, org_id: CurrentOrgId) -> Response:
    await access_admin.remove_role_assignment(db, org_id=org_id, assignment_id=assignment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
