"""Connections that stay scoped to one organisation between uses (PostgreSQL, FHIR hot path).

An org transaction on the main pool costs two round trips around its real statements:
BEGIN with the row-security settings (`ehr_api.db.begin_prelude`) and COMMIT, plus
SQLAlchemy's checkout and transaction bookkeeping. For a FHIR read, whose real work is
one SELECT, that was most of the database cost. Measured with raw asyncpg on this
machine: BEGIN + settings, SELECT, COMMIT cost 0.14 ms of client CPU and 0.17 ms of
PostgreSQL CPU; the SELECT alone on a connection already scoped, 0.06 and 0.055.

So this pool keeps its own asyncpg connections whose settings are *session-level*, set
when the connection changes hands and kept while it serves the same scope:

    role                          = ehr_app    (at connect; never changed)
    app.platform                  = 'off'      (at connect; never changed)
    app.current_org               = <org>      (the scope: these two are set together,
    default_transaction_read_only = on | off    in one statement that echoes both back)

Statements run in autocommit, each its own transaction, under the same row-level
security policies as every org session; `Database.org_writes` wraps several in a plain
BEGIN ... COMMIT when they must be atomic. An idle connection remembers its scope, and
`acquire` prefers one already scoped as asked: a connection is re-scoped (one round
trip) only when none is idle for that organisation and mode.

The wall, restated for this pool:

- a connection is handed out only after its scope is the one asked for (set and
  confirmed, or kept from the previous holder of the same scope), and only this module
  sets it;
- a connection whose state is in doubt (a driver or socket error, a timeout, a
  cancelled call, a transaction left open) is closed, never reused; a statement's SQL
  error or an error of the code holding it (a 404) leaves it idle and usable;
- nothing outside this module gets these connections, and the platform setting is never
  on, so no code can run on one unscoped or with the platform's reach;
- a read connection is read-only in PostgreSQL's own terms: a write through it fails.

Session-level settings need a server session per connection: behind PgBouncer in
transaction mode, disable this pool (`EHR_DB_SCOPED_POOL_SIZE=0`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

__all__ = ["ScopedConnection", "ScopedPool"]

_SCOPE_TO = (
    "SELECT set_config('app.current_org', $1, false),"
    " set_config('default_transaction_read_only', $2, false)"
)

#: What a connection is scoped to: (organisation, read-only).
_Key = tuple[uuid.UUID, bool]


class ScopedConnection:
    """An asyncpg connection of a `ScopedPool`, scoped to `org_id` while held."""

    __slots__ = ("driver", "org_id")

    def __init__(self, driver: asyncpg.Connection, org_id: uuid.UUID) -> None:
        self.driver = driver
        self.org_id = org_id


class ScopedPool:
    """Up to `size` session-scoped connections, reused per organisation and mode.

    `url` and `connect_args` are what the main engine connects with (`async_url`);
    `app_role` is the row-security role (`EHR_DB_APP_ROLE`; None: do not switch).
    """

    def __init__(
        self,
        url: URL,
        connect_args: dict[str, Any],
        *,
        app_role: str | None,
        size: int,
    ) -> None:
        if size < 1:
            raise ValueError(f"size={size}: expected >= 1")
        self._url = url
        self._connect_args = connect_args
        self._app_role = app_role
        self._size = size
        self._idle: OrderedDict[asyncpg.Connection, _Key | None] = OrderedDict()
        self._scope_of: dict[asyncpg.Connection, _Key | None] = {}  # every open one
        self._open = 0  # connections that exist or are being opened
        #: Connections opened since start: more than `size` means some were replaced.
        self.opened = 0
        # Admission, first come first served: asyncio.Semaphore hands a released place to
        # the oldest waiter (a newcomer cannot take it first). With waiters woken by a
        # Condition, a request arriving just as a connection came back took it ahead of
        # the woken ones, who waited again: at 32 connections on a pool of 10 the gate
        # measured p99 127-137 -> 64-98 ms (docs/performance.md).
        self._gate = asyncio.Semaphore(size)
        self._closed = False

    @contextlib.asynccontextmanager
    async def acquire(
        self, org_id: uuid.UUID, *, read_only: bool = True
    ) -> AsyncIterator[ScopedConnection]:
        """A connection scoped to `org_id` for the block; back to the pool afterwards.

        Each statement is its own transaction (autocommit) unless the holder begins one
        (`Database.org_writes` does); `read_only=False` lets statements write.

        Raises:
            TypeError: `org_id` is not a UUID.
            RuntimeError: the pool is closed.
        """
        if not isinstance(org_id, uuid.UUID):
            raise TypeError(f"org_id must be a uuid.UUID, not {type(org_id).__name__}")
        key = (org_id, read_only)
        await self._gate.acquire()
        try:
            if self._closed:
                raise RuntimeError("the scoped connection pool is closed")
            driver = await self._checkout(key)
        except BaseException:
            self._gate.release()  # closed: this wakes the next waiter, who fails too
            raise
        reusable = False  # cancelled (BaseException): the connection may be mid-statement
        try:
            yield ScopedConnection(driver, org_id)
            reusable = True
        except Exception as error:
            # A statement's SQL error or the holder's own (a 404) leaves it idle and fine.
            reusable = not _breaks_connection(error)
            raise
        finally:
            try:
                await self._checkin(driver, key, reusable)
            finally:
                self._gate.release()

    async def close(self) -> None:
        """Close idle connections now; the ones in use are closed as they come back."""
        self._closed = True
        idle = list(self._idle)
        self._idle.clear()
        for driver in idle:
            self._scope_of.pop(driver, None)
            await _close(driver)
            self._open -= 1
        self._gate.release()  # the first waiter wakes to the closed pool, and wakes the next

    async def _checkout(self, key: _Key) -> asyncpg.Connection:
        """A connection scoped as `key`, for a caller holding a place at the gate.

        There is always one to take or room to open one: places equal `size`, so the
        connections held by others are fewer than `size`.
        """
        while True:
            driver = self._idle_for(key)
            if driver is not None and driver.is_closed():
                # The server ended it while idle (a restart, an idle timeout): replace it.
                await self._discard(driver)
                continue
            if driver is not None:
                return await self._scoped(driver, key)
            self._open += 1
            try:
                driver = await self._connect()
            except BaseException:
                self._open -= 1
                raise
            return await self._scoped(driver, key)

    def _idle_for(self, key: _Key) -> asyncpg.Connection | None:
        """The most recently used idle connection scoped as `key`; else, when the pool is
        full, the least recently used idle one (the likeliest to serve an organisation
        that went quiet), to be scoped again; else None: open one.

        Opening rather than re-scoping while there is room matters because reads and
        writes of one organisation alternate: with a single idle connection flipping
        between read-only and writable, a read plus its audit row cost two extra
        statements (measured: 4 statements per sequential read instead of 2).
        """
        for driver in reversed(self._idle):
            if self._idle[driver] == key:
                del self._idle[driver]
                return driver
        if self._idle and self._open >= self._size:
            driver, _ = self._idle.popitem(last=False)
            return driver
        return None

    async def _scoped(self, driver: asyncpg.Connection, key: _Key) -> asyncpg.Connection:
        if self._scope_of.get(driver) == key:
            return driver
        org, read_only = str(key[0]), "on" if key[1] else "off"
        try:
            confirmed = tuple(await driver.fetchrow(_SCOPE_TO, org, read_only))
            if confirmed != (org, read_only):  # pragma: no cover - PostgreSQL echoes them
                raise RuntimeError(f"the connection was not scoped to {key}")
        except BaseException:
            await self._discard(driver)
            raise
        self._scope_of[driver] = key
        return driver

    async def _checkin(self, driver: asyncpg.Connection, key: _Key, reusable: bool) -> None:
        if self._closed or not reusable or driver.is_closed() or driver.is_in_transaction():
            await self._discard(driver)
            return
        self._idle[driver] = key

    async def _discard(self, driver: asyncpg.Connection) -> None:
        self._scope_of.pop(driver, None)
        self._open -= 1
        await _close(driver)

    async def _connect(self) -> asyncpg.Connection:
        url = self._url
        server_settings = dict(self._connect_args.get("server_settings") or {})
        server_settings["default_transaction_read_only"] = "on"
        server_settings["app.platform"] = "off"
        server_settings["app.current_org"] = ""
        driver = await asyncpg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
            **{**self._connect_args, "server_settings": server_settings},
        )
        try:
            # As SQLAlchemy's dialect does: JSON goes in already dumped (bind processors,
            # or text for `CAST(... AS jsonb)`), comes out parsed.
            for kind in ("json", "jsonb"):
                await driver.set_type_codec(
                    kind, schema="pg_catalog", encoder=_dumped, decoder=json.loads
                )
            if self._app_role:
                await driver.execute(f'SET ROLE "{self._app_role}"')
        except BaseException:
            await _close(driver)
            raise
        self._scope_of[driver] = None
        self.opened += 1
        return driver


def _breaks_connection(error: BaseException) -> bool:
    """Whether `error`, or what it was raised from, says the connection itself failed
    (closed, timed out, a protocol error, another operation in progress) rather than a
    statement or the code holding it."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, asyncpg.InterfaceError | OSError):  # OSError: TimeoutError too
            return True
        seen = seen.__cause__
    return False


def _dumped(value: str) -> str:
    return value


async def _close(driver: asyncpg.Connection) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(driver.close(), timeout=5)
    if not driver.is_closed():
        driver.terminate()
