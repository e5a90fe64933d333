"""Rebuild the search index of stored resources from their current content.

Why: index rows are written with each version, by the indexer of the day. When the
search parameter table changes (a parameter added, an expression corrected), resources
stored before the change are not found by it until they are indexed again. Operators run
`ehr-platform fhir reindex [--org ORG] [--type TYPE]` after such an upgrade.

How: per organisation, in its own org connection (the same walls as a request), the
current live resources in (type, id) order, `batch` per transaction. Each batch's rows
are locked (PostgreSQL `FOR UPDATE`; SQLite runs one writer at a time) and touched (a
no-op UPDATE, so each gets a new row version), so a concurrent update either waits for
the batch or has already committed the content the batch reads, and an update that read
a resource before the batch notices the batch came between (`pg_write`) and reads again:
an index can never be rebuilt from a stale version, nor keep rows of an older one. Deleted resources have no index rows
and are skipped. Rebuilding is idempotent: running it twice changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ehr_api.db import Database
from ehr_api.fhir_store import indexing, repository
from ehr_api.fhir_store.models import FhirResource

__all__ = ["ReindexResult", "rebuild_batch", "reindex_organisation"]


@dataclass(frozen=True)
class ReindexResult:
    """How many current resources one organisation had indexed again, per type."""

    by_type: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_type.values())


async def reindex_organisation(
    database: Database, org_id: uuid.UUID, *, resource_type: str | None = None, batch: int = 200
) -> ReindexResult:
    """Index every live resource of `org_id` (of `resource_type` only, if given) again."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    counts: dict[str, int] = {}
    after: tuple[str, str] | None = None
    while True:
        async with database.org_connection(org_id) as db:
            keys = await rebuild_batch(
                db, org_id, resource_type=resource_type, after=after, limit=batch
            )
        for kind, _ in keys:
            counts[kind] = counts.get(kind, 0) + 1
        if len(keys) < batch:
            return ReindexResult(counts)
        after = keys[-1]


async def rebuild_batch(
    db: AsyncConnection,
    org_id: uuid.UUID,
    *,
    resource_type: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[tuple[str, str]]:
    """Lock, touch and index again the next `limit` live resources after `after`, in the
    caller's transaction; their (type, id) keys in order."""
    rows = (await db.execute(_page(org_id, resource_type, after, limit))).all()
    keys = [(kind, resource_id) for kind, resource_id, _ in rows]
    if keys:
        await db.execute(_touch(org_id, keys))
    for kind, resource_id, content in rows:
        await repository.replace_index(
            db,
            org_id=org_id,
            resource_type=kind,
            resource_id=resource_id,
            rows=indexing.index(kind, content),
        )
    return keys


def _touch(org_id: uuid.UUID, keys: list[tuple[str, str]]) -> Any:
    """A no-op UPDATE of the batch's current rows: it gives each a new row version, so an
    update that read the resource before this batch and writes after it (a one-statement
    write without a lock, `pg_write`, which names the row version it read) writes nothing
    and tries again, instead of keeping index rows it cannot see from its snapshot."""
    columns = (FhirResource.resource_type, FhirResource.id)
    return (
        update(FhirResource)
        .where(FhirResource.org_id == org_id, tuple_(*columns).in_(keys))
        .values(version_id=FhirResource.version_id)
    )


def _page(
    org_id: uuid.UUID, resource_type: str | None, after: tuple[str, str] | None, limit: int
) -> Select[Any]:
    columns = (FhirResource.resource_type, FhirResource.id)
    query = select(*columns, FhirResource.content).where(
        FhirResource.org_id == org_id, FhirResource.deleted.is_(False)
    )
    if resource_type is not None:
        query = query.where(FhirResource.resource_type == resource_type)
    if after is not None:
        query = query.where(tuple_(*columns) > tuple_(*after))
    return query.order_by(*columns).limit(limit).with_for_update()
