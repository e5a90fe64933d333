"""Search values: how one parameter's values become a test on its index table.

search.py is the engine (criteria, chains, `_has`, `_sort`, paging); this module is the
value grammar of R4 search.html for each parameter type, the part that grows when a type or
a modifier is added: backslash escapes of `,` `|` `$`, the prefixes (`eq` ... `ap`) and
their range tables for dates, instants and numbers, `system|code` tokens,
`number|system|code` quantities, `Type/id` references, and the modifiers each type takes.
Every builder returns a clause on the caller's `fhir_resources` alias that reads only the
caller's organisation's index rows.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, false, not_, or_, select

from ehr_api.errors import BadRequestError
from ehr_api.fhir_store.indexing import (
    BY_IDENTIFIER,
    OF_TYPE,
    TEXT,
    date_range,
    normalise,
    number_range,
)
from ehr_api.fhir_store.models import (
    FhirSearchDate,
    FhirSearchNumber,
    FhirSearchReference,
    FhirSearchString,
    FhirSearchToken,
)
from ehr_api.fhir_store.search_params import SearchParam

__all__ = ["BUILDERS", "INDEXES", "MODIFIERS", "Context", "index_rows", "split"]

_PREFIXES = frozenset({"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"})
#: The modifiers each parameter type takes (a reference also takes `:Type`).
MODIFIERS: dict[str, set[str]] = {
    "token": {"not", "missing", "of-type", "text"},
    "uri": {"not", "missing", "below"},
    "string": {"exact", "contains", "missing"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "reference": {"missing", "identifier"},
}
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True, slots=True)
class Context:
    """Who searches: every index row read is this organisation's; `base` is this server's
    FHIR base (absolute references to it are read as Type/id)."""

    org_id: uuid.UUID
    base: str | None


def split(text: str, separator: str) -> list[str]:
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


def index_rows(
    ctx: Context, model: Any, resource_type: str, param: str, *where: Any
) -> Select[Any]:
    """Ids of `resource_type` resources with an index row of `param` matching `where`."""
    return (
        select(model.resource_id)
        .where(model.org_id == ctx.org_id, model.resource_type == resource_type,
               model.param == param, *where)
        .correlate(None)
    )  # fmt: skip


# Prefixes and ranges ----------------------------------------------------------------------


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


# One builder per type ---------------------------------------------------------------------


def _token(ctx: Context, row: Any, rt: str, param: SearchParam, mod: str, values: list[str]) -> Any:
    name = param.name
    if name == "_id":
        ids = [_unescape(value) for value in values]
        return row.id.not_in(ids) if mod == "not" else row.id.in_(ids)
    index = FhirSearchToken
    if mod == "of-type":
        typed = [_of_type(name, raw) for raw in values]
        return row.id.in_(index_rows(ctx, index, rt, name + OF_TYPE, or_(*typed)))
    if mod == "text":  # the words people read: the text, or a word of it, starts so
        words = FhirSearchString.value
        starts = [_like(normalise(_unescape(raw))) for raw in values]
        tests = [or_(words.like(f"{start}%", escape="\\"), words.like(f"% {start}%", escape="\\"))
                 for start in starts]  # fmt: skip
        return row.id.in_(index_rows(ctx, FhirSearchString, rt, name + TEXT, or_(*tests)))
    tests = []
    for raw in values:
        if param.type == "uri":
            text = _unescape(raw)
            tests.append(index.code.like(_like(text) + "%", escape="\\") if mod == "below"
                         else index.code == text[:255])  # fmt: skip
            continue
        tests.append(_system_code(name, raw))
    matching = row.id.in_(index_rows(ctx, index, rt, name, or_(*tests)))
    return not_(matching) if mod == "not" else matching


def _system_code(name: str, raw: str) -> Any:
    """The token index test of `code`, `system|code`, `|code` or `system|`."""
    index = FhirSearchToken
    parts = [_unescape(part)[:255] for part in split(raw, "|")]
    if len(parts) == 1:
        return index.code == parts[0]
    if len(parts) == 2 and (parts[0] or parts[1]):
        system, code = parts
        return and_(index.system == system, index.code == code) if code else index.system == system
    raise BadRequestError(f"{name}: {raw!r} is not system|code", field=name)


def _of_type(name: str, raw: str) -> Any:
    """`system|code|value` (Identifier.type's coding, then the value): the index test."""
    parts = [_unescape(part) for part in split(raw, "|")]
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise BadRequestError(
            f"{name}:of-type takes system|code|value (the identifier's type, then its"
            f" value), not {raw!r}",
            field=f"{name}:of-type",
        )
    system, code, value = parts
    index = FhirSearchToken
    return and_(index.system == system[:255], index.code == f"{code}|{value}"[:255])


def _string(
    ctx: Context, row: Any, rt: str, param: SearchParam, mod: str, values: list[str]
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
    return row.id.in_(index_rows(ctx, index, rt, param.name, or_(*tests)))


def _date(ctx: Context, row: Any, rt: str, param: SearchParam, mod: str, values: list[str]) -> Any:
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
    return row.id.in_(index_rows(ctx, FhirSearchDate, rt, param.name, or_(*tests)))


def _number_or_quantity(
    ctx: Context, row: Any, rt: str, param: SearchParam, mod: str, values: list[str]
) -> Any:
    index = FhirSearchNumber
    tests = []
    for raw in values:
        parts = [_unescape(part) for part in split(raw, "|")]
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
    return row.id.in_(index_rows(ctx, index, rt, param.name, or_(*tests)))


def _reference(
    ctx: Context, row: Any, rt: str, param: SearchParam, mod: str, values: list[str]
) -> Any:
    if mod == "identifier":  # the identifier a logical reference carries
        spec = f"{param.name}:identifier"
        tests = [_system_code(spec, raw) for raw in values]
        return row.id.in_(index_rows(ctx, FhirSearchToken, rt, param.name + BY_IDENTIFIER,
                                     or_(*tests)))  # fmt: skip
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
    return row.id.in_(index_rows(ctx, index, rt, param.name, or_(*tests)))


BUILDERS: dict[str, Callable[..., Any]] = {
    "token": _token,
    "uri": _token,
    "string": _string,
    "date": _date,
    "number": _number_or_quantity,
    "quantity": _number_or_quantity,
    "reference": _reference,
}
INDEXES: dict[str, Any] = {
    "token": FhirSearchToken,
    "uri": FhirSearchToken,
    "string": FhirSearchString,
    "date": FhirSearchDate,
    "number": FhirSearchNumber,
    "quantity": FhirSearchNumber,
    "reference": FhirSearchReference,
}
