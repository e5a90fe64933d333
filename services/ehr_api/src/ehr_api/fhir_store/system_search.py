"""Search across types (`GET /fhir/R4?_type=Patient,Practitioner&identifier=...`).

One statement: each listed type's criteria apply to that type's rows only, and a type
that lacks one of the parameters is a 400 naming both (never a silently wider match).
Results come newest-changed last, as a type's search does, keyset paged over
(last_updated, type, id) with a `next` cursor bound to the organisation and the query.
`_type` is required: a search of all 146 types is not something to run by accident.
Result parameters other than `_count` (`_sort`, `_include`, `_summary`, ...) are a 400.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ehr_api.db import driver_sql
from ehr_api.db.scoped_pool import ScopedConnection
from ehr_api.errors import BadRequestError
from ehr_api.fhir_store import repository
from ehr_api.fhir_store.models import FhirResource
from ehr_api.fhir_store.paging import (
    decode_cursor,
    encode_cursor,
    keyset_after,
    parse_count,
    query_digest,
)
from ehr_api.fhir_store.search import (
    CURSOR,
    DEFAULT_COUNT,
    MAX_COUNT,
    UnknownParameterError,
    criterion,
    is_criterion,
)
from ehr_api.fhir_store.search_values import Context

__all__ = ["SystemSearchResult", "requested_types", "run"]

_KIND = "search:*"


@dataclass(frozen=True, slots=True)
class SystemSearchResult:
    total: int
    resources: list[FhirResource]
    #: The parameters understood (`_type` included, cursor excluded): the links repeat them.
    applied: list[tuple[str, str]]
    next_cursor: str | None


def requested_types(query: Sequence[tuple[str, str]]) -> list[str]:
    """The types `_type` names (in order, once each).

    Raises:
        BadRequestError: no `_type`.
    """
    named = [kind.strip() for name, value in query if name == "_type" for kind in value.split(",")]
    types = list(dict.fromkeys(kind for kind in named if kind))
    if not types:
        raise BadRequestError(
            "a search across types needs _type (e.g. _type=Patient,Practitioner)", field="_type"
        )
    return types


async def run(
    db: AsyncSession | AsyncConnection | ScopedConnection,
    *,
    org_id: uuid.UUID,
    types: Sequence[str],
    query: Sequence[tuple[str, str]],
    base: str | None = None,
) -> SystemSearchResult:
    """One page of `types` resources of `org_id` matching `query`."""
    ctx = Context(org_id, base)
    count, cursor = DEFAULT_COUNT, None
    applied: list[tuple[str, str]] = [("_type", ",".join(types))]
    per_type: dict[str, list[Any]] = {kind: [] for kind in types}
    for name, value in query:
        if name == "_type":
            continue
        if name == CURSOR:
            cursor = value
            continue
        if name == "_count":
            count = min(parse_count(value), MAX_COUNT)
        elif not is_criterion(name):
            raise BadRequestError(f"{name} is not supported in a search across types", field=name)
        elif not value:
            continue
        else:
            for kind in types:
                try:
                    per_type[kind].append(criterion(ctx, kind, name, value))
                except UnknownParameterError as exc:
                    raise BadRequestError(
                        f"{name} is not a search parameter of {kind}: a search across types"
                        " takes parameters every listed type has", field=name,
                    ) from exc  # fmt: skip
        applied.append((name, value))
    digest = query_digest(applied)
    after = _after(decode_cursor(cursor, org_id=org_id, kind=_KIND), digest) if cursor else None
    where = [
        FhirResource.org_id == org_id,
        FhirResource.deleted.is_(False),
        or_(*(and_(FhirResource.resource_type == kind, *clauses)
              for kind, clauses in per_type.items())),
    ]  # fmt: skip
    rows: list[FhirResource] = []
    keys = (FhirResource.last_updated, FhirResource.resource_type, FhirResource.id)
    if count:
        page = select(*repository.RESOURCE_COLUMNS).where(*where)
        if after is not None:
            moment, kind, ident = after
            page = page.where(
                keyset_after(
                    [(keys[0], moment, False), (keys[1], kind, False), (keys[2], ident, False)]
                )
            )
        rows = await repository.load(db, page.order_by(*keys).limit(count + 1))
    more, rows = len(rows) > count, rows[:count]
    total = len(rows)
    if not count or more or after is not None:
        counting = select(func.count()).select_from(FhirResource).where(*where)
        total = await driver_sql.scalar(db, counting) or 0
    next_cursor = None
    if more:
        last = rows[-1]
        position = {"a": [last.last_updated.isoformat(), last.resource_type, last.id], "q": digest}
        next_cursor = encode_cursor(org_id=org_id, kind=_KIND, position=position)
    return SystemSearchResult(total, rows, applied, next_cursor)


def _after(position: dict[str, Any], digest: str) -> tuple[datetime, str, str]:
    if position.get("q") != digest:
        raise BadRequestError("the paging cursor was made for another query", field=CURSOR)
    try:
        moment, kind, ident = position["a"]
        anchor = datetime.fromisoformat(moment), str(kind), str(ident)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadRequestError("the paging cursor is not valid", field=CURSOR) from exc
    if anchor[0].tzinfo is None:
        raise BadRequestError("the paging cursor is not valid", field=CURSOR)
    return anchor
