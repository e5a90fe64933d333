"""The search engine: a FHIR query becomes one SQL statement over the index tables.

Each criterion is a clause on `fhir_resources` of the form `id IN (SELECT resource_id FROM
<index table> WHERE org_id = ... AND param = ... AND <value test>)`, so every lookup
lands on an index table's `(org_id, resource_type, param, ...)` index. Parameters AND
together, comma-separated values OR. The index rows are written in the resource's own
transaction (models.py says what each column holds), so a clause reads exactly the
current versions. Chains (`subject:Patient.name=x`) and `_has` walk
`fhir_search_reference` into the other type's index, in the same organisation. What each
parameter type's values mean (prefixes, escapes, modifiers) is search_values.py.

A first page whose one criterion is a plain `_id` or token (`system|code`, `code`) runs a
statement built once instead (search_lookups.py): the same SQL, without the cost of
building and compiling it per request.

Paging is by offset inside an org-bound cursor (paging.py) that also pins a digest of the
query it was made for, so the links stay stateless and a cursor cannot silently page a
different query. The first page's total comes free when the page is not full; otherwise
one COUNT runs, unless `_total=none`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, false, func, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import UnaryExpression

from ehr_api.db import driver_sql
from ehr_api.errors import BadRequestError
from ehr_api.fhir_store import elements, includes, repository, search_lookups
from ehr_api.fhir_store.models import FhirResource, FhirSearchReference
from ehr_api.fhir_store.paging import (
    decode_cursor,
    encode_cursor,
    keyset_after,
    parse_count,
    query_digest,
)
from ehr_api.fhir_store.search_params import COMMON, SearchParam, lookup
from ehr_api.fhir_store.search_values import (
    BUILDERS,
    INDEXES,
    MODIFIERS,
    Context,
    index_rows,
    split,
)

__all__ = [
    "DEFAULT_COUNT",
    "MAX_COUNT",
    "SearchResult",
    "UnknownParameterError",
    "run",
]

DEFAULT_COUNT = 20
MAX_COUNT = 1000
#: How deep chains and `_has` may nest (`a.b.c=` is two levels).
MAX_DEPTH = 3
CURSOR = "_cursor"
#: Result parameters: understood, never criteria. `_format`/`_pretty` are accepted and
#: ignored (JSON only); they are left out of the links.
_RESULT = frozenset({"_count", "_sort", "_total", "_include", "_revinclude", "_summary",
                     "_elements", CURSOR, "_format", "_pretty"})  # fmt: skip
_UNLINKED = frozenset({CURSOR, "_format", "_pretty"})


def criterion(ctx: Context, resource_type: str, name: str, value: str) -> Any:
    """The clause on fhir_resources for one `name=value` of `resource_type` (system search).

    Raises:
        UnknownParameterError: `resource_type` has no parameter `name`.
        BadRequestError: a malformed value or an unknown modifier.
    """
    return _criterion(ctx, FhirResource, resource_type, name, value)


def is_criterion(name: str) -> bool:
    """Whether parameter `name` narrows a search (not `_count`, `_sort`, `_include`, ...)."""
    return name.partition(":")[0] not in _RESULT


class UnknownParameterError(BadRequestError):
    """A parameter this type does not support: ignored, or 400 with handling=strict."""


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One page of a search.

    `total` is exact unless `total_known` is False (`_total=none`: then it is only what
    this page shows). `applied` lists the parameters understood, as given: the links
    repeat them. The cursors are for the self/next/previous links.
    """

    total: int
    resources: list[FhirResource]
    applied: list[tuple[str, str]]
    included: list[FhirResource] = field(default_factory=list)
    total_known: bool = True
    cursor: str | None = None
    next_cursor: str | None = None
    previous_cursor: str | None = None
    summary: str | None = None
    elements: list[str] | None = None
    #: Parameters ignored because this type does not support them (not strict).
    ignored: list[str] = field(default_factory=list)


def _live(ctx: Context, row: Any, resource_type: str, *where: Any) -> Select[Any]:
    """Ids of the live resources of `resource_type` (through alias `row`) matching `where`."""
    return (
        select(row.id)
        .where(row.org_id == ctx.org_id, row.resource_type == resource_type,
               row.deleted.is_(False), *where)
        .correlate(None)
    )  # fmt: skip


# Criteria ---------------------------------------------------------------------------------


def _missing(ctx: Context, row: Any, rt: str, param: SearchParam, value: str) -> Any:
    if value not in ("true", "false"):
        raise BadRequestError(f"{param.name}:missing takes true or false", field=param.name)
    if param.name in COMMON:  # every resource has an id and a lastUpdated
        return false() if value == "true" else true()
    present = row.id.in_(index_rows(ctx, INDEXES[param.type], rt, param.name))
    return not_(present) if value == "true" else present


def _chain(
    ctx: Context, row: Any, rt: str, param: SearchParam, mod: str, rest: str, value: str,
    depth: int,
) -> Any:  # fmt: skip
    """`param[:Type].rest=value`: references to resources matching `rest=value`."""
    if param.type != "reference":
        raise BadRequestError(f"{param.name} is not a reference: it cannot be chained",
                              field=param.name)  # fmt: skip
    inner = rest.partition(".")[0].partition(":")[0]
    if mod:
        types = [mod]
    elif not param.targets:
        raise BadRequestError(f"{param.name}.{rest}: name the target type "
                              f"({param.name}:Type.{rest})", field=param.name)  # fmt: skip
    else:
        types = [kind for kind in param.targets if lookup(kind, inner) is not None]
    if not types:
        raise UnknownParameterError(f"{param.name}.{inner} is not a known chain",
                                    field=f"{param.name}.{rest}")  # fmt: skip
    index = FhirSearchReference
    found = []
    for kind in types:
        target = aliased(FhirResource)
        clause = _criterion(ctx, target, kind, rest, value, depth + 1)
        ids = _live(ctx, target, kind, clause)
        refs = index_rows(ctx, index, rt, param.name, index.target_type == kind,
                     index.target_id.in_(ids))  # fmt: skip
        found.append(row.id.in_(refs))
    return or_(*found)


def _has(ctx: Context, row: Any, rt: str, spec: str, value: str, depth: int) -> Any:
    """`_has:Type:param:rest=value`: resources that `Type` resources matching rest point at."""
    parts = spec.split(":", 3)
    if len(parts) != 4 or not all(parts):
        raise BadRequestError(f"{spec!r} is not _has:Type:reference:parameter", field=spec)
    _, source, name, rest = parts
    param = lookup(source, name)
    if param is None or param.type != "reference":
        raise UnknownParameterError(f"{source}.{name} is not a known reference", field=spec)
    other = aliased(FhirResource)
    ids = _live(ctx, other, source, _criterion(ctx, other, source, rest, value, depth + 1))
    index = FhirSearchReference
    refs = (
        select(index.target_id)
        .where(index.org_id == ctx.org_id, index.resource_type == source, index.param == name,
               index.target_type == rt, index.resource_id.in_(ids))
        .correlate(None)
    )  # fmt: skip
    return row.id.in_(refs)


def _criterion(ctx: Context, row: Any, rt: str, spec: str, value: str, depth: int = 0) -> Any:
    """The clause on `row` (an alias of fhir_resources of type `rt`) for `spec=value`.

    Raises:
        UnknownParameterError: `spec` names no parameter of `rt`.
        BadRequestError: an unknown modifier, a malformed value, a chain too deep.
    """
    if depth > MAX_DEPTH:
        raise BadRequestError(f"{spec}: chains nest at most {MAX_DEPTH} deep", field=spec)
    if spec.startswith("_has:"):
        return _has(ctx, row, rt, spec, value, depth)
    head, dot, rest = spec.partition(".")
    name, _, mod = head.partition(":")
    param = lookup(rt, name)
    if param is None:
        raise UnknownParameterError(f"unknown search parameter {name!r} for {rt}", field=name)
    if dot:
        return _chain(ctx, row, rt, param, mod, rest, value, depth)
    if mod == "missing":
        return _missing(ctx, row, rt, param, value)
    is_type = param.type == "reference" and mod[:1].isupper()
    if mod and not is_type and mod not in MODIFIERS[param.type]:
        raise BadRequestError(f"{name}: modifier {mod!r} is not supported on a {param.type}",
                              field=spec)  # fmt: skip
    values = [part for part in split(value, ",") if part]
    return BUILDERS[param.type](ctx, row, rt, param, mod, values)


# Sorting ----------------------------------------------------------------------------------


def _sort(ctx: Context, rt: str, value: str) -> list[UnaryExpression[Any]]:
    """ORDER BY for `_sort`: min of a resource's values ascending, max descending;
    resources without a value last; id breaks ties."""
    keys: list[UnaryExpression[Any]] = []
    for key in (part.strip() for part in value.split(",")):
        descending = key.startswith("-")
        name = key.removeprefix("-")
        param = lookup(rt, name)
        column: Any
        if name == "_id":
            column = FhirResource.id
        elif name == "_lastUpdated":
            column = FhirResource.last_updated
        elif param is None or param.type == "reference":
            raise BadRequestError(f"_sort: cannot sort {rt} by {name!r}", field="_sort")
        else:
            index = INDEXES[param.type]
            if param.type == "string":
                stored = index.value
            elif param.type in ("token", "uri"):
                stored = index.code
            else:
                stored = index.high if descending else index.low
            aggregate = func.max(stored) if descending else func.min(stored)
            column = (
                select(aggregate)
                .where(index.org_id == ctx.org_id, index.resource_type == rt,
                       index.resource_id == FhirResource.id, index.param == name)
                .correlate(FhirResource)
                .scalar_subquery()
            )  # fmt: skip
        keys.append((column.desc() if descending else column.asc()).nulls_last())
    return [*keys, FhirResource.id.asc()]


# Running ----------------------------------------------------------------------------------


@dataclass
class _Options:
    count: int = DEFAULT_COUNT
    total: str = "accurate"
    order: list[UnaryExpression[Any]] = field(default_factory=list)
    specs: list[includes.Include] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] | None = None
    cursor: str | None = None


def _result_param(ctx: Context, rt: str, name: str, value: str, options: _Options) -> None:
    base, _, mod = name.partition(":")
    if base == "_count":
        options.count = min(parse_count(value), MAX_COUNT)
    elif base == "_total":
        if value not in ("none", "estimate", "accurate"):
            raise BadRequestError("_total is none, estimate or accurate", field="_total")
        options.total = value
    elif base == "_sort":
        options.order = _sort(ctx, rt, value) if value.strip() else []
    elif base in ("_include", "_revinclude"):
        if mod not in ("", "iterate", "recurse"):
            raise BadRequestError(f"{base}: unknown modifier {mod!r}", field=base)
        spec = includes.parse(value, resource_type=rt, reverse=base == "_revinclude",
                              iterate=bool(mod))  # fmt: skip
        options.specs.append(spec)
    elif base == "_summary":
        elements.check_summary(value)
        options.summary = value
    elif base == "_elements":
        options.elements = elements.parse_elements([*(options.elements or ()), value])
    elif base == CURSOR:
        options.cursor = value


@dataclass(frozen=True, slots=True)
class _Page:
    """One page of matches and where the pages beside it start (cursor positions)."""

    rows: list[FhirResource]
    more: bool  # rows exist after this page
    after_first: bool  # this is not the first page
    next: dict[str, Any] | None
    previous: dict[str, Any] | None


async def _offset_page(
    db: AsyncSession | AsyncConnection, where: list[Any], order: list[Any],
    position: dict[str, Any], count: int,
) -> _Page:  # fmt: skip
    """A page of an explicit `_sort`: by offset (`{"n": offset}`)."""
    offset = position.get("n", 0) if position else 0
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise BadRequestError("the paging cursor is not valid", field=CURSOR)
    offset = max(0, offset)
    rows: list[FhirResource] = []
    if count:
        query = select(*repository.RESOURCE_COLUMNS).where(*where).order_by(*order)
        rows = await repository.load(db, query.offset(offset).limit(count + 1))
    more, rows = len(rows) > count, rows[:count]
    return _Page(
        rows, more, offset > 0,
        next={"n": offset + count} if more else None,
        previous={"n": max(0, offset - count)} if offset and count else None,
    )  # fmt: skip


async def _keyset_page(
    db: AsyncSession | AsyncConnection, where: list[Any], position: dict[str, Any], count: int
) -> _Page:
    """A page in the default order (last updated, then id), by keyset: the cursor holds
    the row a page starts after (`a`) or ends before (`b`). A resource updated while a
    client pages moves to the end and may show up twice, but no other resource is ever
    skipped, as offsets would when rows before the page move away."""
    if not count:
        return _Page([], False, bool(position), None, None)
    after, before = _anchor(position, "a"), _anchor(position, "b")
    moment, ident = FhirResource.last_updated, FhirResource.id
    query = select(*repository.RESOURCE_COLUMNS).where(*where)
    if before is not None:  # walking back: the `count` rows just before the anchor
        query = query.where(keyset_after([(moment, before[0], True), (ident, before[1], True)]))
        rows = await repository.load(
            db, query.order_by(moment.desc(), ident.desc()).limit(count + 1)
        )
        earlier, rows = len(rows) > count, rows[:count][::-1]
        return _Page(
            rows, True, True,
            next={"a": _key(rows[-1])} if rows else {"n": 0},
            previous={"b": _key(rows[0])} if earlier and rows else None,
        )  # fmt: skip
    if after is not None:
        query = query.where(keyset_after([(moment, after[0], False), (ident, after[1], False)]))
    rows = await repository.load(db, query.order_by(moment, ident).limit(count + 1))
    more, rows = len(rows) > count, rows[:count]
    return _Page(
        rows, more, after is not None,
        next={"a": _key(rows[-1])} if more else None,
        previous={"b": _key(rows[0])} if after is not None and rows else None,
    )  # fmt: skip


def _single_fixed_lookup(
    resource_type: str, query: Sequence[tuple[str, str]]
) -> search_lookups.Lookup | None:
    """The fixed statement for a query whose one criterion has a plain form (one `_id`,
    one token `system|code` or `code`; search_lookups.py), else None."""
    criteria = [(name, value) for name, value in query
                if value and name.partition(":")[0] not in _RESULT]  # fmt: skip
    if len(criteria) != 1:
        return None
    return search_lookups.fixed_lookup(resource_type, *criteria[0])


async def _first_fixed_page(
    db: AsyncSession | AsyncConnection, fixed: search_lookups.Lookup,
    org_id: uuid.UUID, resource_type: str, count: int,
) -> _Page:  # fmt: skip
    """`_keyset_page`'s first page, by a fixed statement."""
    rows = await search_lookups.first_page(
        db, fixed, org_id=org_id, resource_type=resource_type, limit=count + 1
    )
    more, rows = len(rows) > count, rows[:count]
    return _Page(rows, more, False, next={"a": _key(rows[-1])} if more else None, previous=None)


def _key(row: FhirResource) -> list[str]:
    return [row.last_updated.isoformat(), row.id]


def _anchor(position: dict[str, Any], name: str) -> tuple[datetime, str] | None:
    if name not in position:
        return None
    try:
        moment, ident = position[name]
        anchor = datetime.fromisoformat(moment), str(ident)
    except (TypeError, ValueError) as exc:
        raise BadRequestError("the paging cursor is not valid", field=CURSOR) from exc
    if anchor[0].tzinfo is None:
        raise BadRequestError("the paging cursor is not valid", field=CURSOR)
    return anchor


async def run(
    db: AsyncSession | AsyncConnection,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    query: Sequence[tuple[str, str]],
    base: str | None = None,
    strict: bool = False,
) -> SearchResult:
    """One page of `resource_type` resources matching `query` in `org_id`, with includes.

    `base` is this server's FHIR base (absolute references to it are read as Type/id);
    `strict` turns unknown parameters into a 400 (`Prefer: handling=strict`).

    Raises:
        BadRequestError: a malformed value, an unknown modifier, a bad cursor (another
            organisation's, another query's), or an unknown parameter when `strict`.
    """
    ctx = Context(org_id, base)
    clauses: list[Any] = []
    applied: list[tuple[str, str]] = []
    ignored: list[str] = []
    options = _Options()
    fixed = _single_fixed_lookup(resource_type, query)
    deferred: list[tuple[str, str]] = []  # the fixed lookup's criterion, built if needed
    for name, value in query:
        if name.partition(":")[0] in _RESULT:
            _result_param(ctx, resource_type, name, value, options)
        elif not value:
            continue
        elif fixed is not None:
            deferred.append((name, value))
        else:
            try:
                clauses.append(_criterion(ctx, FhirResource, resource_type, name, value))
            except UnknownParameterError:
                if strict:
                    raise
                ignored.append(name)
                continue
        if name not in _UNLINKED:
            applied.append((name, value))
    kind = f"search:{resource_type}"
    digest = query_digest(applied)
    position: dict[str, Any] = {}
    if options.cursor:
        position = decode_cursor(options.cursor, org_id=org_id, kind=kind)
        if position.get("q") != digest:
            raise BadRequestError("the paging cursor was made for another query", field=CURSOR)

    def where() -> list[Any]:
        built = [_criterion(ctx, FhirResource, resource_type, name, value)
                 for name, value in deferred]  # fmt: skip
        return [FhirResource.org_id == org_id, FhirResource.resource_type == resource_type,
                FhirResource.deleted.is_(False), *clauses, *built]  # fmt: skip

    count = 0 if elements.count_only(options.summary) else options.count
    if options.order:
        page = await _offset_page(db, where(), options.order, position, count)
    elif fixed is not None and not position and count:
        page = await _first_fixed_page(db, fixed, org_id, resource_type, count)
    else:
        page = await _keyset_page(db, where(), position, count)
    rows = page.rows
    # A first page that holds the whole result is its own total: no COUNT.
    counted = not count or (options.total != "none" and (page.after_first or page.more))
    total = len(rows)
    if counted:
        counting = select(func.count()).select_from(FhirResource).where(*where())
        total = await driver_sql.scalar(db, counting) or 0

    def cursor(at: dict[str, Any] | None) -> str | None:
        if at is None:
            return None
        return encode_cursor(org_id=org_id, kind=kind, position={**at, "q": digest})

    included = await includes.resolve(db, org_id=org_id, matches=rows, specs=options.specs)
    return SearchResult(
        total=total,
        resources=rows,
        applied=applied,
        included=included,
        total_known=counted or options.total != "none",
        cursor=options.cursor,
        next_cursor=cursor(page.next),
        previous_cursor=cursor(page.previous),
        summary=options.summary,
        elements=options.elements,
        ignored=ignored,
    )
