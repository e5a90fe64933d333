"""FHIR R4 REST routes at /fhir/R4: thin translations between HTTP and `service`.

Declared on a `FhirRouter` (see `dispatch`: FHIR's own URL table, no FastAPI dependency
solving). Each handler checks what it needs in order through `FhirCall`: `allow(interaction)`
authenticates, 404s an unknown type and checks `fhir_object(type)` + `fhir_action(interaction)`.
Every route tells the audit middleware which resource ids it returned. Shared helpers live
in `http`; history, `$validate` and PATCH in `routes_ops`; AuditEvent in `routes_audit`;
`$everything` in `routes_everything`; batch/transaction in `routes_bundle`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ehr_api.audit.middleware import annotate
from ehr_api.fhir_store import elements, operations, service, system_search
from ehr_api.fhir_store.capability import capability_statement
from ehr_api.fhir_store.conditional_read import not_modified
from ehr_api.fhir_store.dispatch import FhirCall, FhirEndpoints, FhirRouter
from ehr_api.fhir_store.http import (
    base_url,
    if_match,
    outcome,
    read_resource,
    respond,
    update_creates,
)
from ehr_api.fhir_store.models import FhirResource
from ehr_api.fhir_store.routes_audit import routes as audit_routes
from ehr_api.fhir_store.routes_bundle import routes as bundle_routes
from ehr_api.fhir_store.routes_everything import routes as everything_routes
from ehr_api.fhir_store.routes_ops import routes as ops_routes
from ehr_api.problems import FHIR_JSON

__all__ = ["endpoints", "routes"]


routes = FhirRouter()


@routes.get("/metadata")
async def metadata(call: FhirCall) -> Response:
    """The CapabilityStatement, to anyone: clients (SMART apps among them) read it before
    they have a token, and it holds nothing of any organisation. A credential that is
    sent is still checked (a bad one is a 401) so the audit row names its actor; without
    one the row says anonymous, as for any unauthenticated request."""
    request = call.request
    if "authorization" in request.headers:
        await call.principal()
    body = capability_statement(base_url(request), update_create=update_creates(request))
    return JSONResponse(body, media_type=FHIR_JSON)


@routes.post("/{resource_type}")
async def create(call: FhirCall) -> Response:
    """Create; conditional with `If-None-Exist`, or with the criteria in the URL
    (`POST /Patient?identifier=...`, how fhirpy's `get_or_create` and Aidbox spell it)."""
    org_id = await call.allow("create")
    request = call.request
    body = await read_resource(request)
    if_none_exist = request.headers.get("if-none-exist")
    if if_none_exist is None and request.url.query:
        if_none_exist = request.url.query
    # A plain create is one statement; a conditional one searches first.
    async with call.writes(atomic=bool(if_none_exist)) as db:
        row, created = await service.create(
            db, org_id=org_id, resource_type=call.resource_type, body=body,
            if_none_exist=if_none_exist,
        )  # fmt: skip
    return _stored(request, row, created)


def _stored(request: Request, row: FhirResource, created: bool) -> Response:
    """A create's or an update's answer: 201 or 200, Location, as `Prefer: return=` asks."""
    prefer = request.headers.get("prefer")
    return respond(request, row, status=201 if created else 200, prefer=prefer, location=True)


def _strict(request: Request) -> bool:
    """`Prefer: handling=strict` (among other preferences, `;` or `,` separated)."""
    prefer = request.headers.get("prefer", "")
    return "handling=strict" in {part.replace(" ", "") for part in re.split("[;,]", prefer)}


async def _search(call: FhirCall, org_id: uuid.UUID, query: list[tuple[str, str]]) -> Response:
    """The searchset Bundle: matches (shaped by _summary/_elements), includes, links."""
    request, resource_type = call.request, call.resource_type
    base = base_url(request)
    async with call.reads() as db:
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


@routes.get("")
async def search_system(call: FhirCall) -> Response:
    """Search across the types `_type` names (each needs the search permission)."""
    await call.principal()
    request = call.request
    query = list(request.query_params.multi_items())
    types = system_search.requested_types(query)
    (org_id,) = {await call.allow("search-type", resource_type=kind) for kind in types}
    base = base_url(request)
    async with call.reads() as db:
        found = await system_search.run(db, org_id=org_id, types=types, query=query, base=base)
    keys = [f"{row.resource_type}/{row.id}" for row in found.resources]
    annotate(request, resource_ids=keys)
    links = [{"relation": "self", "url": f"{base}?{urlencode(query)}"}]
    if found.next_cursor:
        after = urlencode([*found.applied, ("_cursor", found.next_cursor)])
        links.append({"relation": "next", "url": f"{base}?{after}"})
    entries = [
        {"fullUrl": f"{base}/{key}", "resource": row.content, "search": {"mode": "match"}}
        for key, row in zip(keys, found.resources, strict=True)
    ]
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": found.total,
              "link": links, "entry": entries}  # fmt: skip
    return JSONResponse(bundle, media_type=FHIR_JSON)


@routes.get("/{resource_type}")
async def search(call: FhirCall) -> Response:
    org_id = await call.allow("search-type")
    return await _search(call, org_id, list(call.request.query_params.multi_items()))


@routes.post("/{resource_type}/_search")
async def search_post(call: FhirCall) -> Response:
    """Search with form-encoded parameters (URL parameters count too); same as GET."""
    org_id = await call.allow("search-type")
    request = call.request
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("", "application/x-www-form-urlencoded"):
        raise service.BadRequestError(f"_search takes form-encoded parameters, not {kind!r}")
    try:
        form = parse_qsl((await request.body()).decode(), keep_blank_values=True)
    except UnicodeDecodeError as exc:
        raise service.BadRequestError(f"the form is not UTF-8: {exc}") from exc
    return await _search(call, org_id, [*request.query_params.multi_items(), *form])


@routes.get("/{resource_type}/{resource_id}")
async def read(call: FhirCall) -> Response:
    """Read; `_summary` / `_elements` shape the answer as they do a search's entries;
    304 when `If-None-Match` / `If-Modified-Since` say the client's copy is current.

    One SELECT on a scoped connection (PostgreSQL; `Database.org_reads`): no ORM session,
    no BEGIN or COMMIT, whose machinery and round trips were most of a read's cost."""
    org_id = await call.allow("read")
    request, resource_type = call.request, call.resource_type
    async with call.reads() as db:
        row = await service.get(
            db, org_id=org_id, resource_type=resource_type, resource_id=call.resource_id
        )
    headers = request.headers
    if not_modified(
        row.version_id,
        row.last_updated,
        if_none_match=headers.get("if-none-match"),
        if_modified_since=headers.get("if-modified-since"),
    ):
        return respond(request, row, status=304, prefer="return=minimal")
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


@routes.get("/{resource_type}/{resource_id}/_history/{version}")
async def vread(call: FhirCall) -> Response:
    org_id = await call.allow("vread")
    async with call.reads() as db:
        row = await service.get_version(
            db, org_id=org_id, resource_type=call.resource_type, resource_id=call.resource_id,
            version=call.params["version"],
        )  # fmt: skip
    return respond(call.request, row)


@routes.put("/{resource_type}/{resource_id}")
async def update(call: FhirCall) -> Response:
    org_id = await call.allow("update")
    request = call.request
    body = await read_resource(request)
    # One read and one write, each atomic; service.update takes the row lock only if
    # another write comes in between.
    async with call.writes(atomic=False) as db:
        row, created = await service.update(
            db,
            org_id=org_id,
            resource_type=call.resource_type,
            resource_id=call.resource_id,
            body=body,
            if_match=if_match(request.headers.get("if-match")),
            allow_create=update_creates(request),
        )
    return _stored(request, row, created)


@routes.delete("/{resource_type}/{resource_id}")
async def delete(call: FhirCall) -> Response:
    org_id = await call.allow("delete")
    resource_type, resource_id = call.resource_type, call.resource_id
    async with call.writes(atomic=False) as db:  # as update
        row = await service.delete(
            db, org_id=org_id, resource_type=resource_type, resource_id=resource_id
        )
    annotate(call.request, resource_type=resource_type, resource_ids=[resource_id])
    return _deletion(row, nothing="nothing to delete")


def _deletion(row: FhirResource | None, *, nothing: str) -> Response:
    """200 with an informational OperationOutcome (and the tombstone's ETag)."""
    text = f"{row.resource_type}/{row.id} deleted" if row else nothing
    headers = {"ETag": f'W/"{row.version_id}"'} if row else {}
    body = outcome("information", "informational", text)
    return JSONResponse(body, headers=headers, media_type=FHIR_JSON)


@routes.delete("/{resource_type}")
async def conditional_delete(call: FhirCall) -> Response:
    """DELETE with search parameters: 0 matches do nothing, 1 is deleted, several a 412."""
    org_id = await call.allow("delete")
    resource_type = call.resource_type
    async with call.writes() as db:
        row = await operations.conditional_delete(
            db, org_id=org_id, resource_type=resource_type,
            query=list(call.request.query_params.multi_items()),
        )  # fmt: skip
    annotate(call.request, resource_type=resource_type, resource_ids=[row.id] if row else [])
    return _deletion(row, nothing="nothing matched: nothing deleted")


@routes.put("/{resource_type}")
async def conditional_update(call: FhirCall) -> Response:
    """PUT with search parameters: 0 matches create, 1 updates it, several are a 412."""
    org_id = await call.allow("update")
    request = call.request
    body = await read_resource(request)
    async with call.writes() as db:
        row, created = await operations.conditional_update(
            db,
            org_id=org_id,
            resource_type=call.resource_type,
            query=list(request.query_params.multi_items()),
            body=body,
            if_match=if_match(request.headers.get("if-match")),
            allow_create=update_creates(request),
        )
    return _stored(request, row, created)


routes.include(audit_routes)
routes.include(ops_routes)
routes.include(everything_routes)
routes.include(bundle_routes)

#: The route the app mounts first: every request under /fhir/R4.
endpoints = FhirEndpoints(routes)
