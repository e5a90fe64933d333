"""Fixed statements for the commonest searches: one `_id`, or one token `system|code` or `code`.

Building a search statement with SQLAlchemy and compiling it through the statement cache
costs about 150-250 us of CPU per search here (an identifier criterion alone is ~90 us of
expression building), more than PostgreSQL spends running it. These forms are behind
lookups by business identifier and every conditional create, update and reference that
HL7 ingestion sends (`Patient?identifier=system|value`), and their SQL never changes
shape, so they run as statements built and compiled once, like a read by id.

Each statement is the general path's SQL for the same criterion (search.py, search_values
`_token`): the same `id IN (SELECT resource_id FROM fhir_search_token ...)` over the
organisation's index rows, the same order (last updated, then id), so the planner and the
results are the same. Only the plain forms qualify; anything else (a modifier, a chain,
`_has`, an escape, a comma list, `|code`, `system|`, a parameter that is not a token) is
None here and goes the general way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ehr_api.db import driver_sql
from ehr_api.db.scoped_pool import ScopedConnection
from ehr_api.fhir_store import repository
from ehr_api.fhir_store.models import FhirResource, FhirSearchToken
from ehr_api.fhir_store.search_params import lookup

__all__ = ["Lookup", "first_page", "fixed_lookup"]

#: Index values are stored cut to their column size; the general path cuts the same way.
_CODE_SIZE = 255

_RESOURCES = cast(Table, FhirResource.__table__)
_TOKENS = cast(Table, FhirSearchToken.__table__)


def _page(*criteria: Any) -> Select[Any]:
    """Current, live resources of one organisation and type matching `criteria`, first
    page in the default order."""
    return (
        select(*repository.RESOURCE_COLUMNS)
        .where(
            _RESOURCES.c.org_id == bindparam("org_id"),
            _RESOURCES.c.resource_type == bindparam("resource_type"),
            _RESOURCES.c.deleted.is_(False),
            *criteria,
        )
        .order_by(_RESOURCES.c.last_updated, _RESOURCES.c.id)
        .limit(bindparam("limit"))
    )


def _tokens(*tests: Any) -> Any:
    rows = select(_TOKENS.c.resource_id).where(
        _TOKENS.c.org_id == bindparam("org_id"),
        _TOKENS.c.resource_type == bindparam("resource_type"),
        _TOKENS.c.param == bindparam("param"),
        *tests,
    )
    return _RESOURCES.c.id.in_(rows)


_BY_ID = _page(_RESOURCES.c.id == bindparam("id"))
_BY_SYSTEM_CODE = _page(
    _tokens(_TOKENS.c.system == bindparam("system"), _TOKENS.c.code == bindparam("code"))
)
_BY_CODE = _page(_tokens(_TOKENS.c.code == bindparam("code")))


@dataclass(frozen=True, slots=True)
class Lookup:
    """A criterion answered by a fixed statement: the statement and the criterion's values
    (the organisation, type and limit are added by `first_page`)."""

    statement: Select[Any]
    values: dict[str, Any]


def fixed_lookup(resource_type: str, name: str, value: str) -> Lookup | None:
    """The fixed statement for `name=value` on `resource_type`, or None to go the general way.

    >>> fixed_lookup("Patient", "identifier", "urn:mrn|123").values
    {'param': 'identifier', 'system': 'urn:mrn', 'code': '123'}
    >>> [fixed_lookup("Patient", *pair) for pair in [("identifier:not", "x"), ("name", "x")]]
    [None, None]
    """
    if not value or ":" in name or "." in name or "\\" in value or "," in value:
        return None
    if name == "_id":
        return Lookup(_BY_ID, {"id": value})
    param = lookup(resource_type, name)
    if param is None or param.type != "token":
        return None
    parts = value.split("|")
    if len(parts) == 1:
        return Lookup(_BY_CODE, {"param": param.name, "code": value[:_CODE_SIZE]})
    if len(parts) == 2 and parts[0] and parts[1]:
        system, code = parts[0][:_CODE_SIZE], parts[1][:_CODE_SIZE]
        return Lookup(_BY_SYSTEM_CODE, {"param": param.name, "system": system, "code": code})
    return None


async def first_page(
    db: AsyncSession | AsyncConnection | ScopedConnection,
    found: Lookup,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    limit: int,
) -> list[FhirResource]:
    """Up to `limit` matches of `found` in `org_id`, oldest update first."""
    values = {**found.values, "org_id": org_id, "resource_type": resource_type, "limit": limit}
    return repository.detached_rows(await driver_sql.fetch(db, found.statement, values))
