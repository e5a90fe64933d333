"""The FHIR store's rules: versions, tombstones, preconditions, validation, events.

No HTTP here: routes translate headers into keywords and results into responses. Every
change writes the current row, a history version, the search index and an event_log row
in the caller's one transaction (an org connection, or an org session in bundles), so
they commit (or roll back) together.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import cache
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from hl7_fhir.fhir import is_r4_type, validate_resource
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ehr_api.auth.rbac import Policy
from ehr_api.db import driver_sql
from ehr_api.db.base import utcnow
from ehr_api.db.scoped_pool import ScopedConnection
from ehr_api.db.session import CrossTenantError, current_org_id
from ehr_api.errors import (
    BadRequestError,
    ConflictError,
    GoneError,
    InvalidError,
    MethodNotAllowedError,
    NotFoundError,
    PreconditionFailedError,
)
from ehr_api.fhir_store import indexing, pg_write, repository
from ehr_api.fhir_store import search as search_engine
from ehr_api.fhir_store.indexing import IndexRows
from ehr_api.fhir_store.models import FhirResource, FhirResourceHistory
from ehr_api.fhir_store.search import SearchResult

_T = TypeVar("_T")

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

DEFAULT_COUNT = search_engine.DEFAULT_COUNT
MAX_COUNT = search_engine.MAX_COUNT
#: Search parameters of this slice (every type): name -> FHIR search type.
SEARCH_PARAMETERS: Mapping[str, str] = {"_id": "token", "identifier": "token"}
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@cache
def supported_types() -> frozenset[str]:
    """Every R4 type the policy places (so RBAC can answer) and the validator knows.

    AuditEvent is left out on purpose: it is the read-only view of the audit log
    (`audit_events`, routed before the generic routes).
    """
    names = {obj.removeprefix("fhir:") for obj, _ in Policy.default().object_groups}
    return frozenset(name for name in names if is_r4_type(name))


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


def _index(resource_type: str, content: Mapping[str, Any] | None) -> IndexRows | None:
    """The search index rows of a version (None for a deletion: it leaves no rows)."""
    return None if content is None else indexing.index(resource_type, content)


async def write(
    db: AsyncSession | AsyncConnection,
    *,
    org_id: uuid.UUID,
    row: FhirResource,
    content: dict[str, Any] | None,
    event_type: str,
    existed: bool,
) -> FhirResource:
    """Stamp the new version on `row`, then write it with its history, index and event.

    `existed`: the row was read (locked) from the table, so it is updated, not inserted.
    Core statements on a session or a Core connection alike: one statement on PostgreSQL
    (`pg_write`), a few elsewhere (`repository.write_version`).
    """
    if org_id != current_org_id(db):
        raise CrossTenantError(f"write for org {org_id} in another organisation's session")
    now = utcnow()
    row.last_updated = now
    row.deleted = content is None
    if content is not None:
        meta = dict(content.get("meta") or {})
        meta.update(versionId=str(row.version_id), lastUpdated=now.isoformat())
        content = {**content, "id": row.id, "meta": meta}
    row.content = content or {"resourceType": row.resource_type, "id": row.id}
    rows = _index(row.resource_type, content)
    writer = pg_write.write_version if driver_sql.on_postgresql(db) else repository.write_version
    try:
        written = await writer(
            db, org_id=org_id, row=row, existed=existed, rows=rows, event_type=event_type
        )
    except IntegrityError as exc:
        # Another transaction wrote this resource (or created this id) first.
        raise ConflictError(_CONCURRENT.format(row=row), field="id") from exc
    if not written:  # the version read is no longer current (no lock was held)
        raise ConflictError(_CONCURRENT.format(row=row), field="id")
    return row


_CONCURRENT = "{row.resource_type}/{row.id} was written concurrently; read it and retry"


async def _taking_turns(
    db: AsyncSession | AsyncConnection | ScopedConnection,
    attempt: Callable[[bool], Awaitable[_T]],
) -> _T:
    """Run a read-then-write `attempt(lock)`: inside the caller's transaction with the
    row locked; on an autocommit connection first without a lock (one read, one write
    that only applies over the version read), and if another write came first, again
    in a transaction holding the row lock, taking turns as the locked path always does.
    """
    if driver_sql.in_transaction(db):
        return await attempt(True)
    try:
        return await attempt(False)
    except ConflictError:
        assert isinstance(db, ScopedConnection)  # only those run in autocommit
        async with db.driver.transaction():
            return await attempt(True)


async def get(
    db: AsyncSession | AsyncConnection,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    resource_id: str,
    for_update: bool = False,
) -> FhirResource:
    """The current version (`for_update`: locked until the transaction ends).

    Raises:
        NotFoundError: unknown type, or no such resource in this organisation.
        GoneError: the resource was deleted.
    """
    check_type(resource_type)
    row = await repository.get_current(
        db,
        org_id=org_id,
        resource_type=resource_type,
        resource_id=resource_id,
        for_update=for_update,
    )
    if row is None:
        raise NotFoundError(f"{resource_type}/{resource_id} is not known")
    if row.deleted:
        raise GoneError(f"{resource_type}/{resource_id} was deleted")
    return row


async def get_version(
    db: AsyncSession | AsyncConnection,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    resource_id: str,
    version: str,
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
    db: AsyncSession | AsyncConnection,
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
        # Strict: a misspelt parameter must not be ignored and "match" everything.
        query = parse_qsl(if_none_exist, keep_blank_values=True)
        if not has_criteria(query):
            raise BadRequestError(
                "If-None-Exist needs search criteria, e.g. identifier=system|value",
                field="If-None-Exist",
            )
        found = await search(
            db, org_id=org_id, resource_type=resource_type, query=query, strict=True
        )
        if found.total > 1:
            raise PreconditionFailedError(f"If-None-Exist matched {found.total} resources")
        if found.total == 1:
            return found.resources[0], False
    row = FhirResource(
        org_id=org_id, resource_type=resource_type, id=str(uuid.uuid4()), version_id=1
    )
    return await write(
        db, org_id=org_id, row=row, content=dict(body), event_type="fhir.created", existed=False
    ), True


async def update(
    db: AsyncSession | AsyncConnection | ScopedConnection,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    resource_id: str,
    body: Mapping[str, Any],
    if_match: int | None = None,
    allow_create: bool = True,
) -> tuple[FhirResource, bool]:
    """Write the next version (or create under the client's id); (row, created).

    `allow_create=False` (the server's update-as-create switch) refuses an id that was
    never used in this organisation; a deleted resource may still be written again.

    Raises:
        BadRequestError: bad id, or the body's id differs from the URL's.
        PreconditionFailedError: `if_match` is not the current version.
        MethodNotAllowedError: update-as-create is off and the id is unknown.
        NotFoundError, InvalidError.
    """
    check_type(resource_type)
    check_id(resource_id)
    if body.get("id") != resource_id:
        raise BadRequestError("the resource's id must match the URL's id", field="id")
    validate_body(resource_type, body)

    async def attempt(lock: bool) -> tuple[FhirResource, bool]:
        row = await repository.get_current(
            db, org_id=org_id, resource_type=resource_type, resource_id=resource_id,
            for_update=lock,
        )  # fmt: skip
        current = None if row is None or row.deleted else row.version_id
        if if_match is not None and if_match != current:
            raise PreconditionFailedError(
                f"If-Match version {if_match} is not the current version ({current})"
            )
        if row is None and not allow_create:
            raise MethodNotAllowedError(
                f"{resource_type}/{resource_id} does not exist and this server does not"
                " create resources with client-chosen ids: POST to create it"
            )
        existed = row is not None
        if row is None:
            row = FhirResource(
                org_id=org_id, resource_type=resource_type, id=resource_id, version_id=1
            )
        else:
            row.version_id += 1
        event = "fhir.updated" if current is not None else "fhir.created"
        return await write(
            db, org_id=org_id, row=row, content=dict(body), event_type=event, existed=existed
        ), current is None

    return await _taking_turns(db, attempt)


def has_criteria(query: Sequence[tuple[str, str]]) -> bool:
    """Whether `query` narrows the match: a criterion with a value, not only result
    parameters (`_count`, `_sort`, ...), which would let a conditional interaction "match"
    whatever happens to be the only resource of its type."""
    return any(search_engine.is_criterion(name) and value for name, value in query)


async def delete(
    db: AsyncSession | AsyncConnection | ScopedConnection,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    resource_id: str,
) -> FhirResource | None:
    """Write a tombstone version; None when there was nothing live to delete (idempotent)."""
    check_type(resource_type)

    async def attempt(lock: bool) -> FhirResource | None:
        row = await repository.get_current(
            db, org_id=org_id, resource_type=resource_type, resource_id=resource_id,
            for_update=lock,
        )  # fmt: skip
        if row is None or row.deleted:
            return None
        row.version_id += 1
        return await write(
            db, org_id=org_id, row=row, content=None, event_type="fhir.deleted", existed=True
        )

    return await _taking_turns(db, attempt)


async def search(
    db: AsyncSession | AsyncConnection,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    query: Sequence[tuple[str, str]],
    base: str | None = None,
    strict: bool = False,
) -> SearchResult:
    """One page of a search-type in this organisation (the engine is `search.run`).

    `base` (this server's FHIR base) lets absolute references to it match Type/id;
    `strict` (Prefer: handling=strict) makes unknown parameters a 400.

    Raises:
        NotFoundError: an unsupported type.
        BadRequestError: a malformed value, modifier or cursor; with `strict`, an unknown
            parameter.
    """
    check_type(resource_type)
    return await search_engine.run(
        db, org_id=org_id, resource_type=resource_type, query=query, base=base, strict=strict
    )
