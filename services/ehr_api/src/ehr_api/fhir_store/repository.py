"""Reads and writes of single resources; every function takes `org_id` as a keyword.

Search lives in `search` / `includes`, history in `history`, `$everything` in
`everything`: each builds its own queries on the same tables.

The org session already confines ORM statements to its organisation; the explicit
`org_id` predicates say so in the SQL too (and keep the primary-key lookups exact).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, insert
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
    db: AsyncSession, *, org_id: uuid.UUID, resource_type: str, resource_id: str
) -> FhirResource | None:
    """The current row (possibly a tombstone) or None."""
    return await db.get(FhirResource, (org_id, resource_type, resource_id))


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
_INDEX_TABLES: tuple[_IndexTable, ...] = (
    FhirSearchToken,
    FhirSearchString,
    FhirSearchDate,
    FhirSearchNumber,
    FhirSearchReference,
)


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
    yet. The inserts are bulk statements in the caller's transaction: they bypass the
    session's unit of work (and its foreign-row check), so `org_id` must be the
    session's; PostgreSQL's row-level security refuses any other.
    """
    if not fresh:
        for model in _INDEX_TABLES:
            await db.execute(
                delete(model).where(
                    model.org_id == org_id,
                    model.resource_type == resource_type,
                    model.resource_id == resource_id,
                )
            )
    if rows is None:
        return
    key = {"org_id": org_id, "resource_type": resource_type, "resource_id": resource_id}
    batches: tuple[tuple[_IndexTable, list[dict[str, Any]]], ...] = (
        (FhirSearchToken, [{**key, "param": p, "system": s, "code": c} for p, s, c in rows.tokens]),
        (
            FhirSearchString,
            [{**key, "param": p, "value": v, "exact": e} for p, v, e in rows.strings],
        ),
        (FhirSearchDate, [{**key, "param": p, "low": lo, "high": hi} for p, lo, hi in rows.dates]),
        (
            FhirSearchNumber,
            [
                {**key, "param": p, "low": lo, "high": hi, "system": s, "code": c}
                for p, lo, hi, s, c in rows.numbers
            ],
        ),
        (
            FhirSearchReference,
            [
                {**key, "param": p, "target_type": t, "target_id": i, "url": u}
                for p, t, i, u in rows.references
            ],
        ),
    )
    for model, values in batches:
        if values:
            await db.execute(insert(model), values)


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
