"""The search engine: a FHIR query becomes one SQL statement over the index tables.

Each criterion is a clause on `fhir_resources` of the form `id IN (SELECT resource_id FROM
<index table> WHERE org_id = ... AND param = ... AND <value test>)`, so every lookup
lands on an index table's `(org_id, resource_type, param, ...)` index. Parameters AND
together, comma-separated values OR. The index rows are written in the resource's own
transaction (models.py says what each column holds), so a clause reads exactly the
current versions. Chains (`subject:Patient.name=x`) and `_has` walk
`fhir_search_reference` into the other type's index, in the same organisation.

Paging is by offset inside an org-bound cursor (paging.py) that also pins a digest of the
query it was made for, so the links stay stateless and a cursor cannot silently page a
different query. The first page's total comes free when the page is not full; otherwise
one COUNT runs, unless `_total=none`.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, false, func, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import UnaryExpression

from ehr_api.errors import BadRequestError
from ehr_api.fhir_store import elements, includes
from ehr_api.fhir_store.indexing import date_range, normalise, number_range
from ehr_api.fhir_store.models import (
    FhirResource,
    FhirSearchDate,
    FhirSearchNumber,
    FhirSearchReference,
    FhirSearchString,
    FhirSearchToken,
)
from ehr_api.fhir_store.paging import decode_cursor, encode_cursor
from ehr_api.fhir_store.search_params import COMMON, SearchParam, lookup

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
_PREFIXES = frozenset({"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"})
_MODIFIERS = {
    "token": {"not", "missing"},
    "uri": {"not", "missing", "below"},
    "string": {"exact", "contains", "missing"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "reference": {"missing"},
}
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


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


@dataclass(frozen=True, slots=True)
class _Context:
    org_id: uuid.UUID
    base: str | None


def _split(text: str, separator: str) -> list[str]:
    """`text` cut at every `separator` not escaped with a backslash (escapes kept)."""
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\([\\,|$])", r"\1", text)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _rows(ctx: _Context, model: Any, resource_type: str, param: str, *where: Any) -> Select[Any]:
    """Ids of `resource_type` resources with an index row of `param` matching `where`."""
    return (
        select(model.resource_id)
        .where(model.org_id == ctx.org_id, model.resource_type == resource_type,
               model.param == param, *where)
        .correlate(None)
    )  # fmt: skip


def _live(ctx: _Context, row: Any, resource_type: str, *where: Any) -> Select[Any]:
    """Ids of the live resources of `resource_type` (through alias `row`) matching `where`."""
    return (
        select(row.id)
        .where(row.org_id == ctx.org_id, row.resource_type == resource_type,
               row.deleted.is_(False), *where)
        .correlate(None)
    )  # fmt: skip


# Values -----------------------------------------------------------------------------------


def _prefixed(value: str) -> tuple[str, str]:
    return (value[:2], value[2:]) if value[:2] in _PREFIXES else ("eq", value)


def _date_clause(prefix: str, low: datetime, high: datetime, rlow: Any, rhigh: Any) -> Any:
    """The spec's table for a stored range [rlow, rhigh) against the search [low, high)."""
    inside = and_(rlow >= low, rhigh <= high)
    if prefix == "ap":
        gap = abs(datetime.now(UTC) - low) * 0.1
        return and_(rlow < high + gap, rhigh > low - gap)
    clauses: dict[str, Any] = {
        "eq": inside,
        "ne": or_(rlow < low, rhigh > high),
        "gt": rhigh > high,
        "lt": rlow < low,
        "ge": or_(rhigh > high, inside),
        "le": or_(rlow < low, inside),
        "sa": rlow >= high,
        "eb": rhigh <= low,
    }
    return clauses[prefix]


def _instant_clause(prefix: str, low: datetime, high: datetime, moment: Any) -> Any:
    """The same table for a point in time (`_lastUpdated`)."""
    if prefix == "ap":
        gap = abs(datetime.now(UTC) - low) * 0.1
        return and_(moment >= low - gap, moment < high + gap)
    clauses: dict[str, Any] = {
        "eq": and_(moment >= low, moment < high),
        "ne": or_(moment < low, moment >= high),
        "gt": moment >= high,
        "sa": moment >= high,
        "lt": moment < low,
        "eb": moment < low,
        "ge": moment >= low,
        "le": moment < high,
    }
    return clauses[prefix]


def _number_clause(prefix: str, text: str, name: str) -> Any:
    """The stored value (the middle of its range) against the search value: `eq`/`ne` by
    the search value's precision range [low, high), the others against the value itself."""
    found = number_range(text) if _NUMBER.fullmatch(text) else None
    if found is None:
        raise BadRequestError(f"{name}: {text!r} is not a number", field=name)
    (low, high), value, row = found, float(text), FhirSearchNumber
    middle = (row.low + row.high) / 2  # the stored value itself
    slack = 1e-9 * max(1.0, abs(value))  # float rounding of the stored range
    clauses: dict[str, Any] = {
        "eq": and_(row.low <= high, row.high >= low, middle >= low - slack, middle < high - slack),
        "ne": or_(middle < low - slack, middle >= high - slack),
        "gt": middle > value + slack,
        "lt": middle < value - slack,
        "ge": middle >= value - slack,
        "le": middle <= value + slack,
        "sa": row.low > value + slack,
        "eb": row.high < value - slack,
        "ap": and_(middle >= value - abs(value) * 0.1, middle <= value + abs(value) * 0.1),
    }
    return clauses[prefix]


# Criteria ---------------------------------------------------------------------------------


def _token(
    ctx: _Context, row: Any, rt: str, param: SearchParam, mod: str, values: list[str]
) -> Any:
    name = param.name
    if name == "_id":
        ids = [_unescape(value) for value in values]
        return row.id.not_in(ids) if mod == "not" else row.id.in_(ids)
    index = FhirSearchToken
    tests = []
    for raw in values:
        if param.type == "uri":
            text = _unescape(raw)
            tests.append(index.code.like(_like(text) + "%", escape="\\") if mod == "below"
                         else index.code == text[:255])  # fmt: skip
            continue
        parts = [_unescape(part)[:255] for part in _split(raw, "|")]
        if len(parts) == 1:
            tests.append(index.code == parts[0])
        elif len(parts) == 2 and (parts[0] or parts[1]):
            system, code = parts
            tests.append(and_(index.system == system, index.code == code) if code
                         else index.system == system)  # fmt: skip
        else:
            raise BadRequestError(f"{name}: {raw!r} is not system|code", field=name)
    matching = row.id.in_(_rows(ctx, index, rt, name, or_(*tests)))
    return not_(matching) if mod == "not" else matching


def _string(
    ctx: _Context, row: Any, rt: str, param: SearchParam, mod: str, values: list[str]
) -> Any:
    index = FhirSearchString
    tests = []
    for raw in values:
        text = _unescape(raw)
        if mod == "exact":
            tests.append(index.exact == text[:255])
        elif mod == "contains":
            tests.append(index.value.like(f"%{_like(normalise(text))}%", escape="\\"))
        else:
            tests.append(index.value.like(_like(normalise(text)) + "%", escape="\\"))
    return row.id.in_(_rows(ctx, index, rt, param.name, or_(*tests)))


def _date(ctx: _Context, row: Any, rt: str, param: SearchParam, mod: str, values: list[str]) -> Any:
    tests = []
    for raw in values:
        prefix, text = _prefixed(raw)
        found = date_range(text)  # the value's precision, read exactly as the indexer does
        if found is None:
            raise BadRequestError(f"{param.name}: {text!r} is not a date", field=param.name)
        low, high = found
        if param.name == "_lastUpdated":
            tests.append(_instant_clause(prefix, low, high, row.last_updated))
        else:
            tests.append(_date_clause(prefix, low, high, FhirSearchDate.low, FhirSearchDate.high))
    if param.name == "_lastUpdated":
        return or_(*tests)
    return row.id.in_(_rows(ctx, FhirSearchDate, rt, param.name, or_(*tests)))


def _number_or_quantity(
    ctx: _Context, row: Any, rt: str, param: SearchParam, mod: str, values: list[str]
) -> Any:
    index = FhirSearchNumber
    tests = []
    for raw in values:
        parts = [_unescape(part) for part in _split(raw, "|")]
        if len(parts) not in (1, 3) or (len(parts) == 3 and param.type != "quantity"):
            raise BadRequestError(f"{param.name}: {raw!r} is not number|system|code",
                                  field=param.name)  # fmt: skip
        prefix, text = _prefixed(parts[0])
        test = [_number_clause(prefix, text, param.name)]
        if len(parts) == 3:
            system, code = parts[1], parts[2]
            test += [index.system == system] if system else []
            test += [index.code == code] if code else []
        tests.append(and_(*test))
    return row.id.in_(_rows(ctx, index, rt, param.name, or_(*tests)))


def _reference(
    ctx: _Context, row: Any, rt: str, param: SearchParam, mod: str, values: list[str]
) -> Any:
    index = FhirSearchReference
    tests = []
    for raw in values:
        text = re.sub(r"/_history/[^/]*$", "", _unescape(raw))
        if ctx.base and text.startswith(ctx.base + "/"):
            text = text[len(ctx.base) + 1 :]
        if "://" in text or text.startswith(("urn:", "#")):
            tests.append(index.url == text[:255])
            continue
        target, _, target_id = text.rpartition("/")
        if "/" in target or not target_id:
            raise BadRequestError(f"{param.name}: {raw!r} is not Type/id or an id",
                                  field=param.name)  # fmt: skip
        if target and mod and target != mod:
            tests.append(false())
            continue
        types = [target or mod] if (target or mod) else list(param.targets)
        test = [index.target_id == target_id]
        test += [index.target_type.in_(types)] if types else []
        tests.append(and_(*test))
    return row.id.in_(_rows(ctx, index, rt, param.name, or_(*tests)))


_BUILDERS: dict[str, Callable[..., Any]] = {
    "token": _token,
    "uri": _token,
    "string": _string,
    "date": _date,
    "number": _number_or_quantity,
    "quantity": _number_or_quantity,
    "reference": _reference,
}
_INDEXES: dict[str, Any] = {
    "token": FhirSearchToken,
    "uri": FhirSearchToken,
    "string": FhirSearchString,
    "date": FhirSearchDate,
    "number": FhirSearchNumber,
    "quantity": FhirSearchNumber,
    "reference": FhirSearchReference,
}


def _missing(ctx: _Context, row: Any, rt: str, param: SearchParam, value: str) -> Any:
    if value not in ("true", "false"):
        raise BadRequestError(f"{param.name}:missing takes true or false", field=param.name)
    if param.name in COMMON:  # every resource has an id and a lastUpdated
        return false() if value == "true" else true()
    present = row.id.in_(_rows(ctx, _INDEXES[param.type], rt, param.name))
    return not_(present) if value == "true" else present


def _chain(
    ctx: _Context, row: Any, rt: str, param: SearchParam, mod: str, rest: str, value: str,
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
        refs = _rows(ctx, index, rt, param.name, index.target_type == kind,
                     index.target_id.in_(ids))  # fmt: skip
        found.append(row.id.in_(refs))
    return or_(*found)


def _has(ctx: _Context, row: Any, rt: str, spec: str, value: str, depth: int) -> Any:
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


def _criterion(ctx: _Context, row: Any, rt: str, spec: str, value: str, depth: int = 0) -> Any:
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
    if mod and not is_type and mod not in _MODIFIERS[param.type]:
        raise BadRequestError(f"{name}: modifier {mod!r} is not supported on a {param.type}",
                              field=spec)  # fmt: skip
    values = [part for part in _split(value, ",") if part]
    return _BUILDERS[param.type](ctx, row, rt, param, mod, values)


# Sorting ----------------------------------------------------------------------------------


def _sort(ctx: _Context, rt: str, value: str) -> list[UnaryExpression[Any]]:
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
            index = _INDEXES[param.type]
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


def _result_param(ctx: _Context, rt: str, name: str, value: str, options: _Options) -> None:
    base, _, mod = name.partition(":")
    if base == "_count":
        if not value.isdigit():
            raise BadRequestError(f"_count must be a number, got {value!r}", field="_count")
        options.count = min(int(value), MAX_COUNT)
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


def _digest(applied: Sequence[tuple[str, str]]) -> str:
    """What a cursor pins: the query without its page size."""
    kept = sorted((name, value) for name, value in applied if name != "_count")
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()[:16]


async def run(
    db: AsyncSession,
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
    ctx = _Context(org_id, base)
    clauses: list[Any] = []
    applied: list[tuple[str, str]] = []
    options = _Options()
    for name, value in query:
        if name.partition(":")[0] in _RESULT:
            _result_param(ctx, resource_type, name, value, options)
        elif not value:
            continue
        else:
            try:
                clauses.append(_criterion(ctx, FhirResource, resource_type, name, value))
            except UnknownParameterError:
                if strict:
                    raise
                continue
        if name not in _UNLINKED:
            applied.append((name, value))
    kind = f"search:{resource_type}"
    offset = 0
    if options.cursor:
        position = decode_cursor(options.cursor, org_id=org_id, kind=kind)
        if position.get("q") != _digest(applied) or not isinstance(position.get("n"), int):
            raise BadRequestError("the paging cursor was made for another query", field=CURSOR)
        offset = max(0, position["n"])
    where = [FhirResource.org_id == org_id, FhirResource.resource_type == resource_type,
             FhirResource.deleted.is_(False), *clauses]  # fmt: skip
    count = 0 if elements.count_only(options.summary) else options.count
    rows: list[FhirResource] = []
    if count:
        order = options.order or [FhirResource.last_updated.asc(), FhirResource.id.asc()]
        page = select(FhirResource).where(*where).order_by(*order)
        rows = [*(await db.execute(page.offset(offset).limit(count + 1))).scalars()]
    more, rows = len(rows) > count, rows[:count]
    # A first page that holds the whole result is its own total: no COUNT.
    counted = not count or (options.total != "none" and (offset > 0 or more))
    total = offset + len(rows)
    if counted:
        total = await db.scalar(select(func.count()).select_from(FhirResource).where(*where)) or 0

    def cursor(at: int) -> str:
        return encode_cursor(org_id=org_id, kind=kind, position={"n": at, "q": _digest(applied)})

    included = await includes.resolve(db, org_id=org_id, matches=rows, specs=options.specs)
    return SearchResult(
        total=total,
        resources=rows,
        applied=applied,
        included=included,
        total_known=counted or options.total != "none",
        cursor=options.cursor,
        next_cursor=cursor(offset + count) if more else None,
        previous_cursor=cursor(max(0, offset - count)) if offset and count else None,
        summary=options.summary,
        elements=options.elements,
    )
