"""Core statements run straight on the asyncpg driver (an org or a scoped connection).

SQLAlchemy's Core `execute` costs about 0.3 ms of CPU per statement here (greenlet hop,
cache-key lookup, parameter and result processing), as much as the driver's own work,
and the FHIR store's hot statements never change shape. So on PostgreSQL an org
connection (`Database.org_connection`) can run such a statement through asyncpg
directly: compiled once to asyncpg's `$n` form, its parameters passed in that order.
Measured with bench/fhir_crud.py on a read-mostly mix: a read route that went through
Core execute served 1,028 req/s, through the driver 1,242.

On a `ScopedConnection` (`ehr_api.db.scoped_pool`, the FHIR hot path) there is no
SQLAlchemy connection at all: fixed statements run the same way, and statements built
per call (`rows`, `scalar`: a search's SELECT) are compiled through SQLAlchemy's
statement cache by their cache key, as an engine would, and run on the driver.

On an org connection the transaction stays SQLAlchemy's: `begin_now` starts it through
the dialect's adapter (sending BEGIN with the tenant prelude, `ehr_api.db.begin_prelude`),
so driver statements run inside it with the organisation's row-security settings, and
COMMIT or ROLLBACK is still the connection's. Elsewhere (SQLite, or an ORM session) the same
calls fall back to Core `execute`.

Only for statements whose bind values asyncpg takes as they are (UUIDs, strings,
numbers, datetimes, JSON already dumped to text for a `CAST(... AS jsonb)`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection, PGDialect_asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable
from sqlalchemy.util import LRUCache

from ehr_api.db.scoped_pool import ScopedConnection

__all__ = [
    "begin_now",
    "compiled",
    "execute",
    "fetch",
    "in_transaction",
    "on_postgresql",
    "rows",
    "savepoint",
    "scalar",
]

_DIALECT = PGDialect_asyncpg()
_DBAPI: Any = PGDialect_asyncpg.import_dbapi()
#: Compiled forms of per-call statements by cache key, as an engine keeps them.
_STATEMENT_CACHE: LRUCache[Any, Any] = LRUCache(500)
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


def on_postgresql(db: AsyncConnection | AsyncSession | ScopedConnection) -> bool:
    """Whether `db` talks to PostgreSQL."""
    if isinstance(db, ScopedConnection):
        return True
    dialect = db.dialect if isinstance(db, AsyncConnection) else db.get_bind().dialect
    return bool(dialect.name == "postgresql")


def in_transaction(db: AsyncConnection | AsyncSession | ScopedConnection) -> bool:
    """Whether statements on `db` run in one transaction (sessions and org connections
    always do; a scoped connection only inside a BEGIN of its holder's)."""
    if isinstance(db, ScopedConnection):
        return bool(db.driver.is_in_transaction())
    return True


def savepoint(
    db: AsyncConnection | AsyncSession | ScopedConnection,
) -> AbstractAsyncContextManager[Any]:
    """A SAVEPOINT inside `db`'s transaction: released when the block exits normally,
    rolled back to when it raises (a batch Bundle's entry)."""
    if isinstance(db, ScopedConnection):
        savepoint: AbstractAsyncContextManager[Any] = db.driver.transaction()
        return savepoint
    return db.begin_nested()


async def fetch(
    db: AsyncConnection | AsyncSession | ScopedConnection,
    statement: Executable,
    params: Mapping[str, Any],
) -> Sequence[Any]:
    """The rows of `statement` (records on the driver path, Rows otherwise)."""
    if isinstance(db, ScopedConnection):
        sql, names = compiled(statement)
        found: Sequence[Any] = await _on_driver(
            db, "fetch", sql, [params[name] for name in names], params
        )
        return found
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
    db: AsyncConnection | AsyncSession | ScopedConnection,
    statement: Executable,
    params: Mapping[str, Any],
) -> None:
    """Run `statement` for its effect."""
    if isinstance(db, ScopedConnection):
        sql, names = compiled(statement)
        await _on_driver(db, "execute", sql, [params[name] for name in names], params)
        return
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


async def rows(
    db: AsyncConnection | AsyncSession | ScopedConnection, statement: Executable
) -> Sequence[Any]:
    """The rows of a statement built per call (a search's SELECT, with its own bound
    values): on a `ScopedConnection` compiled through SQLAlchemy's statement cache and run
    on the driver, elsewhere Core `execute`. Rows are tuples (records on the driver)."""
    if not isinstance(db, ScopedConnection):
        return (await db.execute(statement)).all()
    sql, values = _bound(statement)
    found: Sequence[Any] = await _on_driver(db, "fetch", sql, values, {})
    return found


async def scalar(
    db: AsyncConnection | AsyncSession | ScopedConnection, statement: Executable
) -> Any:
    """The first column of the first row of `statement` (None without rows), as `rows`."""
    if not isinstance(db, ScopedConnection):
        return await db.scalar(statement)
    sql, values = _bound(statement)
    return await _on_driver(db, "fetchval", sql, values, {})


async def _on_driver(
    db: ScopedConnection, method: str, sql: str, values: Sequence[Any], params: Mapping[str, Any]
) -> Any:
    """`db.driver.<method>(sql, *values)`, its errors translated as Core would raise them."""
    try:
        return await getattr(db.driver, method)(sql, *values)
    except Exception as error:
        raise _translated_plain(sql, params, error) from error


def _bound(statement: Executable) -> tuple[str, list[Any]]:
    """`statement`'s SQL and positional values, as SQLAlchemy's execute would send them
    (compiled form cached by the statement's cache key; expanding IN lists rendered; bind
    processors applied)."""
    compile_with_cache: Any = statement._compile_w_cache
    form: Any
    form, extracted, _, _ = compile_with_cache(
        _DIALECT, compiled_cache=_STATEMENT_CACHE, column_keys=[]
    )
    params = form.construct_params(extracted_parameters=extracted, escape_names=False)
    processors = form._bind_processors
    if form.literal_execute_params or form.post_compile_params:
        expanded = form._process_parameters_for_postcompile(params)
        sql, order, params = expanded.statement, expanded.positiontup, expanded.parameters
        processors = {**processors, **expanded.processors}
    else:
        sql, order = form.string, form.positiontup
    values = [
        processors[name](params[name]) if name in processors else params[name] for name in order
    ]
    return sql, values


def _translated_plain(sql: str, params: Mapping[str, Any], error: Exception) -> Exception:
    """`_translated` for a connection SQLAlchemy does not know (`ScopedConnection`)."""
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(_DBAPI, error)
    except Exception as dbapi_error:
        return DBAPIError.instance(sql, dict(params), dbapi_error, _DBAPI.Error)
    return error


def compiled(statement: Executable) -> tuple[str, tuple[str, ...]]:
    """`statement` in asyncpg's `$n` form and its parameter names in order (cached)."""
    found = _COMPILED.get(id(statement))
    if found is None:
        form = statement.compile(dialect=_DIALECT)
        names = tuple(form.positiontup or ())
        found = _COMPILED[id(statement)] = (statement, form.string, names)
    return found[1], found[2]
