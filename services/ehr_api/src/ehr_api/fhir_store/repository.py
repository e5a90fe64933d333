"""Reads and writes of single resources; every function takes `org_id` as a keyword.

Search lives in `search` / `includes`, history in `history`, `$everything` in
`everything`: each builds its own queries on the same tables.

The org session already confines ORM statements to its organisation; the explicit
`org_id` predicates say so in the SQL too (and keep the primary-key lookups exact).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from functools import cache

from sqlalchemy import TextClause, delete, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from ehr_api.events.models import EventLog
from ehr_api.fhir_store.indexing import IndexRows
from ehr_api.fhir_store.models import (
    FhirResource,
    FhirResourceHistory,
    FhirSearchDate,
    FhirSearchNumber,
    FhirSearchReference,
    FhirSearchString,
    FhirSearchToken,
)

__all__ = ["add_event", "add_version", "get_current", "get_version", "replace_index"]


async def get_current(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    resource_id: str,
    for_update: bool = False,
) -> FhirResource | None:
    """The current row (possibly a tombstone) or None.

    `for_update` locks the row until the transaction ends (PostgreSQL), so two
    concurrent writes of one resource take turns instead of both writing version n+1.
    """
    return await db.get(
        FhirResource, (org_id, resource_type, resource_id), with_for_update=for_update or None
    )


async def get_version(
    db: AsyncSession, *, org_id: uuid.UUID, resource_type: str, resource_id: str, version: int
) -> FhirResourceHistory | None:
    return await db.get(FhirResourceHistory, (org_id, resource_type, resource_id, version))


async def add_version(db: AsyncSession, *, org_id: uuid.UUID, row: FhirResource) -> None:
    """Append `row`'s version to the history (the current row is already in the session)."""
    db.add(
        FhirResourceHistory(
            org_id=org_id,
            resource_type=row.resource_type,
            id=row.id,
            version_id=row.version_id,
            last_updated=row.last_updated,
            deleted=row.deleted,
            content=row.content,
        )
    )


_IndexTable = (
    type[FhirSearchToken]
    | type[FhirSearchString]
    | type[FhirSearchDate]
    | type[FhirSearchNumber]
    | type[FhirSearchReference]
)
#: Per index table: its value columns and their SQL types (the PostgreSQL fast path).
_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "tokens": (("param", "text"), ("system", "text"), ("code", "text")),
    "strings": (("param", "text"), ("value", "text"), ("exact", "text")),
    "dates": (("param", "text"), ("low", "timestamptz"), ("high", "timestamptz")),
    "numbers": (
        ("param", "text"),
        ("low", "double precision"),
        ("high", "double precision"),
        ("system", "text"),
        ("code", "text"),
    ),
    "references": (
        ("param", "text"),
        ("target_type", "text"),
        ("target_id", "text"),
        ("url", "text"),
    ),
}
_TABLES: dict[str, _IndexTable] = {
    "tokens": FhirSearchToken,
    "strings": FhirSearchString,
    "dates": FhirSearchDate,
    "numbers": FhirSearchNumber,
    "references": FhirSearchReference,
}
_OWNER = "org_id = CAST(:org AS uuid) AND resource_type = :type AND resource_id = :id"


def _pg_delete() -> TextClause:
    """One statement deleting a resource's rows from all five tables (one round trip)."""
    names = [model.__tablename__ for model in _TABLES.values()]
    ctes = ", ".join(
        f"d{n} AS (DELETE FROM {name} WHERE {_OWNER})" for n, name in enumerate(names[:-1])
    )
    return text(f"WITH {ctes} DELETE FROM {names[-1]} WHERE {_OWNER}")


def _pg_insert(kinds: tuple[str, ...]) -> TextClause:
    """One statement inserting the rows of `kinds` from JSON arrays (one round trip)."""
    parts = []
    for kind in kinds:
        columns = _COLUMNS[kind]
        names = ", ".join(name for name, _ in columns)
        typed = ", ".join(f"{name} {sql}" for name, sql in columns)
        parts.append(
            f"i_{kind} AS (INSERT INTO {_TABLES[kind].__tablename__}"
            f" (org_id, resource_type, resource_id, {names})"
            f" SELECT CAST(:org AS uuid), :type, :id, {names}"
            f" FROM jsonb_to_recordset(CAST(:{kind} AS jsonb)) AS x({typed}))"
        )
    return text(f"WITH {', '.join(parts)} SELECT 1")


_PG_DELETE = _pg_delete()
_pg_insert_cached = cache(_pg_insert)


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot index {type(value).__name__}")


async def replace_index(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    resource_id: str,
    rows: IndexRows | None,
    fresh: bool = False,
) -> None:
    """Make the five index tables hold exactly `rows` for one resource (None: nothing).

    `fresh` skips the deletes for a resource's first version, which can have no rows
    yet. The writes bypass the session's unit of work (and its foreign-row check), so
    `org_id` must be the session's; PostgreSQL's row-level security refuses any other.
    On PostgreSQL the deletes are one statement and the inserts another (each index
    table would otherwise cost a round trip: 8-10 per update, measured as a fifth of an
    update's CPU); SQLite, in-process, keeps the plain per-table statements.
    """
    if db.get_bind().dialect.name == "postgresql":
        await _replace_index_pg(db, org_id, resource_type, resource_id, rows, fresh=fresh)
        return
    if not fresh:
        for model in _TABLES.values():
            await db.execute(
                delete(model)
                .where(
                    model.org_id == org_id,
                    model.resource_type == resource_type,
                    model.resource_id == resource_id,
                )
                .execution_options(synchronize_session=False)
            )
    if rows is None:
        return
    key = {"org_id": org_id, "resource_type": resource_type, "resource_id": resource_id}
    for kind, model in _TABLES.items():
        values = getattr(rows, kind)
        if values:
            names = [name for name, _ in _COLUMNS[kind]]
            await db.execute(
                insert(model), [{**key, **dict(zip(names, row, strict=True))} for row in values]
            )


async def _replace_index_pg(
    db: AsyncSession,
    org_id: uuid.UUID,
    resource_type: str,
    resource_id: str,
    rows: IndexRows | None,
    *,
    fresh: bool,
) -> None:
    key = {"org": str(org_id), "type": resource_type, "id": resource_id}
    if not fresh:
        await db.execute(_PG_DELETE, key)
    if rows is None:
        return
    kinds = tuple(kind for kind in _TABLES if getattr(rows, kind))
    if not kinds:
        return
    values: dict[str, str] = {}
    for kind in kinds:
        names = [name for name, _ in _COLUMNS[kind]]
        items = [dict(zip(names, row, strict=True)) for row in getattr(rows, kind)]
        values[kind] = json.dumps(items, default=_json_default)
    await db.execute(_pg_insert_cached(kinds), {**key, **values})


async def add_event(
    db: AsyncSession, *, org_id: uuid.UUID, event_type: str, row: FhirResource
) -> None:
    """The outbox row of a change, in the change's own transaction."""
    db.add(
        EventLog(
            org_id=org_id,
            event_type=event_type,
            source="fhir",
            resource_type=row.resource_type,
            resource_id=row.id,
            data={"versionId": str(row.version_id)},
        )
    )
