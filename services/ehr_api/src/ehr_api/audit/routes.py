"""`/api/audit`: the organisation's audit trail, for auditors and organisation admins.

Both routes run in a read-only session of the caller's organisation: one organisation's
auditor can never page through (or even count) another organisation's rows, and a long
verification never holds SQLite's write lock.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime

from ehr_api.audit import service as audit
from ehr_api.audit.schemas import AuditPageRead, AuditRead, VerificationRead
from ehr_api.audit.service import AuditFilter
from ehr_api.deps import CurrentOrgId, OrgReadSession, require

__all__ = ["router"]

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", response_model=AuditPageRead, dependencies=[require("audit", "read")])
async def list_audit(
    request: Request,
    db: OrgReadSession,
    org_id: CurrentOrgId,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    cursor: Annotated[int | None, Query(description="`next` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 50,
) -> AuditPageRead:
    """Rows of the caller's organisation, newest first, filtered and paginated."""
    where = AuditFilter(
        since=since,
        until=until,
        actor=actor,
        action=action,
        outcome=outcome,
        resource_type=resource_type,
        resource_id=resource_id,
    )
    page = await audit.list(db, org_id=org_id, where=where, cursor=cursor, limit=limit)
    next_url = None
    if page.next_cursor is not None:
        next_url = str(request.url.include_query_params(cursor=page.next_cursor))
    return AuditPageRead(items=[AuditRead.model_validate(row) for row in page.items], next=next_url)


@router.get("/verify", response_model=VerificationRead, dependencies=[require("audit", "verify")])
async def verify_audit(db: OrgReadSession, org_id: CurrentOrgId) -> VerificationRead:
    """Walk the caller's organisation's chain and name the first row that does not hold."""
    result = await audit.walk(db, org_id=org_id)
    broken = result.broken
    return VerificationRead(
        ok=result.ok,
        rows_checked=result.rows,
        broken_row_id=broken.row_id if broken else None,
        reason=broken.reason if broken else None,
    )
