"""`POST /fhir/R4` with a batch or transaction Bundle: a thin wrapper around `bundles`.

The permission depends on each entry (type x interaction), so the route declares none:
`bundles` asks the `authorize` callback built here for every entry, and for every type a
conditional reference searches. A failed transaction raises out of the route, so the
session dependency rolls the whole unit back; the error handler answers with the failing
entry's status and OperationOutcome.

`include_router` refuses a route whose prefix and path are both empty, so `routes`
registers `bundle` on its own `/fhir/R4` router with `add_api_route("", ...)`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Request
from fastapi.responses import JSONResponse

from ehr_api.audit.middleware import annotate
from ehr_api.auth.rbac import fhir_action, fhir_object
from ehr_api.deps import CurrentOrgId, CurrentPrincipal, OrgSession, get_access
from ehr_api.fhir_store import bundles
from ehr_api.fhir_store.http import base_url, read_json, return_preference, update_creates
from ehr_api.problems import FHIR_JSON

__all__ = ["bundle"]


async def bundle(
    request: Request,
    db: OrgSession,
    org_id: CurrentOrgId,
    principal: CurrentPrincipal,
    prefer: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Process a batch or transaction; 200 with the batch-/transaction-response Bundle."""
    annotate(request, resource_type="Bundle", resource_ids=[])  # until we know more
    access = get_access(request)

    async def authorize(resource_type: str, interaction: str) -> None:
        await access.authorize(principal, fhir_object(resource_type), fhir_action(interaction))

    result = await bundles.process(
        db,
        org_id=org_id,
        bundle=await read_json(request),
        authorize=authorize,
        base=base_url(request),
        prefer=return_preference(prefer),
        allow_create=update_creates(request),
    )
    annotate(request, resource_type="Bundle", resource_ids=result.touched)
    return JSONResponse(result.bundle, media_type=FHIR_JSON)
