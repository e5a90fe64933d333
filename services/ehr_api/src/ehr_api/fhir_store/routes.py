"""FHIR R4 REST routes at /fhir/R4: thin translations between HTTP and `service`.

The resource type is a path parameter, so the permission cannot be fixed at declaration
time: `allow(interaction)` checks `fhir_object(type)` + `fhir_action(interaction)` once
the type is known (an unknown type is a 404 before any permission is asked). Every route
tells the audit middleware which resource ids it returned. Shared helpers live in `http`;
history, `$validate` and PATCH in `routes_ops` (included ahead of the read route).
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from ehr_api.audit.middleware import annotate
from ehr_api.deps import (
    CurrentOrgId,
    CurrentPrincipal,
    OrgConnection,
    OrgReadConnection,
    OrgReadSession,
)
from ehr_api.fhir_store import elements, operations, service
from ehr_api.fhir_store.capability import capability_statement
from ehr_api.fhir_store.http import (
    Body,
    allow,
    base_url,
    if_match,
    json_only,
    outcome,
    respond,
    update_creates,
)
from ehr_api.fhir_store.routes_audit import router as audit_router
from ehr_api.fhir_store.routes_bundle import bundle as bundle_route
from ehr_api.fhir_store.routes_everything import router as everything_router
from ehr_api.fhir_store.routes_ops import router as ops_router
from ehr_api.problems import FHIR_JSON

__all__ = ["router"]


router = APIRouter(prefix="/fhir/R4", tags=["fhir"], dependencies=[Depends(json_only)])


@router.get("/metadata")
async def metadata(request: Request, _principal: CurrentPrincipal) -> JSONResponse:
    """The CapabilityStatement, for any authenticated caller.

    Authenticated (not public) so that every /fhir request has an accountable actor in
    the audit log; SMART discovery documents can be published separately if needed.
    """
    body = capability_statement(base_url(request), update_create=update_creates(request))
    return JSONResponse(body, media_type=FHIR_JSON)


router.include_router(audit_router)  # before the generic routes: AuditEvent is no stored type


@router.post("/{resource_type}", dependencies=[Depends(allow("create"))])
async def create(
    request: Request,
    resource_type: str,
    body: Body,
    db: OrgConnection,
    org_id: CurrentOrgId,
    prefer: Annotated[str | None, Header()] = None,
    if_none_exist: Annotated[str | None, Header()] = None,
) -> Response:
    """Create; conditional with `If-None-Exist`, or with the criteria in the URL
    (`POST /Patient?identifier=...`, how fhirpy's `get_or_create` and Aidbox spell it)."""
    if if_none_exist is None and request.url.query:
        if_none_exist = request.url.query
    row, created = await service.create(
        db, org_id=org_id, resource_type=resource_type, body=body, if_none_exist=if_none_exist
    )
    return respond(request, row, status=201 if created else 200, prefer=prefer, location=True)


def _strict(request: Request) -> bool:
    """`Prefer: handling=strict` (among other preferences, `;` or `,` separated)."""
    prefer = request.headers.get("prefer", "")
    return "handling=strict" in {part.replace(" ", "") for part in re.split("[;,]", prefer)}


async def _search(
    request: Request, resource_type: str, db: OrgReadConnection, org_id: CurrentOrgId,
    query: list[tuple[str, str]],
) -> JSONResponse:  # fmt: skip
    """The searchset Bundle: matches (shaped by _summary/_elements), includes, links."""
    base = base_url(request)
    found = await service.search(
        db, org_id=org_id, resource_type=resource_type, query=query, base=base,
        strict=_strict(request),
    )  # fmt: skip
    annotate(
        request,
        resource_type=resource_type,
        resource_ids=[*(row.id for row in found.resources),
                      *(f"{row.resource_type}/{row.id}" for row in found.included)],
    )  # fmt: skip

    def page(cursor: str | None) -> str:
        params = [*found.applied, *([("_cursor", cursor)] if cursor else [])]
        return f"{base}/{resource_type}" + (f"?{urlencode(params)}" if params else "")

    links = [{"relation": "self", "url": page(found.cursor)}]
    if found.next_cursor:
        links.append({"relation": "next", "url": page(found.next_cursor)})
    if found.previous_cursor:
        links.append({"relation": "previous", "url": page(found.previous_cursor)})
    shaped = found.summary is not None or found.elements is not None
    entries = [
        {
            "fullUrl": f"{base}/{resource_type}/{row.id}",
            "resource": elements.shape(resource_type, row.content, summary=found.summary,
                                       elements=found.elements) if shaped else row.content,
            "search": {"mode": "match"},
        }
        for row in found.resources
    ] + [
        {
            "fullUrl": f"{base}/{row.resource_type}/{row.id}",
            "resource": row.content,
            "search": {"mode": "include"},
        }
        for row in found.included
    ]  # fmt: skip
    if found.ignored:  # say so, besides leaving them out of the self link
        text = f"ignored unknown search parameters: {', '.join(dict.fromkeys(found.ignored))}"
        warning = outcome("warning", "not-supported", text)
        warning["issue"][0]["expression"] = list(dict.fromkeys(found.ignored))
        entries.append({"resource": warning, "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if found.total_known:
        bundle["total"] = found.total
    bundle.update(link=links, entry=entries)
    return JSONResponse(bundle, media_type=FHIR_JSON)


@router.get("/{resource_type}", dependencies=[Depends(allow("search-type"))])
async def search(
    request: Request, resource_type: str, db: OrgReadConnection, org_id: CurrentOrgId
) -> JSONResponse:
    query = list(request.query_params.multi_items())
    return await _search(request, resource_type, db, org_id, query)


@router.post("/{resource_type}/_search", dependencies=[Depends(allow("search-type"))])
async def search_post(
    request: Request, resource_type: str, db: OrgReadConnection, org_id: CurrentOrgId
) -> JSONResponse:
    """Search with form-encoded parameters (URL parameters count too); same as GET."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("", "application/x-www-form-urlencoded"):
        raise service.BadRequestError(f"_search takes form-encoded parameters, not {kind!r}")
    try:
        form = parse_qsl((await request.body()).decode(), keep_blank_values=True)
    except UnicodeDecodeError as exc:
        raise service.BadRequestError(f"the form is not UTF-8: {exc}") from exc
    query = [*request.query_params.multi_items(), *form]
    return await _search(request, resource_type, db, org_id, query)


router.include_router(ops_router)  # before read: /{type}/_history is not a read
router.include_router(everything_router)  # Patient/{id}/$everything
router.add_api_route("", bundle_route, methods=["POST"], name="bundle")  # batch/transaction


@router.get("/{resource_type}/{resource_id}", dependencies=[Depends(allow("read"))])
async def read(
    request: Request,
    resource_type: str,
    resource_id: str,
    db: OrgReadConnection,
    org_id: CurrentOrgId,
) -> Response:
    """Read; `_summary` / `_elements` shape the answer as they do a search's entries.

    On a Core connection, not an ORM session: the read is one Core SELECT, and the
    session's machinery was most of its cost."""
    row = await service.get(db, org_id=org_id, resource_type=resource_type, resource_id=resource_id)
    params = request.query_params
    if "_summary" not in params and "_elements" not in params:
        return respond(request, row)
    elements.check_summary(params.get("_summary"))
    content = elements.shape(
        resource_type,
        row.content,
        summary=params.get("_summary"),
        elements=elements.parse_elements(params.getlist("_elements")),
    )
    return respond(request, row, content=content)


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
    return respond(request, row)


@router.put("/{resource_type}/{resource_id}", dependencies=[Depends(allow("update"))])
async def update(
    request: Request,
    resource_type: str,
    resource_id: str,
    body: Body,
    db: OrgConnection,
    org_id: CurrentOrgId,
    prefer: Annotated[str | None, Header()] = None,
    if_match_header: Annotated[str | None, Header(alias="If-Match")] = None,
) -> Response:
    row, created = await service.update(
        db,
        org_id=org_id,
        resource_type=resource_type,
        resource_id=resource_id,
        body=body,
        if_match=if_match(if_match_header),
        allow_create=update_creates(request),
    )
    return respond(request, row, status=201 if created else 200, prefer=prefer, location=True)


@router.delete("/{resource_type}/{resource_id}", dependencies=[Depends(allow("delete"))])
async def delete(
    request: Request, resource_type: str, resource_id: str, db: OrgConnection, org_id: CurrentOrgId
) -> JSONResponse:
    row = await service.delete(
        db, org_id=org_id, resource_type=resource_type, resource_id=resource_id
    )
    annotate(request, resource_type=resource_type, resource_ids=[resource_id])
    text = f"{resource_type}/{resource_id} deleted" if row else "nothing to delete"
    headers = {"ETag": f'W/"{row.version_id}"'} if row else {}
    body = outcome("information", "informational", text)
    return JSONResponse(body, headers=headers, media_type=FHIR_JSON)


@router.put("/{resource_type}", dependencies=[Depends(allow("update"))])
async def conditional_update(
    request: Request,
    resource_type: str,
    body: Body,
    db: OrgConnection,
    org_id: CurrentOrgId,
    prefer: Annotated[str | None, Header()] = None,
    if_match_header: Annotated[str | None, Header(alias="If-Match")] = None,
) -> Response:
    """PUT with search parameters: 0 matches create, 1 updates it, several are a 412."""
    row, created = await operations.conditional_update(
        db,
        org_id=org_id,
        resource_type=resource_type,
        query=list(request.query_params.multi_items()),
        body=body,
        if_match=if_match(if_match_header),
        allow_create=update_creates(request),
    )
    return respond(request, row, status=201 if created else 200, prefer=prefer, location=True)
