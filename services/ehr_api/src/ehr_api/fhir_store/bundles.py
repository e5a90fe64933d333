"""Batch and transaction Bundles (FHIR R4 http.html#transaction): the rules, no HTTP.

A *transaction* runs every entry in the caller's one org connection (or session); the first
failing entry raises `EntryError` (its status, expressions re-addressed to
`Bundle.entry[i]...`), and leaving the connection's block rolls back everything earlier
entries wrote (resources, history, index, event_log). A *batch* wraps each entry in a SAVEPOINT: a failure undoes that entry alone.
Both run DELETE, then POST, then PUT/PATCH, then GET/HEAD (R4's transaction order; one rule
for both) and answer in the request's order.

Transaction only: `urn:uuid:`/`urn:oid:` fullUrls of POST and PUT entries become `Type/id`
in every `reference`, `url` and narrative `div`. POST ids are assigned before anything is
written and stored through `service.update`'s create-under-this-id path (the same writes as
`service.create`), so entries may reference each other in any order, cycles included; a
POST whose `ifNoneExist` matches stands for the existing resource instead, and a POST whose
`ifNoneExist` repeats an earlier POST's (same type, same criteria in any order) stands for
whatever that one stores (one resource, not two; criteria written differently are not
recognised as the same).

Conditional references, `ifNoneExist` and conditional DELETE search strictly (an unknown
parameter is a 400, never ignored into a match) in the caller's organisation only: one
match, or the entry fails with 412. The reference rewriting and that lookup live in
bundle_references.py.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ehr_api.db import driver_sql
from ehr_api.errors import BadRequestError, DomainError, TooManyEntriesError
from ehr_api.fhir_store import bundle_references, elements, operations, service
from ehr_api.fhir_store.bundle_references import PLACEHOLDER_PREFIXES
from ehr_api.fhir_store.conditional_read import not_modified
from ehr_api.fhir_store.fhirpath_patch import is_fhirpath_patch
from ehr_api.fhir_store.models import FhirResource, FhirResourceHistory

__all__ = [
    "MAX_ENTRIES",
    "Authorize",
    "BundleResult",
    "EntryError",
    "process",
]

#: Entries one Bundle may carry; more is a 413 before anything is read or written.
MAX_ENTRIES = 1000
#: Checks one (resource type, interaction) for the caller; raises ForbiddenError.
Authorize = Callable[[str, str], Awaitable[None]]

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_WRITES = ("DELETE", "POST", "PUT", "PATCH")
_JSON_PATCH = "application/json-patch+json"


class EntryError(DomainError):
    """One entry's failure, keeping its status and pointing its expressions at the entry."""

    def __init__(self, entry: _Entry, exc: DomainError) -> None:
        where = _where(entry, exc.field)
        issues = exc.extra.get("issues")
        moved = None
        if isinstance(issues, list):
            moved = [
                {**issue, "expression": [_where(entry, text) for text in issue["expression"]]}
                if isinstance(issue, dict) and isinstance(issue.get("expression"), list)
                else issue
                for issue in issues
            ]
        label = f"Bundle.entry[{entry.index}]" + (f" ({entry.method} {entry.url})"
                                                   if entry.method else "")  # fmt: skip
        super().__init__(f"{label}: {exc.detail}", field=where, issues=moved)
        self.status, self.title, self.fhir_code = exc.status, exc.title, exc.fhir_code

    def outcome(self) -> dict[str, Any]:
        """The OperationOutcome the error handler would send for this error."""
        issues = self.extra.get("issues")
        if not issues:
            issues = [{"severity": "error", "code": self.fhir_code, "diagnostics": self.detail,
                       "expression": [self.field]}]  # fmt: skip
        return {"resourceType": "OperationOutcome", "issue": issues}


@dataclass(slots=True)
class _Entry:
    """One request entry, parsed; `query` is None when the URL has no `?`."""

    index: int
    method: str = ""
    url: str = ""
    resource_type: str = ""
    resource_id: str | None = None
    version: str | None = None
    query: list[tuple[str, str]] | None = None
    resource: dict[str, Any] | None = None
    full_url: str | None = None
    if_match: int | None = None
    if_none_exist: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None


@dataclass(frozen=True, slots=True)
class BundleResult:
    """The response Bundle and every `Type/id` read or written (for the audit row)."""

    bundle: dict[str, Any]
    touched: list[str]


@dataclass(slots=True)
class _Context:
    db: AsyncSession | AsyncConnection
    org_id: uuid.UUID
    authorize: Authorize
    base: str
    prefer: str
    transaction: bool
    #: the server's update-as-create switch (PUT entries to unknown ids).
    allow_create: bool = True
    touched: dict[str, None] = field(default_factory=dict)
    #: transaction: the `Type/id` each POST entry stores or (ifNoneExist) stands for.
    assigned: dict[int, str] = field(default_factory=dict)
    existing: dict[int, FhirResource] = field(default_factory=dict)
    #: transaction: POST entries whose ifNoneExist repeats an earlier POST's (same type,
    #: same criteria) that nothing stored matched: they stand for what that entry creates.
    same_as: dict[int, int] = field(default_factory=dict)
    #: transaction: the entry that writes each `Type/id` (two entries may not).
    claims: dict[str, int] = field(default_factory=dict)
    resolved: dict[str, str] = field(default_factory=dict)


async def process(
    db: AsyncSession | AsyncConnection,
    *,
    org_id: uuid.UUID,
    bundle: Any,
    authorize: Authorize,
    base: str,
    prefer: str = "representation",
    allow_create: bool = True,
) -> BundleResult:
    """Run a batch or transaction Bundle for `org_id`; the response Bundle, in order.

    Raises:
        BadRequestError: not a Bundle of type batch or transaction, or entries not a list.
        TooManyEntriesError: more than `MAX_ENTRIES` entries (413).
        EntryError: (transaction only) the first failing entry, with its status.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BadRequestError("the body must be a Bundle", field="Bundle.resourceType")
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise BadRequestError(
            f"Bundle.type must be 'batch' or 'transaction', not {kind!r}", field="Bundle.type"
        )
    raw = bundle.get("entry", [])
    if not isinstance(raw, list):
        raise BadRequestError("Bundle.entry must be a list", field="Bundle.entry")
    if len(raw) > MAX_ENTRIES:
        raise TooManyEntriesError(
            f"a Bundle may carry at most {MAX_ENTRIES} entries, this one has {len(raw)}",
            field="Bundle.entry",
        )
    ctx = _Context(
        db, org_id, authorize, base, prefer, transaction=kind == "transaction",
        allow_create=allow_create,
    )  # fmt: skip
    run = _transaction if ctx.transaction else _batch
    responses = await run(ctx, copy.deepcopy(raw))
    body = {"resourceType": "Bundle", "type": f"{kind}-response", "entry": responses}
    return BundleResult(body, list(ctx.touched))


# -- the two modes ------------------------------------------------------------------------


async def _transaction(ctx: _Context, raw: list[Any]) -> list[dict[str, Any]]:
    entries = [_parse(index, item, ctx.base) for index, item in enumerate(raw)]
    for entry in entries:
        await _guard(entry, _permit(ctx, entry))
    placeholders = await _plan(ctx, entries)
    for entry in entries:
        if entry.resource is not None and entry.method in ("POST", "PUT"):
            _guard_now(entry, bundle_references.replace_placeholders, entry.resource,
                       _root(entry), placeholders)  # fmt: skip
    responses: list[dict[str, Any]] = [{} for _ in entries]
    for entry in sorted(entries, key=lambda e: (_ORDER[e.method], e.index)):
        responses[entry.index] = await _guard(entry, _run(ctx, entry))
    return responses


async def _batch(ctx: _Context, raw: list[Any]) -> list[dict[str, Any]]:
    responses: list[dict[str, Any]] = [{} for _ in raw]
    entries: list[_Entry] = []
    for index, item in enumerate(raw):
        try:
            entries.append(_parse(index, item, ctx.base))
        except EntryError as exc:
            responses[index] = _failed(exc)
    for entry in sorted(entries, key=lambda e: (_ORDER[e.method], e.index)):
        try:
            async with driver_sql.savepoint(ctx.db):
                await _guard(entry, _permit(ctx, entry))
                responses[entry.index] = await _guard(entry, _run(ctx, entry))
        except EntryError as exc:
            responses[entry.index] = _failed(exc)
    return responses


async def _guard(entry: _Entry, work: Awaitable[Any]) -> Any:
    """Await `work`, turning a domain error into this entry's `EntryError`."""
    try:
        return await work
    except EntryError:
        raise
    except DomainError as exc:
        raise EntryError(entry, exc) from exc


def _guard_now(entry: _Entry, work: Callable[..., None], *args: Any) -> None:
    """Call `work(*args)`, turning a domain error into this entry's `EntryError`."""
    try:
        work(*args)
    except DomainError as exc:
        raise EntryError(entry, exc) from exc


def _failed(exc: EntryError) -> dict[str, Any]:
    return {"response": {"status": _status(exc.status), "outcome": exc.outcome()}}


# -- parsing and checks ---------------------------------------------------------------------


def _parse(index: int, item: Any, base: str) -> _Entry:
    entry = _Entry(index)
    _guard_now(entry, _fill, entry, item, base)
    return entry


def _fill(entry: _Entry, item: Any, base: str) -> None:
    at = f"Bundle.entry[{entry.index}]"
    request = item.get("request") if isinstance(item, dict) else None
    if not isinstance(request, dict):
        raise BadRequestError("the entry has no request", field=f"{at}.request")
    method, url = request.get("method"), request.get("url")
    if method not in _ORDER:
        raise BadRequestError(f"request.method {method!r} is not one of GET, HEAD, POST, PUT,"
                              " PATCH, DELETE", field=f"{at}.request.method")  # fmt: skip
    if not isinstance(url, str) or not url.strip():
        raise BadRequestError("request.url is required", field=f"{at}.request.url")
    entry.method, entry.url = method, url
    resource, full_url = item.get("resource"), item.get("fullUrl")
    if resource is not None and not isinstance(resource, dict):
        raise BadRequestError("the resource must be a JSON object", field=f"{at}.resource")
    entry.resource = resource
    entry.full_url = full_url if isinstance(full_url, str) else None
    entry.if_match = _version(request.get("ifMatch"), f"{at}.request.ifMatch")
    for name in ("ifNoneMatch", "ifModifiedSince"):
        if not isinstance(request.get(name, ""), str):
            raise BadRequestError(f"{name} must be a string", field=f"{at}.request.{name}")
    entry.if_none_match = request.get("ifNoneMatch")
    entry.if_modified_since = request.get("ifModifiedSince")
    if_none_exist = request.get("ifNoneExist")
    entry.if_none_exist = if_none_exist if isinstance(if_none_exist, str) else None
    relative = url.removeprefix(base + "/") if url.startswith(base + "/") else url
    parts = urlsplit(relative)
    segments = parts.path.strip("/").split("/")
    entry.resource_type = segments[0]
    if "?" in relative:
        entry.query = parse_qsl(parts.query, keep_blank_values=True)
    if len(segments) == 4 and segments[2] == "_history" and method in ("GET", "HEAD"):
        entry.resource_id, entry.version = segments[1], segments[3]
    elif len(segments) == 2 and method != "POST":
        entry.resource_id = segments[1]
    elif len(segments) != 1:
        raise BadRequestError(f"{method} {url} is not an interaction a Bundle entry may carry",
                              field=f"{at}.request.url")  # fmt: skip
    elif method in ("PUT", "DELETE", "PATCH") and not entry.query:
        raise BadRequestError(f"{method} on a type needs search criteria ({url!r})",
                              field=f"{at}.request.url")  # fmt: skip
    if method in ("POST", "PUT", "PATCH") and resource is None:
        raise BadRequestError(f"a {method} entry needs a resource", field=f"{at}.resource")


def _version(value: Any, where: str) -> int | None:
    """The version an ifMatch names (`W/"3"` -> 3)."""
    if value is None:
        return None
    digits = str(value).strip().removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise BadRequestError(f'ifMatch must look like W/"1", got {value!r}', field=where)
    return int(digits)


async def _permit(ctx: _Context, entry: _Entry) -> None:
    """404 for a type we do not serve (before any permission is asked), else RBAC."""
    service.check_type(entry.resource_type)
    read = "vread" if entry.version else "read" if entry.resource_id else "search-type"
    interaction = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    await ctx.authorize(entry.resource_type, interaction.get(entry.method, read))


def _claim(ctx: _Context, key: str, entry: _Entry) -> None:
    """Transaction rule: no two entries may write (or stand for) the same resource."""
    if not ctx.transaction:
        return
    other = ctx.claims.setdefault(key, entry.index)
    if other != entry.index:
        raise BadRequestError(
            f"{key} is named by Bundle.entry[{other}] and Bundle.entry[{entry.index}]: a"
            " transaction may write a resource (or use a fullUrl) once",
            field=f"Bundle.entry[{entry.index}]",
        )  # fmt: skip


async def _plan(ctx: _Context, entries: list[_Entry]) -> dict[str, str]:
    """Claim literal targets, give each POST its id (or its ifNoneExist match); return
    urn fullUrl -> `Type/id` for the POST entries and the PUT entries with an id."""
    for entry in entries:
        if entry.full_url:
            _guard_now(entry, _claim, ctx, entry.full_url, entry)
        if entry.method in _WRITES and entry.resource_id is not None:
            _guard_now(entry, _claim, ctx, f"{entry.resource_type}/{entry.resource_id}", entry)
    first_with: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for entry in entries:
        if entry.method != "POST":
            continue
        found = None
        if entry.if_none_exist:
            query = parse_qsl(entry.if_none_exist, keep_blank_values=True)
            criteria = (entry.resource_type, tuple(sorted(query)))
            if criteria in first_with:  # an earlier entry creates (or found) the match
                ctx.same_as[entry.index] = first_with[criteria]
                ctx.assigned[entry.index] = ctx.assigned[first_with[criteria]]
                continue
            first_with[criteria] = entry.index
            found = await _guard(entry, _match(ctx, entry.resource_type, query, "ifNoneExist"))
        if found is not None:
            ctx.existing[entry.index] = found
            ctx.assigned[entry.index] = f"{found.resource_type}/{found.id}"
            _guard_now(entry, _claim, ctx, ctx.assigned[entry.index], entry)
        else:
            ctx.assigned[entry.index] = f"{entry.resource_type}/{uuid.uuid4()}"
    placeholders: dict[str, str] = {}
    for entry in entries:
        if entry.full_url and entry.full_url.startswith(PLACEHOLDER_PREFIXES):
            if entry.method == "POST":
                placeholders[entry.full_url] = ctx.assigned[entry.index]
            elif entry.method == "PUT" and entry.resource_id is not None:
                placeholders[entry.full_url] = f"{entry.resource_type}/{entry.resource_id}"
    return placeholders


# -- conditional lookups --------------------------------------------------------------------


async def _match(
    ctx: _Context, resource_type: str, query: list[tuple[str, str]], what: str
) -> FhirResource | None:
    """The one resource of this organisation matching `query` (`bundle_references.match_one`)."""
    return await bundle_references.match_one(
        ctx.db, org_id=ctx.org_id, base=ctx.base, resource_type=resource_type, query=query,
        what=what,
    )  # fmt: skip


async def _conditional_references(ctx: _Context, entry: _Entry) -> None:
    """Rewrite `Type?criteria` references to the one matching `Type/id` (else 412)."""

    async def find(target_type: str, query: list[tuple[str, str]]) -> FhirResource | None:
        service.check_type(target_type)
        await ctx.authorize(target_type, "search-type")
        return await _match(ctx, target_type, query, "the conditional reference")

    await bundle_references.resolve_conditional(
        entry.resource or {}, _root(entry), find=find, resolved=ctx.resolved,
        touched=ctx.touched,
    )  # fmt: skip


# -- running one entry ----------------------------------------------------------------------


async def _run(ctx: _Context, entry: _Entry) -> dict[str, Any]:
    if entry.method in ("GET", "HEAD"):
        return await _read(ctx, entry)
    if entry.method == "DELETE":
        return await _delete(ctx, entry)
    if entry.method == "POST":
        return await _create(ctx, entry)
    db, org_id, kind, body = ctx.db, ctx.org_id, entry.resource_type, entry.resource or {}
    await _conditional_references(ctx, entry)
    if entry.method == "PATCH" and entry.resource_id is not None:
        row = await operations.patch(
            db, org_id=org_id, resource_type=kind, resource_id=entry.resource_id,
            operations=_patch_document(body), if_match=entry.if_match,
        )  # fmt: skip
        return _written(ctx, row, 200)
    if entry.method == "PATCH":
        row = await operations.conditional_patch(
            db, org_id=org_id, resource_type=kind, query=entry.query or [],
            operations=_patch_document(body), if_match=entry.if_match,
        )  # fmt: skip
        _claim(ctx, f"{kind}/{row.id}", entry)
        return _written(ctx, row, 200)
    if entry.resource_id is not None:
        row, created = await service.update(
            db, org_id=org_id, resource_type=kind, resource_id=entry.resource_id, body=body,
            if_match=entry.if_match, allow_create=ctx.allow_create,
        )  # fmt: skip
    else:
        row, created = await operations.conditional_update(
            db, org_id=org_id, resource_type=kind, query=entry.query or [], body=body,
            if_match=entry.if_match, allow_create=ctx.allow_create,
        )  # fmt: skip
        _claim(ctx, f"{kind}/{row.id}", entry)
    return _written(ctx, row, 201 if created else 200)


async def _create(ctx: _Context, entry: _Entry) -> dict[str, Any]:
    """POST: in a transaction under the id `_plan` assigned (or its ifNoneExist match)."""
    db, org_id, kind = ctx.db, ctx.org_id, entry.resource_type
    if entry.index in ctx.existing:
        return _written(ctx, ctx.existing[entry.index], 200)
    if entry.index in ctx.same_as:  # POSTs run in request order: the first one ran
        first = ctx.assigned[entry.index].partition("/")[2]
        row = await service.get(db, org_id=org_id, resource_type=kind, resource_id=first)
        return _written(ctx, row, 200)
    await _conditional_references(ctx, entry)
    body = entry.resource or {}
    if ctx.transaction:
        new_id = ctx.assigned[entry.index].partition("/")[2]
        row, _ = await service.update(db, org_id=org_id, resource_type=kind, resource_id=new_id,
                                      body={**body, "id": new_id})  # fmt: skip
        return _written(ctx, row, 201)
    if entry.if_none_exist:
        query = parse_qsl(entry.if_none_exist, keep_blank_values=True)
        found = await _match(ctx, kind, query, "ifNoneExist")
        if found is not None:
            return _written(ctx, found, 200)
    row, _ = await service.create(db, org_id=org_id, resource_type=kind, body=body)
    return _written(ctx, row, 201)


def _patch_document(resource: dict[str, Any]) -> Any:
    """What a PATCH entry carries: a FHIRPath Patch (Parameters), or a JSON Patch inside
    a Binary (R4 has no other JSON form for it)."""
    if is_fhirpath_patch(resource):
        return resource
    if resource.get("resourceType") != "Binary" or resource.get("contentType") != _JSON_PATCH:
        raise BadRequestError(f"a PATCH entry's resource must be a Parameters (FHIRPath Patch)"
                              f" or a Binary with contentType {_JSON_PATCH}",
                              field="resourceType")  # fmt: skip
    try:
        return json.loads(base64.b64decode(str(resource.get("data", "")), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise BadRequestError(f"Binary.data is not base64 JSON: {exc}", field="data") from exc


async def _delete(ctx: _Context, entry: _Entry) -> dict[str, Any]:
    resource_id = entry.resource_id
    if resource_id is None:
        found = await _match(ctx, entry.resource_type, entry.query or [], "the conditional delete")
        resource_id = found.id if found is not None else None
    key = f"{entry.resource_type}/{resource_id}"
    row = None
    if resource_id is not None:
        _claim(ctx, key, entry)
        row = await service.delete(ctx.db, org_id=ctx.org_id, resource_type=entry.resource_type,
                                   resource_id=resource_id)  # fmt: skip
        ctx.touched.setdefault(key)
    response: dict[str, Any] = {"status": _status(200)}
    if row is not None:
        response["etag"] = f'W/"{row.version_id}"'
    response["outcome"] = _informational(f"{key} deleted" if row else "nothing to delete")
    return {"response": response}


async def _read(ctx: _Context, entry: _Entry) -> dict[str, Any]:
    """GET/HEAD: read, vread or search; HEAD answers without the resource."""
    kind, key = entry.resource_type, {"resource_type": entry.resource_type}
    if entry.resource_id is None:
        return await _search(ctx, entry)
    row: FhirResource | FhirResourceHistory
    if entry.version is not None:
        row = await service.get_version(ctx.db, org_id=ctx.org_id, **key,
                                        resource_id=entry.resource_id, version=entry.version)  # fmt: skip
    else:
        row = await service.get(ctx.db, org_id=ctx.org_id, **key, resource_id=entry.resource_id)
    ctx.touched.setdefault(f"{kind}/{row.id}")
    answer: dict[str, Any] = {"fullUrl": f"{ctx.base}/{kind}/{row.id}"}
    current = not_modified(row.version_id, row.last_updated, if_none_match=entry.if_none_match,
                           if_modified_since=entry.if_modified_since)  # fmt: skip
    if entry.method == "GET" and not current:
        answer["resource"] = row.content
    answer["response"] = {"status": _status(304 if current else 200),
                          "etag": f'W/"{row.version_id}"',
                          "lastModified": row.last_updated.isoformat()}  # fmt: skip
    return answer


async def _search(ctx: _Context, entry: _Entry) -> dict[str, Any]:
    """A search entry's searchset Bundle (matches shaped by _summary/_elements, includes)."""
    kind = entry.resource_type
    found = await service.search(ctx.db, org_id=ctx.org_id, resource_type=kind,
                                 query=entry.query or [], base=ctx.base)  # fmt: skip
    matches = []
    for mode, rows in (("match", found.resources), ("include", found.included)):
        for row in rows:
            ctx.touched.setdefault(f"{row.resource_type}/{row.id}")
            content, summary = row.content, found.summary
            if mode == "match":
                content = elements.shape(kind, content, summary=summary, elements=found.elements)
            matches.append({"fullUrl": f"{ctx.base}/{row.resource_type}/{row.id}",
                            "resource": content, "search": {"mode": mode}})  # fmt: skip
    links = [{"relation": "self", "url": f"{ctx.base}/{kind}?{urlencode(found.applied)}"}]
    if found.next_cursor:
        page = urlencode([*found.applied, ("_cursor", found.next_cursor)])
        links.append({"relation": "next", "url": f"{ctx.base}/{kind}?{page}"})
    searchset: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if found.total_known:
        searchset["total"] = found.total
    searchset.update(link=links, entry=matches)
    answer: dict[str, Any] = {"response": {"status": _status(200)}}
    if entry.method == "GET":
        answer["resource"] = searchset
    return answer


def _written(ctx: _Context, row: FhirResource, status: int) -> dict[str, Any]:
    """A write's entry: location, etag, lastModified; the body as `Prefer: return=` asks."""
    key = f"{row.resource_type}/{row.id}"
    ctx.touched.setdefault(key)
    response: dict[str, Any] = {
        "status": _status(status),
        "location": f"{key}/_history/{row.version_id}",
        "etag": f'W/"{row.version_id}"',
        "lastModified": row.last_updated.isoformat(),
    }
    answer: dict[str, Any] = {"fullUrl": f"{ctx.base}/{key}"}
    if ctx.prefer == "representation":
        answer["resource"] = row.content
    elif ctx.prefer == "OperationOutcome":
        response["outcome"] = _informational(f"{key} version {row.version_id} stored")
    answer["response"] = response
    return answer


def _informational(text: str) -> dict[str, Any]:
    issue = {"severity": "information", "code": "informational", "diagnostics": text}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"


def _where(entry: _Entry, expression: str | None) -> str:
    """An error's expression re-addressed to the entry (`Patient.name` -> `...resource.name`)."""
    at = f"Bundle.entry[{entry.index}]"
    if not expression:
        return at
    if expression.startswith("Bundle."):
        return expression
    if entry.method in ("GET", "HEAD", "DELETE") or entry.resource is None:
        return f"{at}.request.url"
    if entry.method == "PATCH":  # the resource is the Binary carrying the patch
        return f"{at}.resource" + (f".{expression}" if expression in ("data", "resourceType")
                                   else "")  # fmt: skip
    root = _root(entry)
    if expression == root or expression.startswith((root + ".", root + "[")):
        return f"{at}.resource{expression[len(root) :]}"
    return f"{at}.resource.{expression}"


def _root(entry: _Entry) -> str:
    """The FHIRPath root of an entry's resource (its resourceType, else the URL's type)."""
    return str((entry.resource or {}).get("resourceType") or entry.resource_type)
