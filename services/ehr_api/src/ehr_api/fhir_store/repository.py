"""Queries of the FHIR store; every function takes `org_id` as a required keyword.

The org session already confines ORM statements to its organisation; the explicit
`org_id` predicates say so in the SQL too (and keep the primary-key lookups exact).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ehr_api.events.models import EventLog
from ehr_api.fhir_store.models import FhirResource, FhirResourceHistory, FhirSearchToken

__all__ = [
    "TokenQuery",
    "add_event",
    "add_version",
    "count",
    "get_current",
    "get_version",
    "history",
    "replace_tokens",
    "search",
]


@dataclass(frozen=True, slots=True)
class TokenQuery:
    """One token search value: `system|code`, `|code` (system ''), or `code` (system None)."""

    param: str
    system: str | None
    code: str | None


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


async def replace_tokens(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    resource_id: str,
    tokens: Iterable[tuple[str, str, str]],
) -> None:
    """Make the index of one resource exactly `tokens` ((param, system, code) triples)."""
    await db.execute(
        delete(FhirSearchToken).where(
            FhirSearchToken.org_id == org_id,
            FhirSearchToken.resource_type == resource_type,
            FhirSearchToken.resource_id == resource_id,
        )
    )
    db.add_all(
        FhirSearchToken(
            org_id=org_id,
            resource_type=resource_type,
            resource_id=resource_id,
            param=param,
            system=system,
            code=code,
        )
        for param, system, code in dict.fromkeys(tokens)
    )


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


def _matching(
    *,
    org_id: uuid.UUID,
    resource_type: str,
    ids: Sequence[str] | None,
    tokens: Sequence[TokenQuery],
) -> Select[Any]:
    query = select(FhirResource).where(
        FhirResource.org_id == org_id,
        FhirResource.resource_type == resource_type,
        FhirResource.deleted.is_(False),
    )
    if ids is not None:
        query = query.where(FhirResource.id.in_(ids))
    for token in tokens:
        match = select(FhirSearchToken.resource_id).where(
            FhirSearchToken.org_id == org_id,
            FhirSearchToken.resource_type == resource_type,
            FhirSearchToken.param == token.param,
        )
        if token.system is not None:
            match = match.where(FhirSearchToken.system == token.system)
        if token.code is not None:
            match = match.where(FhirSearchToken.code == token.code)
        query = query.where(FhirResource.id.in_(match))
    return query


async def search(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    ids: Sequence[str] | None = None,
    tokens: Sequence[TokenQuery] = (),
    limit: int,
) -> list[FhirResource]:
    """Current, not deleted resources matching every criterion (AND), oldest change first."""
    query = _matching(org_id=org_id, resource_type=resource_type, ids=ids, tokens=tokens)
    query = query.order_by(FhirResource.last_updated, FhirResource.id).limit(limit)
    return [*(await db.execute(query)).scalars()]


async def count(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    ids: Sequence[str] | None = None,
    tokens: Sequence[TokenQuery] = (),
) -> int:
    query = _matching(org_id=org_id, resource_type=resource_type, ids=ids, tokens=tokens)
    total = await db.scalar(select(func.count()).select_from(query.subquery()))
    return int(total or 0)


def _versions(
    *,
    org_id: uuid.UUID,
    resource_type: str,
    resource_id: str | None,
    since: datetime | None,
) -> Select[Any]:
    query = select(FhirResourceHistory).where(
        FhirResourceHistory.org_id == org_id,
        FhirResourceHistory.resource_type == resource_type,
    )
    if resource_id is not None:
        query = query.where(FhirResourceHistory.id == resource_id)
    if since is not None:
        query = query.where(FhirResourceHistory.last_updated >= since)
    return query


async def history(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    resource_id: str | None = None,
    since: datetime | None = None,
    limit: int,
) -> tuple[int, list[FhirResourceHistory]]:
    """(total, newest first up to `limit`) versions of one type, or of one resource."""
    query = _versions(
        org_id=org_id, resource_type=resource_type, resource_id=resource_id, since=since
    )
    total = int(await db.scalar(select(func.count()).select_from(query.subquery())) or 0)
    if not limit:
        return total, []
    ordered = query.order_by(
        FhirResourceHistory.last_updated.desc(),
        FhirResourceHistory.id,
        FhirResourceHistory.version_id.desc(),
    ).limit(limit)
    return total, [*(await db.execute(ordered)).scalars()]
