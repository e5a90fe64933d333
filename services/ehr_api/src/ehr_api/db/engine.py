"""The async engine: SQLite file for the embedded default, PostgreSQL when configured.

`DATABASE_URL` is written the way operators write it (`postgresql://user@host/db`,
`postgres://...`, `sqlite:///path`), so the driver is chosen here, not by the operator:
asyncpg for PostgreSQL and aiosqlite for SQLite. libpq-only query parameters that asyncpg
does not understand are translated (`sslmode` -> `ssl`, `options=-c name=value` and
`application_name` -> server settings), which keeps one URL usable by `psql`, Alembic and
the app alike; tests use `options=-c search_path=<schema>` to isolate themselves.

SQLite gets WAL (readers never wait for the writer), foreign keys (off by default in
SQLite), a busy timeout, and real transactions: the sqlite3 driver's legacy mode does not
BEGIN before a SELECT, so reads would not be repeatable and SAVEPOINTs would escape the
enclosing transaction. Transactions start with `BEGIN IMMEDIATE`, taking the write lock
up front and waiting for it (busy timeout) like PostgreSQL waits for a row lock. The
default `BEGIN DEFERRED` would take it at the first write instead, and a transaction that
read before another writer committed then fails at once with "database is locked" (the
busy timeout cannot help: its snapshot is stale), which is what every read-then-write
service does under concurrent requests. Rails and Django made the same choice. Read-only
work can ask for a deferred BEGIN (`SQLITE_BEGIN_OPTION`), which never blocks writers.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ehr_api.db.begin_prelude import PreludeConnection, forget_unsent_preludes
from ehr_api.settings import Settings

__all__ = [
    "SQLITE_BEGIN_OPTION",
    "async_url",
    "create_engine",
    "database_url",
    "engine_from_settings",
    "is_postgresql",
]

#: Connection execution option read by the SQLite ``begin`` hook: "DEFERRED" for a
#: read-only transaction that must not wait for (or block) writers; default "IMMEDIATE".
SQLITE_BEGIN_OPTION = "ehr_sqlite_begin"

_SQLITE_BUSY_TIMEOUT_MS = 5000


def database_url(settings: Settings) -> str:
    """The URL the settings point at: `DATABASE_URL`, else the SQLite file in the data dir."""
    if settings.database_url:
        return settings.database_url
    return f"sqlite:///{settings.sqlite_path.resolve()}"


def async_url(url: str | URL) -> tuple[URL, dict[str, Any]]:
    """Pick the async driver for `url`; return the URL and extra asyncpg connect args.

    >>> async_url("postgres://u@h/db")[0].render_as_string()
    'postgresql+asyncpg://u@h/db'

    Raises:
        ValueError: the URL names a database other than PostgreSQL or SQLite, or carries
            libpq options that cannot be translated.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return _asyncpg_url(parsed)
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite"), {}
    raise ValueError(f"unsupported database {backend!r}: use postgresql:// or sqlite://")


def is_postgresql(target: AsyncEngine | str | URL) -> bool:
    """Whether `target` (an engine or URL) talks to PostgreSQL."""
    if isinstance(target, AsyncEngine):
        return target.dialect.name == "postgresql"
    return make_url(target).get_backend_name() in ("postgresql", "postgres")


def create_engine(
    url: str | URL,
    *,
    echo: bool = False,
    pool_size: int = 10,
    sqlite_synchronous: str = "FULL",
) -> AsyncEngine:
    """An `AsyncEngine` for `url` with the SQLite/PostgreSQL set-up described above.

    The caller owns the engine and must `await engine.dispose()` when done.

    Raises:
        ValueError: see `async_url`, or `sqlite_synchronous` is not a SQLite level.
    """
    if sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ValueError(f"sqlite_synchronous={sqlite_synchronous!r}: OFF, NORMAL, FULL or EXTRA")
    target, connect_args = async_url(url)
    if target.get_backend_name() == "postgresql":
        pg_engine = create_async_engine(
            target,
            echo=echo,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={**connect_args, "connection_class": PreludeConnection},
        )
        forget_unsent_preludes(pg_engine)
        return pg_engine
    database = target.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(target, echo=echo)
    _configure_sqlite(engine, synchronous=sqlite_synchronous.upper())
    return engine


def engine_from_settings(settings: Settings) -> AsyncEngine:
    """The engine the platform runs on, built from its settings."""
    return create_engine(
        database_url(settings),
        echo=settings.db_echo,
        pool_size=settings.db_pool_size,
        sqlite_synchronous=settings.sqlite_synchronous,
    )


def _asyncpg_url(parsed: URL) -> tuple[URL, dict[str, Any]]:
    query = dict(parsed.query)
    server_settings: dict[str, str] = {}
    connect_args: dict[str, Any] = {}
    options = query.pop("options", None)
    if options is not None:
        server_settings.update(_libpq_options(_single(options)))
    application_name = query.pop("application_name", None)
    if application_name is not None:
        server_settings["application_name"] = _single(application_name)
    sslmode = query.pop("sslmode", None)
    if sslmode is not None and "ssl" not in query:
        connect_args["ssl"] = _single(sslmode)
    if server_settings:
        connect_args["server_settings"] = server_settings
    converted = parsed.set(drivername="postgresql+asyncpg", query=query)
    return converted, connect_args


def _single(value: str | tuple[str, ...]) -> str:
    return value if isinstance(value, str) else value[-1]


def _libpq_options(options: str) -> dict[str, str]:
    """Parse libpq's `options` ("-c search_path=x -c statement_timeout=5s")."""
    settings: dict[str, str] = {}
    words = shlex.split(options)
    index = 0
    while index < len(words):
        word = words[index]
        if word == "-c" and index + 1 < len(words):
            assignment = words[index + 1]
            index += 2
        elif word.startswith(("-c", "--")):
            assignment = word[2:]
            index += 1
        else:
            raise ValueError(f"unsupported libpq option {word!r} in options={options!r}")
        name, sep, value = assignment.partition("=")
        if not sep:
            raise ValueError(f"expected name=value in options={options!r}")
        settings[name.strip().replace("-", "_")] = value.strip()
    return settings


def _configure_sqlite(engine: AsyncEngine, *, synchronous: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver; the "begin" hook emits BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION)
        connection.exec_driver_sql("BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")
