"""`/fhir/R4/AuditEvent`: the audit log as read-only AuditEvents (read, vread, search).

Explicit paths, which the FHIR router tries before the generic `/{resource_type}` routes
(a literal segment beats a parameter), so AuditEvent never reaches the store (it is not a
stored type). Reading needs `fhir:AuditEvent` read
(auditor, org_admin); every write answers 405. Each read is audited like any request,
naming the AuditEvents it returned; that row is written after the response, so a read
can only ever add one row and never feeds on itself.
"""

from __future__ import annotations

import uuid
from email.utils import format_datetime
from urllib.parse import parse_qsl, urlencode

from starlette.responses import JSONResponse, Response

from ehr_api.audit.middleware import annotate
from ehr_api.errors import BadRequestError, NotFoundError
from ehr_api.fhir_store import audit_events
from ehr_api.fhir_store.dispatch import FhirCall, FhirRouter
from ehr_api.fhir_store.http import base_url
from ehr_api.problems import FHIR_JSON, operation_outcome

__all__ = ["routes"]

routes = FhirRouter()
_TYPE = "AuditEvent"


async def _allow(call: FhirCall) -> uuid.UUID:
    return await call.require("fhir:AuditEvent", "read")


async def _search(call: FhirCall, query: list[tuple[str, str]]) -> Response:
    org_id = await _allow(call)
    request = call.request
    async with call.session(read_only=True) as db:
        page = await audit_events.search(db, org_id=org_id, query=query)
    base = base_url(request)
    annotate(request, resource_type=_TYPE, resource_ids=[row.id for row in page.rows])
    links = [{"relation": "self", "url": f"{base}/{_TYPE}?{urlencode(page.applied)}"}]
    if page.next_cursor is not None:
        after = urlencode([*page.applied, ("_cursor", page.next_cursor)])
        links.append({"relation": "next", "url": f"{base}/{_TYPE}?{after}"})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/{_TYPE}/{row.id}",
                "resource": audit_events.to_resource(row, base=base),
                "search": {"mode": "match"},
            }
            for row in page.rows
        ],
    }
    return JSONResponse(bundle, media_type=FHIR_JSON)


@routes.get(f"/{_TYPE}")
async def search_audit_events(call: FhirCall) -> Response:
    """AuditEvents of the caller's organisation, newest first, with `next` paging links."""
    return await _search(call, list(call.request.query_params.multi_items()))


@routes.post(f"/{_TYPE}/_search")
async def search_audit_events_post(call: FhirCall) -> Response:
    """The same search with form-encoded parameters (URL parameters count too)."""
    await _allow(call)
    request = call.request
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("", "application/x-www-form-urlencoded"):
        raise BadRequestError(f"_search takes form-encoded parameters, not {kind!r}")
    try:
        form = parse_qsl((await request.body()).decode(), keep_blank_values=True)
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"the form is not UTF-8: {exc}") from exc
    return await _search(call, [*request.query_params.multi_items(), *form])


async def _read(call: FhirCall, event_id: str) -> Response:
    org_id = await _allow(call)
    request = call.request
    async with call.session(read_only=True) as db:
        row = await audit_events.get(db, org_id=org_id, event_id=event_id)
    annotate(request, resource_type=_TYPE, resource_ids=[row.id])
    resource = audit_events.to_resource(row, base=base_url(request))
    headers = {"ETag": 'W/"1"', "Last-Modified": format_datetime(row.occurred_at, usegmt=True)}
    return JSONResponse(resource, headers=headers, media_type=FHIR_JSON)


@routes.get(f"/{_TYPE}/{{event_id}}")
async def read_audit_event(call: FhirCall) -> Response:
    """One AuditEvent (404 for an id that is not a row of the caller's organisation)."""
    return await _read(call, call.params["event_id"])


@routes.get(f"/{_TYPE}/{{event_id}}/_history/{{version}}")
async def vread_audit_event(call: FhirCall) -> Response:
    """Audit rows never change: version 1 is the only one."""
    event_id, version = call.params["event_id"], call.params["version"]
    await _allow(call)
    if version != "1":
        raise NotFoundError(f"{_TYPE}/{event_id}/_history/{version} is not known")
    return await _read(call, event_id)


async def write_audit_event(call: FhirCall) -> Response:
    """405: AuditEvents are the audit log's own record, never written through FHIR."""
    await call.principal()
    body = operation_outcome(
        "not-supported", "AuditEvent is read-only: it is a view of the audit log"
    )
    return JSONResponse(body, status_code=405, headers={"Allow": "GET"}, media_type=FHIR_JSON)


for _method, _path in [
    ("POST", f"/{_TYPE}"),
    ("PUT", f"/{_TYPE}"),
    ("DELETE", f"/{_TYPE}"),
    ("PUT", f"/{_TYPE}/{{event_id}}"),
    ("PATCH", f"/{_TYPE}/{{event_id}}"),
    ("DELETE", f"/{_TYPE}/{{event_id}}"),
]:
    routes.add(_method, _path, write_audit_event)
