"""Fixed Core statements run straight on the asyncpg driver of an org connection.

SQLAlchemy's Core `execute` costs about 0.3 ms of CPU per statement here (greenlet hop,
cache-key lookup, parameter and result processing), as much as the driver's own work,
and the FHIR store's hot statements never change shape. So on PostgreSQL an org
connection (`Database.org_connection`) can run such a statement through asyncpg
directly: compiled once to asyncpg's `$n` form, its parameters passed in that order.
Measured with bench/fhir_crud.py on a read-mostly mix: a read route that went through
Core execute served 1,028 req/s, through the driver 1,242.

The transaction stays SQLAlchemy's: `begin_now` starts it through the dialect's adapter
(sending BEGIN with the tenant prelude, `ehr_api.db.begin_prelude`), so driver
statements run inside it with the organisation's row-security settings, and COMMIT or
ROLLBACK is still the connection's. Elsewhere (SQLite, or an ORM session) the same
calls fall back to Core `execute`.

Only for statements whose bind values asyncpg takes as they are (UUIDs, strings,
numbers, datetimes, JSON already dumped to text for a `CAST(... AS jsonb)`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable

__all__ = ["begin_now", "compiled", "execute", "fetch"]

_DIALECT = PGDialect_asyncpg()
#: id(statement) -> (statement, SQL, parameter names); the statement is kept so that its
#: id is never reused by another object.
_COMPILED: dict[int, tuple[Executable, str, tuple[str, ...]]] = {}


async def begin_now(connection: AsyncConnection) -> None:
    """Send the transaction's BEGIN (with its prelude) now rather than at the first
    statement, so that driver statements run inside it (PostgreSQL only)."""
    raw = await connection.get_raw_connection()
    adapter: Any = raw.dbapi_connection
    if getattr(adapter, "_transaction", False) is None:
        await adapter._start_transaction()


async def fetch(
    db: AsyncConnection | AsyncSession, statement: Executable, params: Mapping[str, Any]
) -> Sequence[Any]:
    """The rows of `statement` (records on the driver path, Rows otherwise)."""
    raw = await _raw(db)
    if raw is None:
        return (await db.execute(statement, params)).all()
    sql, names = compiled(statement)
    try:
        rows: Sequence[Any] = await raw.driver_connection.fetch(
            sql, *(params[name] for name in names)
        )
    except Exception as error:
        raise _translated(raw, sql, params, error) from error
    return rows


async def execute(
    db: AsyncConnection | AsyncSession, statement: Executable, params: Mapping[str, Any]
) -> None:
    """Run `statement` for its effect."""
    raw = await _raw(db)
    if raw is None:
        await db.execute(statement, params)
        return
    sql, names = compiled(statement)
    try:
        await raw.driver_connection.execute(sql, *(params[name] for name in names))
    except Exception as error:
        raise _translated(raw, sql, params, error) from error


async def _raw(db: AsyncConnection | AsyncSession) -> Any:
    if not isinstance(db, AsyncConnection) or db.dialect.name != "postgresql":
        return None
    raw = await db.get_raw_connection()
    if getattr(raw.dbapi_connection, "_transaction", None) is None:
        return None  # no transaction begun through the adapter: stay on Core execute
    return raw


def _translated(raw: Any, sql: str, params: Mapping[str, Any], error: Exception) -> Exception:
    """The SQLAlchemy exception Core execute would have raised (IntegrityError, ...), so
    callers catch the same types on either path."""
    adapter = raw.dbapi_connection
    try:
        adapter._handle_exception(error)  # raises the DBAPI-level translation
    except Exception as dbapi_error:
        return DBAPIError.instance(sql, dict(params), dbapi_error, adapter.dbapi.Error)
    return error


def compiled(statement: Executable) -> tuple[str, tuple[str, ...]]:
    """`statement` in asyncpg's `$n` form and its parameter names in order (cached)."""
    found = _COMPILED.get(id(statement))
    if found is None:
        form = statement.compile(dialect=_DIALECT)
        names = tuple(form.positiontup or ())
        found = _COMPILED[id(statement)] = (statement, form.string, names)
    return found[1], found[2]
