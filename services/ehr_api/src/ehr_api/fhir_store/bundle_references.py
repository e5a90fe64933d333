"""References inside a batch or transaction Bundle: urn placeholders and `Type?criteria`.

bundles.py decides what an entry may do and in which order; this module rewrites what an
entry's resource points at before it is stored, so the rules there stay readable and the
walking lives once. It knows nothing of entries, savepoints or the response Bundle.

- `replace_placeholders`: a transaction's `urn:uuid:`/`urn:oid:` fullUrls become `Type/id`
  in every `reference`, `url` and narrative `div`, at any depth (R4 http.html#trules).
- `resolve_conditional`: a `Type?criteria` reference becomes the one matching `Type/id`;
  no match is a 412, several a 412 from `match_one`.
- `match_one`: the strict, one-organisation lookup behind conditional references,
  `ifNoneExist` and conditional DELETE (an unknown parameter is a 400, never ignored).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ehr_api.errors import BadRequestError, DomainError, PreconditionFailedError
from ehr_api.fhir_store import service
from ehr_api.fhir_store.models import FhirResource
from ehr_api.fhir_store.search import is_criterion

__all__ = [
    "PLACEHOLDER_PREFIXES",
    "Find",
    "match_one",
    "replace_placeholders",
    "resolve_conditional",
    "strings",
]

#: fullUrl schemes that name an entry of the Bundle rather than a stored resource.
PLACEHOLDER_PREFIXES = ("urn:uuid:", "urn:oid:")
#: Finds the one resource of a type matching a query (None for none); raises DomainError.
Find = Callable[[str, list[tuple[str, str]]], Awaitable[FhirResource | None]]

_CONDITIONAL_REFERENCE = re.compile(r"([A-Z][A-Za-z]{1,63})\?(.+)")


#: Search parameters that shape a result but select nothing: not criteria.
def strings(node: Any, path: str) -> Iterator[tuple[dict[str, Any], str, str]]:
    """(parent, key, FHIRPath) of every `reference`, `url` and `div` string, any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and key in ("reference", "url", "div"):
                yield node, key, f"{path}.{key}"
            elif isinstance(value, dict | list):
                yield from strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for position, value in enumerate(node):
            yield from strings(value, f"{path}[{position}]")


def replace_placeholders(resource: dict[str, Any], root: str, placeholders: dict[str, str]) -> None:
    """Put `Type/id` for every urn placeholder in `resource` (FHIRPath root `root`).

    Raises:
        BadRequestError: a `reference` to a urn that is no placeholder of this Bundle.
    """
    for parent, key, where in strings(resource, root):
        value = parent[key]
        if key == "div":
            for urn, target in placeholders.items():
                value = value.replace(urn, target)
            parent[key] = value
        elif value in placeholders:
            parent[key] = placeholders[value]
        elif key == "reference" and value.startswith(PLACEHOLDER_PREFIXES):
            raise BadRequestError(f"{value} is the fullUrl of no POST or PUT entry of this"
                                  " Bundle", field=where)  # fmt: skip


async def resolve_conditional(
    resource: dict[str, Any],
    root: str,
    *,
    find: Find,
    resolved: dict[str, str],
    touched: dict[str, None],
) -> None:
    """Rewrite `Type?criteria` references in `resource` to the one matching `Type/id`.

    `resolved` caches criteria -> `Type/id` across a Bundle's entries; every target is
    added to `touched` (the audit's list) as it is written.

    Raises:
        DomainError: whatever `find` raised, its expression pointed at the reference.
        PreconditionFailedError: the criteria match nothing (412).
    """
    for parent, key, where in list(strings(resource, root)):
        written = _CONDITIONAL_REFERENCE.fullmatch(parent[key]) if key == "reference" else None
        if written is None:
            continue
        if parent[key] not in resolved:
            target_type, query = written.group(1), parse_qsl(written.group(2))
            try:
                found = await find(target_type, query)
            except DomainError as exc:
                exc.field = where
                raise
            if found is None:
                raise PreconditionFailedError(
                    f"the conditional reference {parent[key]} matches nothing", field=where
                )
            resolved[parent[key]] = f"{target_type}/{found.id}"
        parent[key] = resolved[parent[key]]
        touched.setdefault(parent[key])


async def match_one(
    db: AsyncSession | AsyncConnection,
    *,
    org_id: uuid.UUID,
    base: str | None,
    resource_type: str,
    query: list[tuple[str, str]],
    what: str,
) -> FhirResource | None:
    """The one resource of `org_id` matching `query`; None for no match.

    Raises:
        BadRequestError: no criteria, or a parameter the server does not know.
        PreconditionFailedError: several matches.
    """
    criteria = [(name, value) for name, value in query if is_criterion(name) and value]
    if not criteria:
        raise BadRequestError(f"{what} needs search criteria")
    found = await service.search(
        db, org_id=org_id, resource_type=resource_type,
        query=[*criteria, ("_count", "2")], base=base, strict=True,
    )  # fmt: skip
    if found.total > 1:
        raise PreconditionFailedError(f"{what} {resource_type}?{urlencode(criteria)} matched"
                                      f" {found.total} resources")  # fmt: skip
    return found.resources[0] if found.resources else None
