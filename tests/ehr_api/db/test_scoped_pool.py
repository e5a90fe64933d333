"""The scoped pool (PostgreSQL): connections that keep one organisation's scope between uses.

Its wall is different from an org session's (session-level settings instead of
transaction-local ones), so these tests try to cross it the ways a pooled connection
could: the same backend serving A then B, a write through a read connection, a foreign
row through a write connection, a statement cancelled half-way, a transaction left open.
The backend's pid tells whether a connection was reused or replaced.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from ehr_api.db import Database, driver_sql
from ehr_api.db.engine import async_url
from ehr_api.db.models import TENANT_TABLES
from ehr_api.db.scoped_pool import ScopedConnection, ScopedPool
from ehr_api.settings import Settings, SettingsError
from sqlalchemy import literal, select
from sqlalchemy.exc import DBAPIError

from tests.ehr_api.conftest import APP_ROLE, scoped_database
from tests.ehr_api.db.test_tenant_scoping import Tenants, seed

pytestmark = pytest.mark.postgres


@pytest.fixture
async def one(migrated_pg: str) -> AsyncIterator[Database]:
    """A database whose scoped pool has one connection: every use reuses it."""
    async with scoped_database(migrated_pg, 1) as database:
        yield database


@pytest.fixture
async def two(migrated_pg: str) -> AsyncIterator[Database]:
    async with scoped_database(migrated_pg, 2) as database:
        yield database


@pytest.fixture
async def tenants(one: Database) -> Tenants:
    return await seed(one)


def _pool(database: Database) -> ScopedPool:
    assert database.scoped is not None
    return database.scoped


async def _pid(connection: ScopedConnection) -> int:
    pid: int = await connection.driver.fetchval("SELECT pg_backend_pid()")
    return pid


async def _orgs_seen(connection: ScopedConnection) -> dict[str, set[uuid.UUID]]:
    seen = {}
    for table in TENANT_TABLES:
        rows = await connection.driver.fetch(f"SELECT org_id FROM {table}")
        seen[table] = {row[0] for row in rows}
    return seen


async def _occupy(pool: ScopedPool, org: uuid.UUID, release: asyncio.Event) -> asyncio.Task[None]:
    """A task holding one connection of `pool` until `release` is set (returns once held)."""
    entered = asyncio.Event()

    async def hold() -> None:
        async with pool.acquire(org):
            entered.set()
            await release.wait()

    task = asyncio.create_task(hold())
    await entered.wait()
    return task


async def _use(pool: ScopedPool, org: uuid.UUID) -> None:
    async with pool.acquire(org):
        pass


async def test_one_connection_serving_a_then_b_sees_only_the_current_organisation(
    one: Database, tenants: Tenants
) -> None:
    pids = set()
    for org in (tenants.a, tenants.b, tenants.a, tenants.b):
        async with one.org_reads(org) as connection:
            assert isinstance(connection, ScopedConnection)
            pids.add(await _pid(connection))
            seen = await _orgs_seen(connection)
            assert all(orgs == {org} for orgs in seen.values()), seen
            # Even a query naming the other organisation finds nothing of it.
            other = tenants.b if org == tenants.a else tenants.a
            count = await connection.driver.fetchval(
                "SELECT count(*) FROM fhir_resources WHERE org_id = $1", other
            )
            assert count == 0
    assert len(pids) == 1  # the same backend served both, turn by turn


async def test_scoped_connections_run_as_the_app_role_and_reads_cannot_write(
    one: Database, tenants: Tenants
) -> None:
    async with one.org_reads(tenants.a) as connection:
        assert isinstance(connection, ScopedConnection)
        row = await connection.driver.fetchrow(
            "SELECT current_user, current_setting('app.platform'),"
            " current_setting('transaction_read_only')"
        )
        assert tuple(row) == (APP_ROLE, "off", "on")
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await connection.driver.execute("DELETE FROM principals")
    async with one.org_reads(tenants.a) as connection:
        assert isinstance(connection, ScopedConnection)
        assert await connection.driver.fetchval("SELECT count(*) FROM principals") == 1


async def test_a_write_connection_cannot_write_a_row_of_another_organisation(
    one: Database, tenants: Tenants
) -> None:
    insert = "INSERT INTO event_log (org_id, event_type, source, data) VALUES ($1, 'x', 't', '{}')"
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with one.org_writes(tenants.a) as connection:
            assert isinstance(connection, ScopedConnection)
            await connection.driver.execute(insert, tenants.b)
    async with one.org_writes(tenants.a, atomic=False) as connection:
        assert isinstance(connection, ScopedConnection)
        await connection.driver.execute(insert, tenants.a)
    async with one.org_reads(tenants.b) as connection:
        assert isinstance(connection, ScopedConnection)
        kinds = await connection.driver.fetch("SELECT event_type FROM event_log")
        assert [row[0] for row in kinds] == ["report.final"]  # B's seeded row only


async def test_an_atomic_block_commits_or_rolls_back_as_one(
    one: Database, tenants: Tenants
) -> None:
    insert = "INSERT INTO event_log (org_id, event_type, source, data) VALUES ($1, $2, 't', '{}')"
    async with one.org_writes(tenants.a) as connection:
        assert isinstance(connection, ScopedConnection)
        await connection.driver.execute(insert, tenants.a, "kept-1")
        await connection.driver.execute(insert, tenants.a, "kept-2")
    with pytest.raises(RuntimeError, match="abandon"):
        async with one.org_writes(tenants.a) as connection:
            assert isinstance(connection, ScopedConnection)
            await connection.driver.execute(insert, tenants.a, "rolled-back")
            raise RuntimeError("abandon")
    async with one.org_reads(tenants.a) as connection:
        assert isinstance(connection, ScopedConnection)
        kinds = await connection.driver.fetch("SELECT event_type FROM event_log ORDER BY 1")
        assert [row[0] for row in kinds] == ["kept-1", "kept-2", "report.final"]


async def test_a_failed_statement_or_a_holder_error_keeps_the_connection(
    one: Database, tenants: Tenants
) -> None:
    async with one.org_reads(tenants.a) as connection:
        assert isinstance(connection, ScopedConnection)
        before = await _pid(connection)
    with pytest.raises(asyncpg.DivisionByZeroError):
        async with one.org_reads(tenants.a) as connection:
            assert isinstance(connection, ScopedConnection)
            await connection.driver.fetchval("SELECT 1 / 0")
    with pytest.raises(DBAPIError, match="division by zero"):  # as driver_sql raises it
        async with one.org_reads(tenants.a) as connection:
            await driver_sql.scalar(connection, select(literal(1) / literal(0)))
    with pytest.raises(LookupError):  # the holder's own error, e.g. a 404
        async with one.org_reads(tenants.a) as connection:
            raise LookupError("no such resource")
    async with one.org_reads(tenants.a) as connection:
        assert isinstance(connection, ScopedConnection)
        assert await _pid(connection) == before
    assert _pool(one).opened == 1


async def test_a_driver_error_retires_the_connection(one: Database, tenants: Tenants) -> None:
    async with one.org_reads(tenants.a) as connection:
        assert isinstance(connection, ScopedConnection)
        before = await _pid(connection)
    with pytest.raises(DBAPIError):
        async with one.org_reads(tenants.a) as connection:
            assert isinstance(connection, ScopedConnection)
            try:
                raise asyncpg.InterfaceError("cannot perform operation: another operation")
            except asyncpg.InterfaceError as error:
                raise DBAPIError("SELECT 1", {}, error) from error
    async with one.org_reads(tenants.a) as connection:
        assert isinstance(connection, ScopedConnection)
        assert await _pid(connection) != before


async def test_a_cancelled_statement_or_an_open_transaction_retires_the_connection(
    one: Database, tenants: Tenants
) -> None:
    async def slow() -> None:
        async with one.org_reads(tenants.a) as connection:
            assert isinstance(connection, ScopedConnection)
            pids.append(await _pid(connection))
            await connection.driver.fetchval("SELECT pg_sleep(30)")

    pids: list[int] = []
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slow(), timeout=0.5)
    async with one.org_reads(tenants.b) as connection:
        assert isinstance(connection, ScopedConnection)
        pids.append(await _pid(connection))
        await connection.driver.execute("BEGIN")  # and never commits
    async with one.org_reads(tenants.b) as connection:
        assert isinstance(connection, ScopedConnection)
        pids.append(await _pid(connection))
        assert not connection.driver.is_in_transaction()
        assert {
            row[0] for row in await connection.driver.fetch("SELECT org_id FROM principals")
        } == {tenants.b}
    assert len(set(pids)) == 3  # each retired connection was replaced by a new one


async def test_idle_connections_are_reused_by_their_own_organisation_first(
    two: Database,
) -> None:
    tenants = await seed(two)
    pool = _pool(two)

    async def hold(org: uuid.UUID, ready: asyncio.Event, go: asyncio.Event) -> int:
        async with pool.acquire(org) as connection:
            ready.set()
            await go.wait()
            return await _pid(connection)

    go = asyncio.Event()
    ready_a, ready_b = asyncio.Event(), asyncio.Event()
    task_a = asyncio.create_task(hold(tenants.a, ready_a, go))
    task_b = asyncio.create_task(hold(tenants.b, ready_b, go))
    await ready_a.wait()
    await ready_b.wait()
    go.set()
    pid_a, pid_b = await task_a, await task_b
    assert pid_a != pid_b
    for org, pid in ((tenants.b, pid_b), (tenants.a, pid_a), (tenants.b, pid_b)):
        async with pool.acquire(org) as connection:
            assert await _pid(connection) == pid
    # Another mode is another scope: the read connection of A becomes a write one.
    async with pool.acquire(tenants.a, read_only=False) as connection:
        assert await connection.driver.fetchval("SHOW transaction_read_only") == "off"


async def test_while_there_is_room_a_new_scope_opens_a_connection_instead_of_rescoping(
    two: Database,
) -> None:
    """Reads and writes of one organisation alternate (a read, then its audit row): each
    kind keeps its own connection rather than one connection flipping between them. Only
    a full pool scopes an idle connection again (the least recently used)."""
    tenants = await seed(two)
    pool = _pool(two)
    pids: dict[bool, set[int]] = {True: set(), False: set()}
    for _ in range(3):
        for read_only in (True, False):
            async with pool.acquire(tenants.a, read_only=read_only) as connection:
                pids[read_only].add(await _pid(connection))
    assert len(pids[True]) == len(pids[False]) == 1
    assert pids[True] != pids[False]
    assert pool.opened == 2
    async with pool.acquire(tenants.b) as connection:  # full: the LRU one is scoped to B
        assert await _pid(connection) in pids[True]
        rows = await connection.driver.fetch("SELECT org_id FROM principals")
        assert {row[0] for row in rows} == {tenants.b}
    assert pool.opened == 2


async def test_the_pool_is_bounded_and_a_caller_waits_for_a_free_connection(
    one: Database, tenants: Tenants
) -> None:
    pool = _pool(one)
    release = asyncio.Event()

    async def waiter() -> set[uuid.UUID]:
        async with pool.acquire(tenants.b) as connection:
            rows = await connection.driver.fetch("SELECT org_id FROM principals")
            return {row[0] for row in rows}

    held = await _occupy(pool, tenants.a, release)
    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0.2)
    assert not waiting.done()  # one connection, and it is taken
    release.set()
    await held
    assert await waiting == {tenants.b}


async def test_a_freed_connection_goes_to_the_oldest_waiter_not_to_a_newcomer(
    one: Database, tenants: Tenants
) -> None:
    """First come, first served: a request arriving just as a connection comes back does
    not take it ahead of one already waiting (which would wait again, and again: the
    tail latency of a busy pool)."""
    pool = _pool(one)
    order: list[str] = []
    release = asyncio.Event()

    async def user(name: str, org: uuid.UUID) -> None:
        async with pool.acquire(org):
            order.append(name)

    held = await _occupy(pool, tenants.a, release)
    waiting = asyncio.create_task(user("waiter", tenants.b))
    await asyncio.sleep(0.1)
    release.set()
    newcomer = asyncio.create_task(user("newcomer", tenants.a))  # same tick as the release
    await asyncio.wait_for(asyncio.gather(held, waiting, newcomer), timeout=5)
    assert order == ["waiter", "newcomer"]


async def test_a_waiter_or_a_holder_cancelled_gives_its_place_back(
    one: Database, tenants: Tenants
) -> None:
    pool = _pool(one)
    holder = await _occupy(pool, tenants.a, asyncio.Event())  # never released
    waiting = asyncio.create_task(_use(pool, tenants.b))
    await asyncio.sleep(0.1)
    waiting.cancel()
    holder.cancel()
    for task in (waiting, holder):
        with pytest.raises(asyncio.CancelledError):
            await task
    await asyncio.wait_for(_use(pool, tenants.b), timeout=5)  # the one place is free again


async def test_a_closed_pool_refuses_and_an_org_must_be_a_uuid(one: Database) -> None:
    pool = _pool(one)
    with pytest.raises(TypeError, match="uuid"):
        async with pool.acquire("not-a-uuid"):  # type: ignore[arg-type]
            pass
    await pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        async with pool.acquire(uuid.uuid4()):
            pass


async def test_settings_decide_whether_there_is_a_scoped_pool(
    migrated_pg: str, tmp_path: Path
) -> None:
    common = {"database_url": migrated_pg, "data_dir": tmp_path, "db_app_role": APP_ROLE}
    with_pool = Database.from_settings(Settings(**common))
    without = Database.from_settings(Settings(**common, db_scoped_pool_size=0))
    on_sqlite = Database.from_settings(Settings(data_dir=tmp_path))
    try:
        assert with_pool.scoped is not None
        assert without.scoped is None
        assert on_sqlite.scoped is None
        org = uuid.uuid4()
        async with without.org_reads(org) as connection:
            assert not isinstance(connection, ScopedConnection)  # an org connection
    finally:
        for database in (with_pool, without, on_sqlite):
            await database.dispose()
    with pytest.raises(SettingsError, match="EHR_DB_SCOPED_POOL_SIZE"):
        Settings.from_env({"EHR_DB_SCOPED_POOL_SIZE": "-1"})


async def test_closing_wakes_a_waiter_and_a_failed_connect_frees_its_place(
    one: Database, tenants: Tenants
) -> None:
    pool = _pool(one)
    release = asyncio.Event()
    held = await _occupy(pool, tenants.a, release)
    waiting = asyncio.create_task(_use(pool, tenants.b))
    await asyncio.sleep(0.1)
    await pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        await asyncio.wait_for(waiting, timeout=5)
    release.set()
    await held

    url, connect_args = async_url("postgresql://postgres@127.0.0.1:1/nowhere")
    unreachable = ScopedPool(url, connect_args, app_role=APP_ROLE, size=1)

    for _ in range(2):  # the place the failed connect took is given back: no wait
        with pytest.raises(OSError) as caught:
            await asyncio.wait_for(_use(unreachable, tenants.a), timeout=5)
        assert not isinstance(caught.value, TimeoutError)


async def test_a_connection_the_server_ended_while_idle_is_replaced(
    one: Database, tenants: Tenants, migrated_pg: str
) -> None:
    async with one.org_reads(tenants.a) as connection:
        assert isinstance(connection, ScopedConnection)
        ended = await _pid(connection)
    url, _ = async_url(migrated_pg)
    admin = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database=url.database
    )
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", ended)
    finally:
        await admin.close()
    await asyncio.sleep(0.2)  # the driver sees the socket close
    async with one.org_reads(tenants.a) as connection:
        assert isinstance(connection, ScopedConnection)
        assert await _pid(connection) != ended
        rows = await connection.driver.fetch("SELECT org_id FROM principals")
        assert {row[0] for row in rows} == {tenants.a}
