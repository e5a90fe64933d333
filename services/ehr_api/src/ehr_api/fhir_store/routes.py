"""FHIR R4 REST routes at /fhir/R4: thin translations between HTTP and `service`.

The resource type is a path parameter, so the permission cannot be fixed at declaration
time: `allow(interaction)` checks `fhir_object(type)` + `fhir_action(interaction)` once
the type is known (an unknown type is a 404 before any permission is asked). Every route
tells the audit middleware which resource ids it returned.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from email.utils import format_datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from ehr_api.audit.middleware import annotate
from ehr_api.auth.principal import Principal
from ehr_api.auth.rbac import fhir_action, fhir_object
from ehr_api.deps import CurrentOrgId, CurrentPrincipal, OrgReadSession, OrgSession, get_access
from ehr_api.errors import DomainError, NotFoundError
from ehr_api.fhir_store import service
from ehr_api.fhir_store.capability import capability_statement
from ehr_api.fhir_store.models import FhirResource, FhirResourceHistory
from ehr_api.problems import FHIR_JSON

__all__ = ["router"]


class NotAcceptableError(DomainError):
    """The client accepts only formats we do not produce (XML): 406."""

    status = 406
    title = "Not acceptable"
    fhir_code = "not-supported"


def _json_only(accept: Annotated[str | None, Header()] = None) -> None:
    """406 when the Accept header names formats but none we can produce (JSON only)."""
    if not accept:
        return
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if not any(kind in ("*/*", "application/*") or "json" in kind for kind in kinds):
        raise NotAcceptableError(f"only application/fhir+json is supported, not {accept!r}")


router = APIRouter(prefix="/fhir/R4", tags=["fhir"], dependencies=[Depends(_json_only)])


def allow(interaction: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency: 404 for an unsupported type, 403 without the permission."""
    act = fhir_action(interaction)

    async def check(request: Request, resource_type: str, principal: CurrentPrincipal) -> Principal:
        if resource_type not in service.supported_types():
            raise NotFoundError(f"resource type {resource_type!r} is not supported")
        await get_access(request).authorize(principal, fhir_object(resource_type), act)
        return principal

    return check


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise service.BadRequestError(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise service.BadRequestError("the body must be a JSON object (a FHIR resource)")
    return body


Body = Annotated[dict[str, Any], Depends(_body)]


def _respond(
    request: Request,
    row: FhirResource | FhirResourceHistory,
    *,
    status: int = 200,
    prefer: str | None = None,
    location: bool = False,
) -> Response:
    """The resource with ETag / Last-Modified (and Location), honouring Prefer: return=."""
    annotate(request, resource_type=row.resource_type, resource_ids=[row.id])
    headers = {
        "ETag": f'W/"{row.version_id}"',
        "Last-Modified": format_datetime(row.last_updated, usegmt=True),
    }
    if location:
        headers["Location"] = str(
            request.url_for("vread", resource_type=row.resource_type, resource_id=row.id,
                            version=str(row.version_id))
        )  # fmt: skip
    if prefer and "return=minimal" in prefer:
        return Response(status_code=status, headers=headers)
    return JSONResponse(row.content, status_code=status, headers=headers, media_type=FHIR_JSON)


def _if_match(value: str | None) -> int | None:
    if value is None:
        return None
    digits = value.strip().removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise service.BadRequestError(f'If-Match must look like W/"1", got {value!r}')
    return int(digits)


@router.get("/metadata")
async def metadata(request: Request, _principal: CurrentPrincipal) -> JSONResponse:
    """The CapabilityStatement, for any authenticated caller.

    Authenticated (not public) so that every /fhir request has an accountable actor in
    the audit log; SMART discovery documents can be published separately if needed.
    """
    body = capability_statement(str(request.base_url).rstrip("/") + "/fhir/R4")
    return JSONResponse(body, media_type=FHIR_JSON)


@router.post("/{resource_type}", dependencies=[Depends(allow("create"))])
async def create(
    request: Request,
    resource_type: str,
    body: Body,
    db: OrgSession,
    org_id: CurrentOrgId,
    prefer: Annotated[str | None, Header()] = None,
    if_none_exist: Annotated[str | None, Header()] = None,
) -> Response:
    row, created = await service.create(
        db, org_id=org_id, resource_type=resource_type, body=body, if_none_exist=if_none_exist
    )
    return _respond(request, row, status=201 if created else 200, prefer=prefer, location=True)


@router.get("/{resource_type}", dependencies=[Depends(allow("search-type"))])
async def search(
    request: Request, resource_type: str, db: OrgReadSession, org_id: CurrentOrgId
) -> JSONResponse:
    query = list(request.query_params.multi_items())
    found = await service.search(db, org_id=org_id, resource_type=resource_type, query=query)
    base = str(request.base_url).rstrip("/") + "/fhir/R4"
    annotate(request, resource_type=resource_type, resource_ids=[r.id for r in found.resources])
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": found.total,
        "link": [{"relation": "self", "url": f"{base}/{resource_type}?{urlencode(found.applied)}"}],
        "entry": [
            {
                "fullUrl": f"{base}/{resource_type}/{row.id}",
                "resource": row.content,
                "search": {"mode": "match"},
            }
            for row in found.resources
        ],
    }
    return JSONResponse(bundle, media_type=FHIR_JSON)


@router.get("/{resource_type}/{resource_id}", dependencies=[Depends(allow("read"))])
async def read(
    request: Request, resource_type: str, resource_id: str, db: OrgReadSession, org_id: CurrentOrgId
) -> Response:
    row = await service.get(db, org_id=org_id, resource_type=resource_type, resource_id=resource_id)
    return _respond(request, row)


@router.get(
    "/{resource_type}/{resource_id}/_history/{version}",
    name="vread",
    dependencies=[Depends(allow("vread"))],
)
async def vread(
    request: Request,
    resource_type: str,
    resource_id: str,
    version: str,
    db: OrgReadSession,
    org_id: CurrentOrgId,
) -> Response:
    row = await service.get_version(
        db, org_id=org_id, resource_type=resource_type, resource_id=resource_id, version=version
    )
    return _respond(request, row)


@router.put("/{resource_type}/{resource_id}", dependencies=[Depends(allow("update"))])
async def update(
    request: Request,
    resource_type: str,
    resource_id: str,
    body: Body,
    db: OrgSession,
    org_id: CurrentOrgId,
    prefer: Annotated[str | None, Header()] = None,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    row, created = await service.update(
        db,
        org_id=org_id,
        resource_type=resource_type,
        resource_id=resource_id,
        body=body,
        if_match=_if_match(if_match),
    )
    return _respond(request, row, status=201 if created else 200, prefer=prefer, location=True)


@router.delete("/{resource_type}/{resource_id}", dependencies=[Depends(allow("delete"))])
async def delete(
    request: Request, resource_type: str, resource_id: str, db: OrgSession, org_id: CurrentOrgId
) -> JSONResponse:
    row = await service.delete(
        db, org_id=org_id, resource_type=resource_type, resource_id=resource_id
    )
    annotate(request, resource_type=resource_type, resource_ids=[resource_id])
    text = f"{resource_type}/{resource_id} deleted" if row else "nothing to delete"
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": text}],
    }
    headers = {"ETag": f'W/"{row.version_id}"'} if row else {}
    return JSONResponse(outcome, headers=headers, media_type=FHIR_JSON)
