"""The tenant settings sent with BEGIN (`ehr_api.db.begin_prelude`), on real PostgreSQL.

The prelude is the row-security wall's set-up, so what matters is that it always applies
to the transaction that asked for it and never to anything else: not to the next user of
the pooled connection when no statement picked it up, not after it failed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from ehr_api.db import Database, create_engine, driver_sql
from ehr_api.db.begin_prelude import PreludeConnection, set_config_sql
from ehr_api.migrate import upgrade_to_head
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.ehr_api.conftest import APP_ROLE

pytestmark = pytest.mark.postgres

_WHO = text(
    "SELECT current_user, coalesce(current_setting('app.current_org', true), ''),"
    " pg_catalog.txid_current_if_assigned() IS NULL"
)


@pytest.fixture
async def one_connection(pg_url: str) -> AsyncIterator[Database]:
    """A database whose pool hands out the same connection every time (used in turn)."""
    await upgrade_to_head(pg_url, app_role=APP_ROLE)
    database = Database(create_engine(pg_url, pool_size=1), app_role=APP_ROLE)
    try:
        yield database
    finally:
        await database.dispose()


async def _driver_connection(database: Database) -> PreludeConnection:
    async with database.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
    assert isinstance(driver, PreludeConnection)
    return driver


async def test_the_first_statement_already_runs_in_the_organisation(
    one_connection: Database,
) -> None:
    org = uuid.uuid4()
    async with one_connection.org_session(org) as session:
        user, current_org, _ = (await session.execute(_WHO)).one()
    assert (user, current_org) == (APP_ROLE, str(org))


async def test_an_unused_prelude_never_reaches_the_next_user_of_the_connection(
    one_connection: Database,
) -> None:
    driver = await _driver_connection(one_connection)
    # A read-only session takes its connection up front (after_begin runs) but runs nothing.
    async with one_connection.org_session(uuid.uuid4(), read_only=True):
        assert driver.prelude is not None  # set, but no statement ran to send it
    assert driver.prelude is None  # dropped at check-in
    async with one_connection.engine.connect() as connection:
        assert (await connection.get_raw_connection()).driver_connection is driver
        user, current_org, _ = (await connection.execute(_WHO)).one()
    assert user != APP_ROLE
    assert current_org == ""


async def test_a_failing_prelude_leaves_no_transaction_open(one_connection: Database) -> None:
    org = uuid.uuid4()
    with pytest.raises(DBAPIError, match="division by zero"):
        async with one_connection.org_session(org, begin_with="SELECT 1/0") as session:
            await session.execute(text("SELECT 1"))
    # The connection is back in the pool outside any transaction, and works.
    async with one_connection.org_session(org) as session:
        user, current_org, _ = (await session.execute(_WHO)).one()
    assert (user, current_org) == (APP_ROLE, str(org))
    driver = await _driver_connection(one_connection)
    assert not driver.is_in_transaction()


async def test_begin_with_runs_first_in_the_same_transaction(one_connection: Database) -> None:
    probe = "SELECT set_config('app.probe', 'seen', true)"
    async with one_connection.platform_session(begin_with=probe) as session:
        assert await session.scalar(text("SELECT current_setting('app.probe')")) == "seen"
    async with one_connection.platform_session() as session:
        assert await session.scalar(text("SELECT current_setting('app.probe', true)")) == ""


def test_only_values_that_can_be_inlined_are() -> None:
    assert set_config_sql({"role": "o'brien"}) == "SELECT set_config('role', 'o''brien', true)"
    assert set_config_sql({"role": "back\\slash"}) is None
    assert set_config_sql({"role": "nul\x00"}) is None


async def test_driver_statements_run_inside_the_scoped_transaction(
    one_connection: Database,
) -> None:
    # driver_sql sends fixed statements straight to asyncpg: they must see the tenant
    # settings (the transaction was begun with its prelude) and fail like Core execute.
    org = uuid.uuid4()
    probe = text(
        "SELECT current_user, current_setting('app.current_org', true),"
        " current_setting('transaction_read_only')"
    )
    async with one_connection.org_connection(org, read_only=True) as connection:
        assert await driver_sql._raw(connection) is not None  # the driver path is taken
        (row,) = await driver_sql.fetch(connection, probe, {})
    assert tuple(row) == (APP_ROLE, str(org), "on")
    failing = text("SELECT 1 FROM (VALUES (1)) AS v(x) WHERE x = 1 / :zero")
    with pytest.raises(DBAPIError, match="division by zero"):
        async with one_connection.org_connection(org) as connection:
            await driver_sql.execute(connection, failing, {"zero": 0})
    async with one_connection.org_connection(org) as connection:  # the connection still works
        (row,) = await driver_sql.fetch(connection, probe, {})
    assert tuple(row) == (APP_ROLE, str(org), "off")
