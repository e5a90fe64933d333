"""FHIR routes beyond plain CRUD: history (instance, type, system), `$validate`, PATCH
(JSON Patch or FHIRPath Patch).

`/{type}/_history` is never taken for a read of a resource whose id is "_history": the
FHIR router tries literal segments before parameters.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ehr_api.audit.middleware import annotate
from ehr_api.auth.rbac import fhir_action, fhir_object
from ehr_api.deps import organisation_of
from ehr_api.errors import BadRequestError, ForbiddenError, UnsupportedMediaTypeError
from ehr_api.fhir_store import history, operations, service
from ehr_api.fhir_store.dispatch import FhirCall, FhirRouter
from ehr_api.fhir_store.fhirpath_patch import is_fhirpath_patch
from ehr_api.fhir_store.http import base_url, if_match, read_json, respond
from ehr_api.problems import FHIR_JSON

__all__ = ["routes"]

JSON_PATCH = "application/json-patch+json"
FHIRPATH_PATCH = ("application/fhir+json", "application/json")

routes = FhirRouter()


def _history_response(
    request: Request, resource_type: str | None, result: history.HistoryResult
) -> JSONResponse:
    """The history Bundle; the audit row names the ids shown (`Type/id` at system level)."""
    shown = (
        row.id if resource_type else f"{row.resource_type}/{row.id}" for row in result.versions
    )
    annotate(request, resource_type=resource_type, resource_ids=list(dict.fromkeys(shown)))
    plain = str(request.url.replace(query=""))  # links repeat only what was understood
    cursor = request.query_params.get(history.CURSOR)
    self_query = [*result.applied, *([(history.CURSOR, cursor)] if cursor else [])]
    self_url = plain + ("?" + urlencode(self_query) if self_query else "")
    next_url = None
    if result.next_cursor is not None:
        next_url = plain + "?" + urlencode([*result.applied, (history.CURSOR, result.next_cursor)])
    body = history.bundle(base_url(request), self_url, result, next_url=next_url)
    return JSONResponse(body, media_type=FHIR_JSON)


@routes.get("/_history")
async def history_system(call: FhirCall) -> Response:
    """Every type's versions the caller may read (403 when that is none), newest first."""
    principal = await call.principal()
    access, act = call.access, fhir_action("history-type")
    readable = [
        kind
        for kind in sorted(service.supported_types())
        if await access.allowed(principal, fhir_object(kind), act)
    ]
    if not readable:
        raise ForbiddenError("the system history needs read permission on some resource type")
    org_id = organisation_of(principal)
    query = list(call.request.query_params.multi_items())
    async with call.session(read_only=True) as db:
        result = await history.history(
            db, org_id=org_id, resource_type=None, query=query, readable=readable
        )
    return _history_response(call.request, None, result)


@routes.get("/{resource_type}/_history")
async def history_type(call: FhirCall) -> Response:
    org_id = await call.allow("history-type")
    query = list(call.request.query_params.multi_items())
    async with call.session(read_only=True) as db:
        result = await history.history(
            db, org_id=org_id, resource_type=call.resource_type, query=query
        )
    return _history_response(call.request, call.resource_type, result)


@routes.get("/{resource_type}/{resource_id}/_history")
async def history_instance(call: FhirCall) -> Response:
    org_id = await call.allow("history-instance")
    query = list(call.request.query_params.multi_items())
    async with call.session(read_only=True) as db:
        result = await history.history(
            db, org_id=org_id, resource_type=call.resource_type,
            resource_id=call.resource_id, query=query,
        )  # fmt: skip
    return _history_response(call.request, call.resource_type, result)


def _validation_outcome(issues: list[dict[str, object]]) -> JSONResponse:
    if not issues:
        issues = [{"severity": "information", "code": "informational", "diagnostics": "All OK"}]
    body = {"resourceType": "OperationOutcome", "issue": issues}
    return JSONResponse(body, media_type=FHIR_JSON)


async def _validation_input(call: FhirCall) -> tuple[Any, str | None, list[str]]:
    """A `$validate`'s body, mode and profiles; the body may be empty for `mode=delete`
    only (else an empty or non-JSON body is a 400, as for any write)."""
    request = call.request
    query = request.query_params.multi_items()
    body = await read_json(request) if await request.body() else None
    mode, profiles = operations.validate_options(body, query)
    if body is None and mode != "delete":
        await read_json(request)  # raises: the body is not JSON
    return body, mode, profiles


@routes.post("/{resource_type}/$validate")
async def validate_type(call: FhirCall) -> Response:
    """Always 200: the outcome lists the issues (or says "All OK")."""
    await call.allow("validate")
    body, mode, profiles = await _validation_input(call)
    if mode == "delete":
        raise BadRequestError("$validate mode=delete names a resource: POST [type]/[id]/$validate")
    annotate(call.request, resource_type=call.resource_type, resource_ids=[])
    issues = operations.validation_issues(call.resource_type, body, mode=mode, profiles=profiles)
    return _validation_outcome(issues)


@routes.post("/{resource_type}/{resource_id}/$validate")
async def validate_instance(call: FhirCall) -> Response:
    """Validate a proposed version of an existing resource (404 if there is none)."""
    org_id = await call.allow("validate")
    resource_type, resource_id = call.resource_type, call.resource_id
    async with call.connection(read_only=True) as db:
        await service.get(db, org_id=org_id, resource_type=resource_type, resource_id=resource_id)
    body, mode, profiles = await _validation_input(call)
    annotate(call.request, resource_type=resource_type, resource_ids=[resource_id])
    issues = operations.validation_issues(
        resource_type, body, resource_id=resource_id, mode=mode, profiles=profiles
    )
    return _validation_outcome(issues)


async def _patch_document(call: FhirCall) -> Any:
    """The PATCH body: a JSON Patch (application/json-patch+json) or a FHIRPath Patch
    Parameters (application/fhir+json), and nothing else."""
    request = call.request
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in (JSON_PATCH, *FHIRPATH_PATCH):
        raise UnsupportedMediaTypeError(
            f"PATCH takes {JSON_PATCH} (JSON Patch) or application/fhir+json (a FHIRPath"
            f" Patch Parameters), not {kind!r}"
        )
    changes = await read_json(request)
    if (kind == JSON_PATCH) == is_fhirpath_patch(changes):
        raise BadRequestError(
            "a JSON Patch is a JSON array sent as application/json-patch+json; a FHIRPath"
            " Patch is a Parameters resource sent as application/fhir+json"
        )
    return changes


@routes.patch("/{resource_type}/{resource_id}")
@routes.patch("/{resource_type}")
async def patch(call: FhirCall) -> Response:
    """JSON Patch (RFC 6902) or FHIRPath Patch of one resource, named by id or by search
    parameters (the one match; none 404, several 412); the result is validated and
    stored as the next version."""
    org_id = await call.allow("patch")
    request = call.request
    changes = await _patch_document(call)
    version = if_match(request.headers.get("if-match"))
    async with call.writes() as db:
        if "resource_id" in call.params:
            row = await operations.patch(
                db, org_id=org_id, resource_type=call.resource_type,
                resource_id=call.resource_id, operations=changes, if_match=version,
            )  # fmt: skip
        else:
            row = await operations.conditional_patch(
                db, org_id=org_id, resource_type=call.resource_type,
                query=list(request.query_params.multi_items()), operations=changes,
                if_match=version,
            )  # fmt: skip
    return respond(request, row, prefer=request.headers.get("prefer"))
