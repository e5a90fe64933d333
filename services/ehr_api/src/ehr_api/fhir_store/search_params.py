"""The search parameters this store supports: one table drives indexing, search and the
CapabilityStatement, so adding a parameter is one line.

Each row is (resource type, name, type, FHIRPath expression[, reference targets]) as the
R4 specification defines them (searchparameters.html). `_id` and `_lastUpdated` are
answered from the current-resource row and are listed for every type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

__all__ = ["COMMON", "SearchParam", "lookup", "params_for"]

#: FHIR search parameter types this store indexes.
TYPES = frozenset({"token", "string", "date", "reference", "number", "quantity", "uri"})


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter of one resource type.

    `expression` is the R4 FHIRPath (already narrowed to this type when the spec's
    expression is shared, e.g. `Patient.name`); `targets` lists the resource types a
    reference parameter may point at (empty = any). Token parameters are stored in the
    token index, `uri` too (system ''), string in the string index, date in the date
    index, number and quantity in the number index, reference in the reference index.
    """

    name: str
    type: str
    expression: str
    targets: tuple[str, ...] = ()


#: Parameters of every type, answered from the fhir_resources row (no index table).
COMMON: Mapping[str, SearchParam] = {
    "_id": SearchParam("_id", "token", "Resource.id"),
    "_lastUpdated": SearchParam("_lastUpdated", "date", "Resource.meta.lastUpdated"),
}

#: (resource type, name, type, expression, targets). Filled in by the indexing work.
_TABLE: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = ()


@cache
def params_for(resource_type: str) -> Mapping[str, SearchParam]:
    """Every parameter of `resource_type` by name (COMMON included)."""
    found = dict(COMMON)
    for type_, name, kind, expression, targets in _TABLE:
        if type_ == resource_type:
            found[name] = SearchParam(name, kind, expression, targets)
    return found


def lookup(resource_type: str, name: str) -> SearchParam | None:
    """The parameter `name` of `resource_type`, or None when it is not supported."""
    return params_for(resource_type).get(name)
