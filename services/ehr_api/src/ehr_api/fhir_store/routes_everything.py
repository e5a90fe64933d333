"""`GET /fhir/R4/Patient/{id}/$everything`: thin HTTP around `everything`.

The operation needs read on Patient (`everything` is a read in the policy); each other
type is returned only when the caller may read it, so a role that reads patients but not,
say, DocumentReference gets the record without them rather than a 403 or a leak.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.responses import JSONResponse, Response

from ehr_api.audit.middleware import annotate
from ehr_api.auth.access import Access
from ehr_api.auth.principal import Principal
from ehr_api.auth.rbac import fhir_action, fhir_object
from ehr_api.fhir_store import everything, service
from ehr_api.fhir_store.dispatch import FhirCall, FhirRouter
from ehr_api.fhir_store.elements import check_summary, count_only, parse_elements, shape
from ehr_api.fhir_store.http import base_url
from ehr_api.problems import FHIR_JSON

__all__ = ["routes"]

routes = FhirRouter()


async def _readable(access: Access, principal: Principal) -> set[str]:
    candidates = (set(everything.COMPARTMENT) | set(everything.REFERENCED)) & set(
        service.supported_types()
    )
    act = fhir_action("read")
    return {
        kind
        for kind in sorted(candidates)
        if await access.allowed(principal, fhir_object(kind), act)
    }


def _entry(base: str, content: dict[str, Any], mode: str) -> dict[str, Any]:
    path = f"{content['resourceType']}/{content['id']}"
    return {"fullUrl": f"{base}/{path}", "resource": content, "search": {"mode": mode}}


@routes.get("/Patient/{resource_id}/$everything")
async def patient_everything(call: FhirCall) -> Response:
    """A searchset Bundle of the patient's compartment, paged with `next` links."""
    org_id = await call.allow("everything", resource_type="Patient")
    request, resource_id = call.request, call.resource_id
    params = request.query_params
    summary = params.get("_summary")
    check_summary(summary)
    elements = parse_elements(params.getlist("_elements"))
    readable = await _readable(call.access, await call.principal())
    async with call.session(read_only=True) as db:
        result = await everything.everything(
            db,
            org_id=org_id,
            patient_id=resource_id,
            query=list(params.multi_items()),
            readable=readable,
        )
    returned = [*result.resources, *result.included]
    annotate(
        request,
        resource_type="Patient",
        resource_ids=[f"{row.resource_type}/{row.id}" for row in returned],
        details={"operation": "$everything"},
    )
    base = base_url(request)
    plain = f"{base}/Patient/{resource_id}/$everything"
    shown = [
        *result.applied,
        *[(n, v) for n, v in params.multi_items() if n in ("_summary", "_elements")],
    ]
    cursor = params.get(everything.CURSOR)
    self_query = [*shown, *([(everything.CURSOR, cursor)] if cursor else [])]
    links = [
        {"relation": "self", "url": plain + ("?" + urlencode(self_query) if self_query else "")}
    ]
    if result.next_cursor is not None:
        next_query = [*shown, (everything.CURSOR, result.next_cursor)]
        links.append({"relation": "next", "url": plain + "?" + urlencode(next_query)})
    entries: list[dict[str, Any]] = []
    if not count_only(summary):
        for rows, mode in ((result.resources, "match"), (result.included, "include")):
            for row in rows:
                content = shape(row.resource_type, row.content, summary=summary, elements=elements)
                entries.append(_entry(base, content, mode))
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": result.total,
        "link": links,
        "entry": entries,
    }
    return JSONResponse(bundle, media_type=FHIR_JSON)
