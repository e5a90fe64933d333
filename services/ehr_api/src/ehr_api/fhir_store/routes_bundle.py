"""`POST /fhir/R4` with a batch or transaction Bundle: a thin wrapper around `bundles`.

The permission depends on each entry (type x interaction), so the route checks none up
front: `bundles` asks the `authorize` callback built here for every entry, and for every
type a conditional reference searches. The whole Bundle runs on one org connection (Core,
like the single interactions). A failed transaction raises out of the connection block,
which rolls the whole unit back; the error handler answers with the failing entry's
status and OperationOutcome.
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from ehr_api.audit.middleware import annotate
from ehr_api.auth.rbac import fhir_action, fhir_object
from ehr_api.deps import organisation_of
from ehr_api.fhir_store import bundles
from ehr_api.fhir_store.dispatch import FhirCall, FhirRouter
from ehr_api.fhir_store.http import base_url, read_json, return_preference, update_creates
from ehr_api.problems import FHIR_JSON

__all__ = ["routes"]

routes = FhirRouter()


@routes.post("")
async def bundle(call: FhirCall) -> Response:
    """Process a batch or transaction; 200 with the batch-/transaction-response Bundle."""
    request = call.request
    principal = await call.principal()
    org_id = organisation_of(principal)
    annotate(request, resource_type="Bundle", resource_ids=[])  # until we know more
    access = call.access

    async def authorize(resource_type: str, interaction: str) -> None:
        await access.authorize(principal, fhir_object(resource_type), fhir_action(interaction))

    body = await read_json(request)
    async with call.writes() as db:
        result = await bundles.process(
            db,
            org_id=org_id,
            bundle=body,
            authorize=authorize,
            base=base_url(request),
            prefer=return_preference(request.headers.get("prefer")),
            allow_create=update_creates(request),
        )
    annotate(request, resource_type="Bundle", resource_ids=result.touched)
    return JSONResponse(result.bundle, media_type=FHIR_JSON)
