"""The history interactions (instance and type): every version, tombstones included.

Versions come from `fhir_resource_history` of the caller's organisation only; the
request method of a version is inferred from it (a tombstone was a DELETE, version 1 a
create, any other version an update).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ehr_api.errors import NotFoundError
from ehr_api.fhir_store import repository
from ehr_api.fhir_store.models import FhirResourceHistory
from ehr_api.fhir_store.service import DEFAULT_COUNT, MAX_COUNT, BadRequestError, check_type

__all__ = ["HistoryResult", "bundle", "history"]


@dataclass(frozen=True, slots=True)
class HistoryResult:
    total: int
    versions: list[FhirResourceHistory]
    applied: list[tuple[str, str]]


def _instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BadRequestError(
            f"_since must be an instant with a time zone, got {value!r}", field="_since"
        )
    return moment


async def history(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    resource_id: str | None = None,
    query: Sequence[tuple[str, str]] = (),
) -> HistoryResult:
    """Versions newest first, filtered by `_since`, at most `_count`.

    Raises:
        BadRequestError: a malformed `_since` or `_count`.
        NotFoundError: an instance with no version in this organisation.
    """
    check_type(resource_type)
    since: datetime | None = None
    limit = DEFAULT_COUNT
    applied: list[tuple[str, str]] = []
    for name, value in query:
        if name == "_since":
            since = _instant(value)
        elif name == "_count":
            if not value.isdigit():
                raise BadRequestError(f"_count must be a number, got {value!r}", field="_count")
            limit = min(int(value), MAX_COUNT)
        else:
            continue
        applied.append((name, value))
    if resource_id is not None:
        exists = await repository.get_current(
            db, org_id=org_id, resource_type=resource_type, resource_id=resource_id
        )
        if exists is None:
            raise NotFoundError(f"{resource_type}/{resource_id} is not known")
    total, versions = await repository.history(
        db,
        org_id=org_id,
        resource_type=resource_type,
        resource_id=resource_id,
        since=since,
        limit=limit,
    )
    return HistoryResult(total, versions, applied)


def _entry(base: str, row: FhirResourceHistory) -> dict[str, Any]:
    path = f"{row.resource_type}/{row.id}"
    if row.deleted:
        request, status = {"method": "DELETE", "url": path}, "200 OK"
    elif row.version_id == 1:
        request, status = {"method": "POST", "url": row.resource_type}, "201 Created"
    else:
        request, status = {"method": "PUT", "url": path}, "200 OK"
    entry: dict[str, Any] = {"fullUrl": f"{base}/{path}"}
    if not row.deleted:
        entry["resource"] = row.content
    entry["request"] = request
    entry["response"] = {
        "status": status,
        "etag": f'W/"{row.version_id}"',
        "lastModified": row.last_updated.isoformat(),
    }
    return entry


def bundle(base: str, self_url: str, result: HistoryResult) -> dict[str, Any]:
    """The `history` Bundle of `result`."""
    return {
        "resourceType": "Bundle",
        "type": "history",
        "total": result.total,
        "link": [{"relation": "self", "url": self_url}],
        "entry": [_entry(base, row) for row in result.versions],
    }
