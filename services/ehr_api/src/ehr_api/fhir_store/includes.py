"""`_include` and `_revinclude`: what a page of matches points at, or what points at it.

Both walk `fhir_search_reference` and load the other end from `fhir_resources`, with the
caller's `org_id` on every table (and row-level security under it on PostgreSQL). A
reference to an id that exists only in another organisation therefore finds nothing:
no query here ever reads a row of another organisation.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ehr_api.db import driver_sql
from ehr_api.errors import BadRequestError
from ehr_api.fhir_store import repository
from ehr_api.fhir_store.models import FhirResource, FhirSearchReference
from ehr_api.fhir_store.search_params import lookup, params_for

__all__ = ["MAX_INCLUDED", "Include", "parse", "resolve"]

#: Included resources per page, at most (matches are capped by `_count` already).
MAX_INCLUDED = 1000
#: Rounds of `:iterate` after the first.
MAX_ITERATIONS = 3


@dataclass(frozen=True, slots=True)
class Include:
    """`Source:param[:Target]`: `source` holds the reference `params`; `reverse` for
    `_revinclude`; `iterate` applies it to included resources as well."""

    source: str
    params: tuple[str, ...]
    target: str | None
    reverse: bool
    iterate: bool


def parse(value: str, *, resource_type: str, reverse: bool, iterate: bool) -> Include:
    """The include `value` names, checked against the parameter table.

    Raises:
        BadRequestError: not `Type:param[:Target]` or `*`, or a parameter that is not a
            reference of that type.
    """
    name = "_revinclude" if reverse else "_include"
    if value == "*" and not reverse:
        value = f"{resource_type}:*"
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise BadRequestError(f"{name}: {value!r} is not Type:parameter[:Target]", field=name)
    source, param, target = parts[0], parts[1], parts[2] if len(parts) == 3 else None
    if not reverse and not iterate and source != resource_type:
        raise BadRequestError(f"{name}: {value!r} does not start with {resource_type}",
                              field=name)  # fmt: skip
    if param == "*":
        params = tuple(p.name for p in params_for(source).values() if p.type == "reference")
    else:
        found = lookup(source, param)
        if found is None or found.type != "reference":
            raise BadRequestError(f"{name}: {source} has no reference parameter {param!r}",
                                  field=name)  # fmt: skip
        if target and found.targets and target not in found.targets:
            raise BadRequestError(f"{name}: {source}.{param} cannot point at {target}",
                                  field=name)  # fmt: skip
        params = (param,)
    if reverse and not iterate and target not in (None, resource_type):
        raise BadRequestError(f"{name}: {value!r} does not point at {resource_type}", field=name)
    return Include(source, params, target, reverse, iterate)


def _by_type(rows: Iterable[FhirResource]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        grouped[row.resource_type].append(row.id)
    return grouped


async def _load(
    db: AsyncSession | AsyncConnection,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    ids: list[str] | Select[Any],
) -> list[FhirResource]:
    query = (
        select(*repository.RESOURCE_COLUMNS)
        .where(FhirResource.org_id == org_id, FhirResource.resource_type == resource_type,
               FhirResource.id.in_(ids), FhirResource.deleted.is_(False))
        .order_by(FhirResource.id)
        .limit(MAX_INCLUDED)
    )  # fmt: skip
    return await repository.load(db, query)


async def _forward(
    db: AsyncSession | AsyncConnection,
    *,
    org_id: uuid.UUID,
    spec: Include,
    rows: Sequence[FhirResource],
) -> list[FhirResource]:
    ids = _by_type(rows).get(spec.source)
    if not ids or not spec.params:
        return []
    ref = FhirSearchReference
    edges = (
        select(ref.target_type, ref.target_id)
        .where(ref.org_id == org_id, ref.resource_type == spec.source,
               ref.resource_id.in_(ids), ref.param.in_(spec.params), ref.target_id != "")
        .distinct()
    )  # fmt: skip
    if spec.target:
        edges = edges.where(ref.target_type == spec.target)
    targets: dict[str, list[str]] = defaultdict(list)
    for target_type, target_id in await driver_sql.rows(db, edges):
        targets[target_type].append(target_id)
    found: list[FhirResource] = []
    for target_type, target_ids in sorted(targets.items()):
        found += await _load(db, org_id=org_id, resource_type=target_type, ids=target_ids)
    return found


async def _reverse(
    db: AsyncSession | AsyncConnection,
    *,
    org_id: uuid.UUID,
    spec: Include,
    rows: Sequence[FhirResource],
) -> list[FhirResource]:
    ref = FhirSearchReference
    found: list[FhirResource] = []
    for target_type, ids in sorted(_by_type(rows).items()):
        if not spec.params or spec.target not in (None, target_type):
            continue
        sources = (
            select(ref.resource_id)
            .where(ref.org_id == org_id, ref.resource_type == spec.source,
                   ref.param.in_(spec.params), ref.target_type == target_type,
                   ref.target_id.in_(ids))
        )  # fmt: skip
        found += await _load(db, org_id=org_id, resource_type=spec.source, ids=sources)
    return found


async def resolve(
    db: AsyncSession | AsyncConnection, *, org_id: uuid.UUID, matches: Sequence[FhirResource],
    specs: Sequence[Include],
) -> list[FhirResource]:  # fmt: skip
    """The resources `specs` reach from `matches`, deduplicated, matches left out.

    Every spec applies to the matches; `:iterate` ones apply again to what the previous
    round included, up to MAX_ITERATIONS rounds and MAX_INCLUDED resources.
    """
    seen = {(row.resource_type, row.id) for row in matches}
    included: list[FhirResource] = []
    frontier, active = list(matches), list(specs)
    for _ in range(MAX_ITERATIONS + 1):
        fresh: list[FhirResource] = []
        for spec in active:
            walk = _reverse if spec.reverse else _forward
            for row in await walk(db, org_id=org_id, spec=spec, rows=frontier):
                if (row.resource_type, row.id) not in seen:
                    seen.add((row.resource_type, row.id))
                    fresh.append(row)
        included += fresh
        active = [spec for spec in specs if spec.iterate]
        if not fresh or not active or len(included) >= MAX_INCLUDED:
            break
        frontier = fresh
    return included[:MAX_INCLUDED]
