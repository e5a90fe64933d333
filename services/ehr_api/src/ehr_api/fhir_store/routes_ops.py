"""FHIR routes beyond plain CRUD: history (instance, type), `$validate`, JSON Patch.

Included by `routes` before its read route, so `/{type}/_history` is not taken for a read
of a resource whose id is "_history".
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from ehr_api.audit.middleware import annotate
from ehr_api.deps import CurrentOrgId, OrgConnection, OrgReadSession
from ehr_api.errors import UnsupportedMediaTypeError
from ehr_api.fhir_store import history, operations, service
from ehr_api.fhir_store.http import allow, base_url, if_match, read_json, respond
from ehr_api.problems import FHIR_JSON

__all__ = ["router"]

JSON_PATCH = "application/json-patch+json"

router = APIRouter()


def _history_response(
    request: Request, resource_type: str, result: history.HistoryResult
) -> JSONResponse:
    annotate(
        request,
        resource_type=resource_type,
        resource_ids=list(dict.fromkeys(row.id for row in result.versions)),
    )
    plain = str(request.url.replace(query=""))  # links repeat only what was understood
    cursor = request.query_params.get(history.CURSOR)
    self_query = [*result.applied, *([(history.CURSOR, cursor)] if cursor else [])]
    self_url = plain + ("?" + urlencode(self_query) if self_query else "")
    next_url = None
    if result.next_cursor is not None:
        next_url = plain + "?" + urlencode([*result.applied, (history.CURSOR, result.next_cursor)])
    body = history.bundle(base_url(request), self_url, result, next_url=next_url)
    return JSONResponse(body, media_type=FHIR_JSON)


@router.get("/{resource_type}/_history", dependencies=[Depends(allow("history-type"))])
async def history_type(
    request: Request, resource_type: str, db: OrgReadSession, org_id: CurrentOrgId
) -> JSONResponse:
    result = await history.history(
        db,
        org_id=org_id,
        resource_type=resource_type,
        query=list(request.query_params.multi_items()),
    )
    return _history_response(request, resource_type, result)


@router.get(
    "/{resource_type}/{resource_id}/_history", dependencies=[Depends(allow("history-instance"))]
)
async def history_instance(
    request: Request, resource_type: str, resource_id: str, db: OrgReadSession,
    org_id: CurrentOrgId,
) -> JSONResponse:  # fmt: skip
    result = await history.history(
        db,
        org_id=org_id,
        resource_type=resource_type,
        resource_id=resource_id,
        query=list(request.query_params.multi_items()),
    )
    return _history_response(request, resource_type, result)


def _validation_outcome(issues: list[dict[str, object]]) -> JSONResponse:
    if not issues:
        issues = [{"severity": "information", "code": "informational", "diagnostics": "All OK"}]
    body = {"resourceType": "OperationOutcome", "issue": issues}
    return JSONResponse(body, media_type=FHIR_JSON)


@router.post("/{resource_type}/$validate", dependencies=[Depends(allow("validate"))])
async def validate_type(request: Request, resource_type: str) -> JSONResponse:
    """Always 200: the outcome lists the issues (or says "All OK")."""
    body = await read_json(request)
    annotate(request, resource_type=resource_type, resource_ids=[])
    return _validation_outcome(operations.validation_issues(resource_type, body))


@router.post("/{resource_type}/{resource_id}/$validate", dependencies=[Depends(allow("validate"))])
async def validate_instance(
    request: Request, resource_type: str, resource_id: str, db: OrgReadSession,
    org_id: CurrentOrgId,
) -> JSONResponse:  # fmt: skip
    """Validate a proposed version of an existing resource (404 if there is none)."""
    await service.get(db, org_id=org_id, resource_type=resource_type, resource_id=resource_id)
    body = await read_json(request)
    annotate(request, resource_type=resource_type, resource_ids=[resource_id])
    issues = operations.validation_issues(resource_type, body, resource_id=resource_id)
    return _validation_outcome(issues)


@router.patch("/{resource_type}/{resource_id}", dependencies=[Depends(allow("patch"))])
async def patch(
    request: Request,
    resource_type: str,
    resource_id: str,
    db: OrgConnection,
    org_id: CurrentOrgId,
    content_type: Annotated[str | None, Header()] = None,
    prefer: Annotated[str | None, Header()] = None,
    if_match_header: Annotated[str | None, Header(alias="If-Match")] = None,
) -> Response:
    """JSON Patch (RFC 6902); the result is validated and stored as the next version."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind != JSON_PATCH:
        raise UnsupportedMediaTypeError(f"PATCH needs Content-Type {JSON_PATCH}, not {kind!r}")
    row = await operations.patch(
        db,
        org_id=org_id,
        resource_type=resource_type,
        resource_id=resource_id,
        operations=await read_json(request),
        if_match=if_match(if_match_header),
    )
    return respond(request, row, prefer=prefer)
