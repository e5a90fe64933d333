"""The history interactions (instance, type and system): every version, tombstones included.

Versions come from `fhir_resource_history` of the caller's organisation only; the
request method of a version is inferred from it (a tombstone was a DELETE, version 1 a
create, any other version an update).

Pages are a keyset over (last_updated desc, resource_type, id, version_id desc): the `next`
cursor holds the last version shown, so versions written while a client pages arrive at
the top and never shift or repeat what it has yet to read. The cursor is bound to the
organisation and to the listing (`history:Patient`, `history:Patient/1`, or `history:*`
for the system level, which lists only the types the caller may read), see `paging`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from ehr_api.errors import NotFoundError
from ehr_api.fhir_store import repository
from ehr_api.fhir_store.indexing import date_range
from ehr_api.fhir_store.models import FhirResourceHistory
from ehr_api.fhir_store.paging import decode_cursor, encode_cursor, keyset_after, parse_count
from ehr_api.fhir_store.service import DEFAULT_COUNT, MAX_COUNT, BadRequestError, check_type

__all__ = ["CURSOR", "HistoryResult", "bundle", "history"]

#: The query parameter that carries a history page cursor.
CURSOR = "_cursor"


@dataclass(frozen=True, slots=True)
class HistoryResult:
    total: int
    versions: list[FhirResourceHistory]
    #: The parameters understood (cursor excluded): what self and next links repeat.
    applied: list[tuple[str, str]]
    #: The cursor of the page after this one, None on the last page.
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class _After:
    """The last version a page showed: the next page starts strictly after it."""

    last_updated: datetime
    resource_type: str
    id: str
    version_id: int


def _instant(name: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BadRequestError(
            f"{name} must be an instant with a time zone, got {value!r}", field=name
        )
    return moment


def _kind(resource_type: str | None, resource_id: str | None) -> str:
    listing = resource_type or "*"
    return f"history:{listing}" + (f"/{resource_id}" if resource_id is not None else "")


def _after(position: dict[str, Any], resource_type: str | None) -> _After:
    try:
        moment = datetime.fromisoformat(str(position["t"]))
        # Cursors of one type made before the system level existed carry no "r".
        kind = position.get("r", resource_type)
        after = _After(moment, str(kind), str(position["i"]), int(position["v"]))
        if kind is None:
            raise ValueError("no type in a system-level cursor")
    except (KeyError, TypeError, ValueError) as exc:
        raise BadRequestError("the paging cursor is not valid", field=CURSOR) from exc
    if moment.tzinfo is None:
        raise BadRequestError("the paging cursor is not valid", field=CURSOR)
    return after


def _position(row: FhirResourceHistory) -> dict[str, Any]:
    return {
        "t": row.last_updated.isoformat(),
        "r": row.resource_type,
        "i": row.id,
        "v": row.version_id,
    }


def _period(value: str) -> tuple[datetime, datetime]:
    found = date_range(value)
    if found is None:
        raise BadRequestError(f"_at must be a FHIR date or dateTime, got {value!r}", field="_at")
    return found


def _current_during(low: datetime, high: datetime) -> ColumnElement[bool]:
    """Versions current at some moment of [low, high): written before `high`, and not
    replaced by a later version at or before `low`."""
    version, later = FhirResourceHistory, aliased(FhirResourceHistory)
    replaced = exists().where(
        later.org_id == version.org_id,
        later.resource_type == version.resource_type,
        later.id == version.id,
        later.version_id > version.version_id,
        later.last_updated <= low,
    )
    return and_(version.last_updated < high, ~replaced)


def _versions(
    *,
    org_id: uuid.UUID,
    types: Sequence[str],
    resource_id: str | None,
    since: datetime | None,
    at: tuple[datetime, datetime] | None,
) -> Select[Any]:
    version = FhirResourceHistory
    same_type = (
        version.resource_type == types[0] if len(types) == 1 else version.resource_type.in_(types)
    )
    query = select(version).where(version.org_id == org_id, same_type)
    if resource_id is not None:
        query = query.where(version.id == resource_id)
    if since is not None:
        query = query.where(version.last_updated >= since)
    if at is not None:
        query = query.where(_current_during(*at))
    return query


def _beyond(after: _After) -> ColumnElement[bool]:
    """Rows that sort after `after` in (last_updated desc, resource_type, id, version_id
    desc)."""
    version = FhirResourceHistory
    return keyset_after([
        (version.last_updated, after.last_updated, True),
        (version.resource_type, after.resource_type, False),
        (version.id, after.id, False),
        (version.version_id, after.version_id, True),
    ])  # fmt: skip


async def history(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    resource_type: str | None,
    resource_id: str | None = None,
    query: Sequence[tuple[str, str]] = (),
    readable: Sequence[str] = (),
) -> HistoryResult:
    """Versions newest first, filtered by `_since` and `_at`, at most `_count`, after
    `_cursor`. `_at` (a date or dateTime, its precision giving a period) keeps the
    versions that were current at some moment of that period. `resource_type` None is
    the system level: the versions of the `readable` types (those the caller may read).

    `total` counts every version the filters admit, whichever page this is.

    Raises:
        BadRequestError: a malformed `_since`, `_at`, `_count` or `_cursor`, or a cursor made
            for another organisation or another history listing.
        NotFoundError: an instance with no version in this organisation.
    """
    if resource_type is not None:
        check_type(resource_type)
    elif resource_id is not None or not readable:
        raise ValueError("the system level takes the readable types and no resource id")
    types = [resource_type] if resource_type is not None else sorted(readable)
    kind = _kind(resource_type, resource_id)
    since: datetime | None = None
    at: tuple[datetime, datetime] | None = None
    after: _After | None = None
    limit = DEFAULT_COUNT
    applied: list[tuple[str, str]] = []
    for name, value in query:
        if name == CURSOR:
            after = _after(decode_cursor(value, org_id=org_id, kind=kind), resource_type)
            continue
        if name == "_since":
            since = _instant(name, value)
        elif name == "_at":
            at = _period(value)
        elif name == "_count":
            limit = min(parse_count(value), MAX_COUNT)
        else:
            continue
        applied.append((name, value))
    if resource_type is not None and resource_id is not None:
        current = await repository.get_current(
            db, org_id=org_id, resource_type=resource_type, resource_id=resource_id
        )
        if current is None:
            raise NotFoundError(f"{resource_type}/{resource_id} is not known")
    matching = _versions(org_id=org_id, types=types, resource_id=resource_id, since=since, at=at)
    total = int(await db.scalar(select(func.count()).select_from(matching.subquery())) or 0)
    if not limit:
        return HistoryResult(total, [], applied)
    page = matching if after is None else matching.where(_beyond(after))
    ordered = page.order_by(
        FhirResourceHistory.last_updated.desc(),
        FhirResourceHistory.resource_type,
        FhirResourceHistory.id,
        FhirResourceHistory.version_id.desc(),
    ).limit(limit + 1)  # one more than shown says whether a next page exists
    rows = [*(await db.execute(ordered)).scalars()]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(org_id=org_id, kind=kind, position=_position(rows[-1]))
    return HistoryResult(total, rows, applied, next_cursor)


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


def bundle(
    base: str, self_url: str, result: HistoryResult, *, next_url: str | None = None
) -> dict[str, Any]:
    """The `history` Bundle of `result` (with a `next` link when `next_url` is given)."""
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "history",
        "total": result.total,
        "link": links,
        "entry": [_entry(base, row) for row in result.versions],
    }
