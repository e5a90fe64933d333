"""The FHIR store's rules: versions, tombstones, preconditions, validation, events.

No HTTP here: routes translate headers into keywords and results into responses. Every
change writes the current row, a history version, the search index and an event_log row
through the one session, so they commit (or roll back) together.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

from hl7_fhir.fhir import resource_model, validate_resource
from sqlalchemy.ext.asyncio import AsyncSession

from ehr_api.auth.rbac import Policy
from ehr_api.db.base import utcnow
from ehr_api.errors import (
    BadRequestError,
    GoneError,
    InvalidError,
    NotFoundError,
    PreconditionFailedError,
)
from ehr_api.fhir_store import repository
from ehr_api.fhir_store.models import FhirResource, FhirResourceHistory
from ehr_api.fhir_store.repository import TokenQuery

__all__ = [
    "DEFAULT_COUNT",
    "MAX_COUNT",
    "SEARCH_PARAMETERS",
    "BadRequestError",
    "GoneError",
    "PreconditionFailedError",
    "SearchResult",
    "check_id",
    "check_type",
    "create",
    "delete",
    "get",
    "get_version",
    "search",
    "supported_types",
    "update",
    "validate_body",
    "write",
]

DEFAULT_COUNT = 20
MAX_COUNT = 1000
#: Search parameters of this slice (every type): name -> FHIR search type.
SEARCH_PARAMETERS: Mapping[str, str] = {"_id": "token", "identifier": "token"}
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass(frozen=True, slots=True)
class SearchResult:
    total: int
    resources: list[FhirResource]
    #: The parameters understood, normalised: what the Bundle's self link shows.
    applied: list[tuple[str, str]]


@cache
def supported_types() -> frozenset[str]:
    """Every R4 type the policy places (so RBAC can answer) and the validator knows.

    AuditEvent is left out on purpose: it will be the read-only view of the audit log.
    """
    names = {obj.removeprefix("fhir:") for obj, _ in Policy.default().object_groups}
    return frozenset(name for name in names if resource_model(name) is not None)


def check_type(resource_type: str) -> None:
    if resource_type not in supported_types():
        raise NotFoundError(f"resource type {resource_type!r} is not supported")


def check_id(resource_id: str) -> None:
    if not _ID.fullmatch(resource_id):
        raise BadRequestError(f"{resource_id!r} is not a valid FHIR id", field="id")


def validate_body(resource_type: str, body: Mapping[str, Any]) -> None:
    """BadRequestError for a wrong resourceType, InvalidError (422) with every issue."""
    if body.get("resourceType") != resource_type:
        raise BadRequestError(
            f"resourceType must be {resource_type!r}, got {body.get('resourceType')!r}",
            field="resourceType",
        )
    issues = validate_resource(dict(body))
    if issues:
        raise InvalidError(
            "; ".join(f"{issue.expression}: {issue.diagnostics}" for issue in issues),
            field=issues[0].expression,
            issues=[issue.to_dict() for issue in issues],
        )


def _tokens(content: Mapping[str, Any]) -> Iterable[tuple[str, str, str]]:
    """The `identifier` tokens of a resource (its `_id` lives in the current row)."""
    identifiers = content.get("identifier")
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    for item in identifiers if isinstance(identifiers, list) else ():
        if isinstance(item, dict) and isinstance(item.get("value"), str):
            yield "identifier", str(item.get("system") or ""), item["value"]


async def write(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    row: FhirResource,
    content: dict[str, Any] | None,
    event_type: str,
) -> FhirResource:
    """Stamp the new version on `row`, then history, index and event in one flush."""
    now = utcnow()
    row.last_updated = now
    row.deleted = content is None
    if content is not None:
        meta = dict(content.get("meta") or {})
        meta.update(versionId=str(row.version_id), lastUpdated=now.isoformat())
        content = {**content, "id": row.id, "meta": meta}
    row.content = content or {"resourceType": row.resource_type, "id": row.id}
    db.add(row)
    await repository.add_version(db, org_id=org_id, row=row)
    await repository.replace_tokens(
        db,
        org_id=org_id,
        resource_type=row.resource_type,
        resource_id=row.id,
        tokens=_tokens(content) if content is not None else (),
    )
    await repository.add_event(db, org_id=org_id, event_type=event_type, row=row)
    await db.flush()
    return row


async def get(
    db: AsyncSession, *, org_id: uuid.UUID, resource_type: str, resource_id: str
) -> FhirResource:
    """The current version.

    Raises:
        NotFoundError: unknown type, or no such resource in this organisation.
        GoneError: the resource was deleted.
    """
    check_type(resource_type)
    row = await repository.get_current(
        db, org_id=org_id, resource_type=resource_type, resource_id=resource_id
    )
    if row is None:
        raise NotFoundError(f"{resource_type}/{resource_id} is not known")
    if row.deleted:
        raise GoneError(f"{resource_type}/{resource_id} was deleted")
    return row


async def get_version(
    db: AsyncSession, *, org_id: uuid.UUID, resource_type: str, resource_id: str, version: str
) -> FhirResourceHistory:
    """One version (vread). Raises NotFoundError, or GoneError for a tombstone version."""
    check_type(resource_type)
    row = None
    if version.isdigit():
        row = await repository.get_version(
            db,
            org_id=org_id,
            resource_type=resource_type,
            resource_id=resource_id,
            version=int(version),
        )
    if row is None:
        raise NotFoundError(f"{resource_type}/{resource_id}/_history/{version} is not known")
    if row.deleted:
        raise GoneError(f"{resource_type}/{resource_id} version {version} is a deletion")
    return row


async def create(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    body: Mapping[str, Any],
    if_none_exist: str | None = None,
) -> tuple[FhirResource, bool]:
    """Store a new resource under a server-assigned id; (row, created).

    With `if_none_exist` (a search query), one match in this organisation is returned
    instead (created False); several matches raise PreconditionFailedError.

    Raises:
        NotFoundError, BadRequestError, InvalidError (422), PreconditionFailedError.
    """
    check_type(resource_type)
    validate_body(resource_type, body)
    if if_none_exist:
        found = await search(
            db, org_id=org_id, resource_type=resource_type, query=parse_qsl(if_none_exist)
        )
        if found.total > 1:
            raise PreconditionFailedError(f"If-None-Exist matched {found.total} resources")
        if found.total == 1:
            return found.resources[0], False
    row = FhirResource(
        org_id=org_id, resource_type=resource_type, id=str(uuid.uuid4()), version_id=1
    )
    return await write(
        db, org_id=org_id, row=row, content=dict(body), event_type="fhir.created"
    ), True


async def update(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    resource_id: str,
    body: Mapping[str, Any],
    if_match: int | None = None,
) -> tuple[FhirResource, bool]:
    """Write the next version (or create under the client's id); (row, created).

    Raises:
        BadRequestError: bad id, or the body's id differs from the URL's.
        PreconditionFailedError: `if_match` is not the current version.
        NotFoundError, InvalidError.
    """
    check_type(resource_type)
    check_id(resource_id)
    if body.get("id") != resource_id:
        raise BadRequestError("the resource's id must match the URL's id", field="id")
    validate_body(resource_type, body)
    row = await repository.get_current(
        db, org_id=org_id, resource_type=resource_type, resource_id=resource_id
    )
    current = None if row is None or row.deleted else row.version_id
    if if_match is not None and if_match != current:
        raise PreconditionFailedError(
            f"If-Match version {if_match} is not the current version ({current})"
        )
    if row is None:
        row = FhirResource(org_id=org_id, resource_type=resource_type, id=resource_id, version_id=1)
    else:
        row.version_id += 1
    event = "fhir.updated" if current is not None else "fhir.created"
    return await write(
        db, org_id=org_id, row=row, content=dict(body), event_type=event
    ), current is None


async def delete(
    db: AsyncSession, *, org_id: uuid.UUID, resource_type: str, resource_id: str
) -> FhirResource | None:
    """Write a tombstone version; None when there was nothing live to delete (idempotent)."""
    check_type(resource_type)
    row = await repository.get_current(
        db, org_id=org_id, resource_type=resource_type, resource_id=resource_id
    )
    if row is None or row.deleted:
        return None
    row.version_id += 1
    return await write(db, org_id=org_id, row=row, content=None, event_type="fhir.deleted")


def _token(param: str, value: str) -> TokenQuery:
    if "|" not in value:
        return TokenQuery(param, None, value or None)
    system, code = value.split("|", 1)
    return TokenQuery(param, system, code or None)


async def search(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    query: Sequence[tuple[str, str]],
) -> SearchResult:
    """Search-type with `_id`, `identifier` (token) and `_count`; others are ignored.

    Raises:
        BadRequestError: a `_count` that is not a non-negative integer.
    """
    check_type(resource_type)
    ids: list[str] | None = None
    tokens: list[TokenQuery] = []
    applied: list[tuple[str, str]] = []
    limit = DEFAULT_COUNT
    for name, value in query:
        if name == "_id":
            wanted = [item for item in value.split(",") if item]
            ids = wanted if ids is None else [item for item in ids if item in wanted]
        elif name == "identifier":
            tokens.append(_token(name, value))  # one value; comma = OR comes later
        elif name == "_count":
            if not value.isdigit():
                raise BadRequestError(f"_count must be a number, got {value!r}", field="_count")
            limit = min(int(value), MAX_COUNT)
        else:
            continue
        applied.append((name, value))
    total = await repository.count(
        db, org_id=org_id, resource_type=resource_type, ids=ids, tokens=tokens
    )
    rows = []
    if limit:
        rows = await repository.search(
            db, org_id=org_id, resource_type=resource_type, ids=ids, tokens=tokens, limit=limit
        )
    return SearchResult(total, rows, applied)
