"""PostgreSQL: a resource version, its history row, search index and event in ONE statement.

Through the ORM a write costs a round trip per table: current row, history, index
deletes, index inserts, event (5-6 statements, plus the unit of work's bookkeeping,
measured as about half of a create's server CPU). PostgreSQL runs data-modifying CTEs
of one statement together, so one statement does it all:

    WITH cur  AS (INSERT INTO fhir_resources ... | UPDATE fhir_resources ...
                  WHERE version_id = <the version before> ... RETURNING 1),
         hist AS (INSERT INTO fhir_resource_history ... WHERE EXISTS (SELECT 1 FROM cur)),
         ev   AS (INSERT INTO event_log ... WHERE EXISTS (...)),
         i_tokens AS (INSERT ... FROM jsonb_to_recordset(:tokens) ... WHERE EXISTS (...)), ...
    SELECT count(*) FROM cur

The update of the current row names the version it follows, and the row version it
read (PostgreSQL's `xmin`, `FhirResource.written_by`), and every other sub-statement
runs only if that update happened. So a write needs no row lock to be safe: if another
write committed first, this one writes nothing at all and says so (`write_version`
returns False), and the caller reads again (`service.update`). The row version matters
beside the FHIR version because a reindex (`fhir_store.reindex`) rewrites index rows
without a new FHIR version: rows it commits while this statement waits for its lock are
invisible to this statement's snapshot and would survive its index deletes; the reindex
therefore touches the rows it rebuilds, and this write notices.

Replacing a resource's index rows inside one statement cannot be "delete all, insert
all": every sub-statement sees the same snapshot, so a new row equal to an old one would
collide with it on the primary key. Instead each table gets an insert of the new rows
`ON CONFLICT DO NOTHING` (rows that stay are left alone) and a delete of the old rows
whose key is not among the new ones. The end state is the same: exactly the new rows.

Row-level security applies to every sub-statement (the transaction's organisation), and
the caller passes that organisation's `org_id` (`service.write` checks it).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from functools import cache
from typing import Any, Literal

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ehr_api.db import driver_sql
from ehr_api.db.scoped_pool import ScopedConnection
from ehr_api.fhir_store.indexing import IndexRows
from ehr_api.fhir_store.models import FhirResource
from ehr_api.fhir_store.repository import INDEX_COLUMNS, INDEX_KEYS, INDEX_TABLES

__all__ = ["version_statement", "write_version"]

#: "fresh": a first version (no old index rows); "replace": a later version; "clear": a
#: deletion (the index rows go, none come).
IndexMode = Literal["fresh", "replace", "clear"]

_OWNER = "org_id = CAST(:org AS uuid) AND resource_type = :type AND resource_id = :id"
_VALUES = (
    "CAST(:org AS uuid), :type, :id, CAST(:version AS integer), CAST(:now AS timestamptz),"
    " CAST(:deleted AS boolean), CAST(:content AS jsonb)"
)
_COLUMNS = "org_id, resource_type, id, version_id, last_updated, deleted, content"


def _recordset(kind: str) -> str:
    typed = ", ".join(f"{name} {sql}" for name, sql in INDEX_COLUMNS[kind])
    return f"jsonb_to_recordset(CAST(:{kind} AS jsonb)) AS x({typed})"


#: Every sub-statement but the current row's own writes only if that one did.
_IF_WRITTEN = "EXISTS (SELECT 1 FROM cur)"


def _index_ctes(mode: IndexMode, kinds: tuple[str, ...]) -> list[str]:
    ctes = []
    for kind in INDEX_TABLES:
        table = INDEX_TABLES[kind].__tablename__
        names = ", ".join(name for name, _ in INDEX_COLUMNS[kind])
        if kind in kinds:
            conflict = " ON CONFLICT DO NOTHING" if mode == "replace" else ""
            ctes.append(
                f"i_{kind} AS (INSERT INTO {table} (org_id, resource_type, resource_id, {names})"
                f" SELECT CAST(:org AS uuid), :type, :id, {names} FROM {_recordset(kind)}"
                f" WHERE {_IF_WRITTEN}{conflict})"
            )
        if mode == "clear" or (mode == "replace" and kind not in kinds):
            ctes.append(f"d_{kind} AS (DELETE FROM {table} WHERE {_OWNER} AND {_IF_WRITTEN})")
        elif mode == "replace":
            keys = ", ".join(INDEX_KEYS[kind])
            ctes.append(
                f"d_{kind} AS (DELETE FROM {table} WHERE {_OWNER} AND {_IF_WRITTEN}"
                f" AND ({keys}) NOT IN (SELECT {keys} FROM {_recordset(kind)}))"
            )
    return ctes


@cache
def _statement(existed: bool, mode: IndexMode, kinds: tuple[str, ...]) -> TextClause:
    """The one statement for a write of this shape (built once per shape)."""
    if existed:
        # Only over the version it follows: a write that lost a race writes nothing.
        current = (
            "cur AS (UPDATE fhir_resources SET version_id = CAST(:version AS integer),"
            " last_updated = CAST(:now AS timestamptz), deleted = CAST(:deleted AS boolean),"
            " content = CAST(:content AS jsonb)"
            " WHERE org_id = CAST(:org AS uuid) AND resource_type = :type AND id = :id"
            " AND version_id = CAST(:version AS integer) - 1"
            " AND (CAST(:read AS text) IS NULL OR xmin::text = CAST(:read AS text))"
            " RETURNING 1)"
        )
    else:
        current = f"cur AS (INSERT INTO fhir_resources ({_COLUMNS}) VALUES ({_VALUES}) RETURNING 1)"
    ctes = [
        current,
        f"hist AS (INSERT INTO fhir_resource_history ({_COLUMNS})"
        f" SELECT {_VALUES} WHERE {_IF_WRITTEN})",
        "ev AS (INSERT INTO event_log"
        " (org_id, event_type, source, resource_type, resource_id, data, created_at)"
        " SELECT CAST(:org AS uuid), :event, 'fhir', :type, :id, CAST(:event_data AS jsonb),"
        f" CAST(:now AS timestamptz) WHERE {_IF_WRITTEN})",
        *_index_ctes(mode, kinds),
    ]
    return text(f"WITH {', '.join(ctes)} SELECT count(*) FROM cur")


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def version_statement(
    *,
    org_id: uuid.UUID,
    row: FhirResource,
    existed: bool,
    rows: IndexRows | None,
    event_type: str,
) -> tuple[TextClause, dict[str, Any]]:
    """The statement writing `row`'s new version, and its parameters (see `write_version`)."""
    if rows is None:
        mode: IndexMode = "clear" if existed else "fresh"
        kinds: tuple[str, ...] = ()
    else:
        mode = "replace" if existed else "fresh"
        kinds = tuple(kind for kind in INDEX_TABLES if getattr(rows, kind))
    params: dict[str, Any] = {
        "org": str(org_id),
        "type": row.resource_type,
        "id": row.id,
        "version": row.version_id,
        "now": row.last_updated,
        "deleted": row.deleted,
        "content": json.dumps(row.content),
        "event": event_type,
        "event_data": json.dumps({"versionId": str(row.version_id)}),
    }
    if existed:
        params["read"] = row.written_by
    for kind in kinds:
        names = [name for name, _ in INDEX_COLUMNS[kind]]
        items = [dict(zip(names, value, strict=True)) for value in getattr(rows, kind)]
        params[kind] = json.dumps(items, default=_json_default)
    return _statement(existed, mode, kinds), params


async def write_version(
    db: AsyncSession | AsyncConnection | ScopedConnection,
    *,
    org_id: uuid.UUID,
    row: FhirResource,
    existed: bool,
    rows: IndexRows | None,
    event_type: str,
) -> bool:
    """Write `row`'s new version (its attributes already stamped) with one statement;
    False when nothing was written because the current row is no longer the version
    before `row`'s (another write came first: read again and retry).

    `existed`: the current row is in the table and is updated (only if its version is
    `row.version_id - 1`); otherwise it is inserted. `rows` None means a deletion: the
    index rows go.
    """
    statement, params = version_statement(
        org_id=org_id, row=row, existed=existed, rows=rows, event_type=event_type
    )
    found = await driver_sql.fetch(db, statement, params)  # straight to asyncpg if it can
    return bool(found[0][0])
