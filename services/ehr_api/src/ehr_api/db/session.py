"""The tenant-scoped session: the one way code reaches tenant data.

Two walls keep organisations apart.

1. The session (every backend). `Database.org_session(org_id)` opens a transaction whose
   session knows its organisation. Every ORM SELECT, UPDATE and DELETE it runs is given
   `org_id = :org` criteria on every tenant table (`org_id` is a synonym of `id` on
   organizations),
   including queries that forgot to filter, joins and relationship loads; a flush that
   would insert, change or delete a row of another organisation raises
   `CrossTenantError`. This is the only wall on SQLite. It does not see raw SQL
   (`text()`) or Core statements on `Table` objects: repositories therefore use ORM
   entities, and Core inserts take their `org_id` from `current_org_id(session)`.

2. Row-level security (PostgreSQL). At the start of every transaction the session runs,
   transaction-local (`set_config(..., true)`, reset at COMMIT or ROLLBACK so nothing
   leaks to the next user of a pooled connection), in the same round trip as the BEGIN
   (`ehr_api.db.begin_prelude`):

       role             = ehr_app          (a NOLOGIN role without BYPASSRLS)
       app.current_org  = <org uuid>       ('' in a platform session)
       app.platform     = 'on' | 'off'

   The policies created by the migrations (`ehr_api.db.rls`) admit a row when
   `org_id = app.current_org` or `app.platform = 'on'`, for reads (USING) and writes
   (WITH CHECK). The role switch matters because superusers and table owners bypass RLS;
   the switch is done with `set_config('role', ...)`, i.e. `SET LOCAL ROLE`, so it needs
   no second login and the migration user keeps owning the tables.

   Why a platform *setting* rather than a BYPASSRLS role: a platform session still runs
   as the unprivileged application role (no UPDATE/DELETE on audit_logs, no DDL), its
   reach is visible in the policy text, and the only way to widen it is to ask for
   `platform_session()` explicitly in code, which is easy to grep and review.

The settings are applied from the session's `after_begin` hook, so they hold for every
transaction the session begins: no code path gets a transaction on such a session without
them (a session that somehow has no scope gets no organisation and sees nothing).

The FHIR store's hot path (`Database.org_reads` / `org_writes`) uses a third kind of
connection on PostgreSQL, from `ehr_api.db.scoped_pool`: the same settings and policies,
kept at session level while a connection serves one organisation, so that a read needs
no BEGIN or COMMIT. That module states its own version of the wall.

Platform sessions (`Database.platform_session()`) are for work that is not bound to one
organisation: creating and listing organisations, resolving a token's organisation slug
or an API key prefix before the organisation is known, loading casbin role assignments,
platform-level audit rows, sweepers that scan every organisation's queue.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import chain
from typing import Any

from fastapi import Depends
from sqlalchemy import TextClause, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, with_loader_criteria
from starlette.requests import HTTPConnection

from ehr_api.db.base import TenantScoped
from ehr_api.db.begin_prelude import defer_to_begin, set_config_sql
from ehr_api.db.driver_sql import begin_now
from ehr_api.db.engine import (
    SQLITE_BEGIN_OPTION,
    async_url,
    database_url,
    engine_from_settings,
)
from ehr_api.db.engine import is_postgresql as engine_is_postgresql
from ehr_api.db.scoped_pool import ScopedConnection, ScopedPool
from ehr_api.settings import Settings

__all__ = [
    "CrossTenantError",
    "Database",
    "ReadOnlySessionError",
    "RowSecurityError",
    "Scope",
    "current_org_id",
    "get_database",
    "org_session_dependency",
]

_SCOPE = "ehr_scope"
_ROLE = "ehr_app_role"
_BEGIN_WITH = "ehr_begin_with"


class CrossTenantError(RuntimeError):
    """Code tried to write a row of another organisation through an org session.

    A programming error, not a user error: services must never build such a row, so it is
    not one of the domain errors that become 4xx responses.
    """


class RowSecurityError(RuntimeError):
    """PostgreSQL sessions run as a role that bypasses row-level security."""


class ReadOnlySessionError(RuntimeError):
    """A read-only session was asked to write (a programming error, like the above)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose data a session may touch (one organisation, or the platform) and how."""

    org_id: uuid.UUID | None
    platform: bool = False
    read_only: bool = False


class TenantSession(Session):
    """The sync `Session` behind every `AsyncSession` from `Database` (hooks below)."""


def current_org_id(
    session: AsyncSession | Session | AsyncConnection | ScopedConnection,
) -> uuid.UUID:
    """The organisation an org session (or org connection) is bound to, for Core statements.

    Raises:
        CrossTenantError: the session is a platform session (or not from `Database`).
    """
    if isinstance(session, ScopedConnection):
        return session.org_id
    scope = session.info.get(_SCOPE)
    if not isinstance(scope, Scope) or scope.org_id is None:
        raise CrossTenantError("not an organisation session: no current organisation")
    return scope.org_id


class Database:
    """The engine plus the two ways to open a session on it.

    One instance per process (the app keeps it in `app.state.database`); close it with
    `await database.dispose()`.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        app_role: str | None = "ehr_app",
        scoped: ScopedPool | None = None,
    ) -> None:
        self.engine = engine
        self.app_role = app_role or None
        self.scoped = scoped
        self._sessions = async_sessionmaker(
            engine,
            expire_on_commit=False,
            sync_session_class=TenantSession,
            info={_ROLE: self.app_role},
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The platform's database as configured (`DATABASE_URL`, `EHR_DB_APP_ROLE`,
        `EHR_DB_SCOPED_POOL_SIZE`)."""
        engine = engine_from_settings(settings)
        scoped = None
        if engine_is_postgresql(engine) and settings.db_scoped_pool_size:
            url, connect_args = async_url(database_url(settings))
            scoped = ScopedPool(
                url,
                connect_args,
                app_role=settings.db_app_role or None,
                size=settings.db_scoped_pool_size,
            )
        return cls(engine, app_role=settings.db_app_role, scoped=scoped)

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def org_session(
        self, org_id: uuid.UUID, *, read_only: bool = False, begin_with: str | None = None
    ) -> AsyncIterator[AsyncSession]:
        """A session bound to `org_id`, inside one transaction.

        Commits when the block exits normally, rolls back when it raises; services
        `flush()`, never `commit()`. `read_only=True` is for reads that should neither
        wait for nor block writers: a READ ONLY transaction on PostgreSQL, a deferred
        BEGIN on SQLite (see `ehr_api.db.engine`); flushing in it raises. `begin_with` is a
        constant SQL statement (no parameters) to run first on PostgreSQL, in the BEGIN's
        round trip where possible, e.g. an advisory lock; it is not run on SQLite.

        Raises:
            TypeError: `org_id` is not a UUID (a slug or string slipped through).
        """
        if not isinstance(org_id, uuid.UUID):
            raise TypeError(f"org_id must be a uuid.UUID, not {type(org_id).__name__}")
        async with self._session(Scope(org_id, read_only=read_only), begin_with) as session:
            yield session

    @asynccontextmanager
    async def platform_session(
        self, *, read_only: bool = False, begin_with: str | None = None
    ) -> AsyncIterator[AsyncSession]:
        """A session that sees every organisation; see the module docstring for when
        (`begin_with` as in `org_session`)."""
        scope = Scope(None, platform=True, read_only=read_only)
        async with self._session(scope, begin_with) as session:
            yield session

    @asynccontextmanager
    async def org_connection(
        self, org_id: uuid.UUID, *, read_only: bool = False
    ) -> AsyncIterator[AsyncConnection]:
        """A Core connection bound to `org_id`, inside one transaction: the light sibling
        of `org_session` for hot paths that run Core statements only.

        Same walls on PostgreSQL (the row-security settings, sent with BEGIN; READ ONLY
        when `read_only`), same BEGIN modes on SQLite, commit on normal exit, rollback
        when the block raises. What it lacks is the ORM: no identity map and no automatic
        `org_id` criteria, so every statement filters by `org_id` itself (on PostgreSQL
        row-level security refuses any other organisation's rows regardless). Measured: a
        FHIR read costs about 0.5 ms less server CPU through it than through an ORM
        session (docs/performance.md).

        Raises:
            TypeError: `org_id` is not a UUID.
        """
        if not isinstance(org_id, uuid.UUID):
            raise TypeError(f"org_id must be a uuid.UUID, not {type(org_id).__name__}")
        scope = Scope(org_id, read_only=read_only)
        async with self.engine.connect() as connection:
            if read_only and not self.is_postgresql:
                await connection.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
            # The connection's info outlives this checkout: the scope is removed on the way out.
            connection.info[_SCOPE] = scope
            try:
                async with connection.begin():
                    if self.is_postgresql:
                        await connection.run_sync(_send_scope, self.app_role, scope, None)
                        await begin_now(connection)  # so driver_sql statements run inside
                    yield connection
            finally:
                connection.info.pop(_SCOPE, None)

    def org_reads(
        self, org_id: uuid.UUID
    ) -> AbstractAsyncContextManager[ScopedConnection | AsyncConnection]:
        """A read-only connection of `org_id` for hot single-statement reads.

        On PostgreSQL with a scoped pool (`EHR_DB_SCOPED_POOL_SIZE`), a `ScopedConnection`:
        session-scoped, autocommit, no BEGIN or COMMIT (`ehr_api.db.scoped_pool`); run
        statements on it through `ehr_api.db.driver_sql`. Elsewhere, `org_connection`
        with `read_only=True`. Several statements on a scoped connection do not share a
        snapshot: use `org_connection` where that matters.
        """
        if self.scoped is not None:
            return self.scoped.acquire(org_id)
        return self.org_connection(org_id, read_only=True)

    @asynccontextmanager
    async def org_writes(
        self, org_id: uuid.UUID, *, atomic: bool = True
    ) -> AsyncIterator[ScopedConnection | AsyncConnection]:
        """A connection of `org_id` that may write, committed when the block exits.

        On PostgreSQL with a scoped pool, a writable `ScopedConnection`: inside one
        transaction (a plain BEGIN, the scope being already set) when `atomic`, else in
        autocommit, where each statement is atomic on its own: for a block that writes
        with a single statement (a FHIR create) or that guards its write itself (a FHIR
        update names the version it follows, `fhir_store.pg_write`). Elsewhere,
        `org_connection`.
        """
        if self.scoped is None:
            async with self.org_connection(org_id) as connection:
                yield connection
            return
        async with self.scoped.acquire(org_id, read_only=False) as scoped:
            if not atomic:
                yield scoped
                return
            async with scoped.driver.transaction():
                yield scoped

    async def check_row_security(self) -> None:
        """Fail unless PostgreSQL sessions run as a role that row-level security binds.

        Start-up and `/readyz` call this: with `EHR_DB_APP_ROLE` empty and a superuser or
        BYPASSRLS login, every policy would be silently void. Nothing to check on SQLite.

        Raises:
            RowSecurityError: the session role bypasses row-level security.
        """
        if not self.is_postgresql:
            return
        async with self.platform_session(read_only=True) as session:
            row = (await session.execute(_ROLE_BYPASSES_RLS)).one()
        if row.bypasses:
            raise RowSecurityError(
                f"sessions run as {row.role!r}, which bypasses row-level security: set"
                " EHR_DB_APP_ROLE (and run the migrations) or connect as a plain role"
            )

    async def dispose(self) -> None:
        """Close every pooled connection."""
        if self.scoped is not None:
            await self.scoped.close()
        await self.engine.dispose()

    @asynccontextmanager
    async def _session(
        self, scope: Scope, begin_with: str | None = None
    ) -> AsyncIterator[AsyncSession]:
        info = {_SCOPE: scope, _BEGIN_WITH: begin_with}
        async with self._sessions(info=info) as session, session.begin():
            if scope.read_only:
                await session.connection(execution_options={SQLITE_BEGIN_OPTION: "DEFERRED"})
            yield session


async def get_database(connection: HTTPConnection) -> Database:
    """FastAPI dependency: the `Database` that `create_app` put in `app.state.database`.

    `async` on purpose: FastAPI runs a plain `def` dependency in a worker thread, and that
    hop cost more than the lookup on every request.
    """
    database: Database = connection.app.state.database
    return database


def org_session_dependency(
    org_id: Callable[..., Any],
) -> Callable[..., AsyncIterator[AsyncSession]]:
    """Build the FastAPI dependency yielding an org session for the caller's organisation.

    `org_id` is a dependency returning the caller's organisation UUID (from the
    authenticated principal). Declare the result with `scope="function"` so the commit
    happens before the response is sent and a failed commit is an error response, not a
    lost write behind a 2xx::

        get_org_session = org_session_dependency(current_org)
        OrgSession = Annotated[AsyncSession, Depends(get_org_session, scope="function")]
    """

    # Defaults rather than Annotated: annotations are strings here (PEP 563) and FastAPI
    # resolves them in module globals, where the closure's `org_id` does not exist.
    async def org_session(
        database: Database = Depends(get_database),  # noqa: B008
        current: uuid.UUID = Depends(org_id),  # noqa: B008
    ) -> AsyncIterator[AsyncSession]:
        async with database.org_session(current) as session:
            yield session

    return org_session


_ROLE_BYPASSES_RLS = text(
    "SELECT current_user AS role, (rolsuper OR rolbypassrls) AS bypasses"
    " FROM pg_roles WHERE rolname = current_user"
)


# -- hooks on every TenantSession -------------------------------------------------------


@event.listens_for(TenantSession, "after_begin")
def _apply_scope(session: Session, _transaction: SessionTransaction, connection: Any) -> None:
    if connection.dialect.name != "postgresql":
        return
    scope = session.info.get(_SCOPE)
    if not isinstance(scope, Scope):
        scope = Scope(None)  # not from Database: no organisation, sees nothing
    _send_scope(connection, session.info.get(_ROLE), scope, session.info.get(_BEGIN_WITH))


def _send_scope(
    connection: Connection, role: str | None, scope: Scope, begin_with: str | None
) -> None:
    """Apply `scope`'s settings (and `begin_with`) to the transaction `connection` is
    beginning: with its BEGIN where possible, else as statements of their own."""
    settings = _scope_settings(role, scope)
    inlined = set_config_sql(settings)
    if inlined is not None:
        prelude = f"{inlined}; {begin_with}" if begin_with else inlined
        if defer_to_begin(connection, prelude):
            return  # sent with the driver's BEGIN: one round trip for all of it
    connection.execute(*_scope_statement(settings))
    if begin_with:
        connection.exec_driver_sql(begin_with)


def _scope_settings(role: str | None, scope: Scope) -> dict[str, str]:
    settings = {
        "app.current_org": str(scope.org_id) if scope.org_id else "",
        "app.platform": "on" if scope.platform else "off",
    }
    if role:
        settings["role"] = role
    if scope.read_only:
        settings["transaction_read_only"] = "on"
    return settings


def _scope_statement(settings: dict[str, str]) -> tuple[TextClause, dict[str, str]]:
    params: dict[str, str] = {}
    for index, (name, value) in enumerate(settings.items()):
        params[f"n{index}"] = name
        params[f"v{index}"] = value
    return _set_configs(len(settings)), params


@cache
def _set_configs(count: int) -> TextClause:
    # One round trip for every setting; transaction-local (third argument true).
    calls = ", ".join(f"set_config(:n{index}, :v{index}, true)" for index in range(count))
    return text(f"SELECT {calls}")


@event.listens_for(TenantSession, "do_orm_execute")
def _filter_by_org(state: ORMExecuteState) -> None:
    scope = state.session.info.get(_SCOPE)
    if not isinstance(scope, Scope):
        return
    if scope.read_only and (state.is_insert or state.is_update or state.is_delete):
        raise ReadOnlySessionError("INSERT, UPDATE or DELETE in a read-only session")
    if scope.platform:
        return
    if state.is_select:
        # Column and relationship loads inherit the criteria of the query that loaded
        # the parent; adding them again would only cost time.
        if state.is_column_load or state.is_relationship_load:
            return
    elif not (state.is_update or state.is_delete):
        return
    state.statement = state.statement.options(_tenant_criteria(scope.org_id))


@lru_cache(maxsize=4096)
def _tenant_criteria(org_id: uuid.UUID | None) -> Any:
    """The `org_id = :org` criteria option of one organisation, built once (None: no
    organisation, so `org_id IS NULL`, which matches nothing).

    The option is immutable and SQLAlchemy turns the lambda's `org_id` into a bound
    parameter, so sharing it is safe; building it per statement cost about half the hook's
    time (20 of 38 us per ORM statement, measured).
    """
    return with_loader_criteria(
        TenantScoped, lambda cls: cls.org_id == org_id, include_aliases=True
    )


@event.listens_for(TenantSession, "before_flush")
def _refuse_foreign_rows(session: Session, _context: Any, _instances: Any) -> None:
    scope = session.info.get(_SCOPE)
    if not isinstance(scope, Scope):
        return
    if scope.read_only and (session.new or session.dirty or session.deleted):
        raise ReadOnlySessionError("flush in a read-only session")
    if scope.platform:
        return
    for row in chain(session.new, session.dirty, session.deleted):
        if isinstance(row, TenantScoped) and row.org_id != scope.org_id:
            raise CrossTenantError(
                f"{type(row).__name__} of org {row.org_id} refused in the session of org"
                f" {scope.org_id}"
            )
