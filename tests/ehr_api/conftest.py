"""Database fixtures shared by the ehr_api tests: the same test runs on SQLite and PostgreSQL.

- `sqlite_url`: a fresh SQLite file under the test's tmp_path.
- `pg_url`: a fresh schema in TEST_DATABASE_URL, dropped afterwards, selected through
  `options=-c search_path=<schema>` in the URL so engines, Alembic and psql all land in it;
  several runs can share the database. Skips locally when TEST_DATABASE_URL is unset and
  fails under CI=true (see `database_url` in tests/conftest.py).
- `db_url`: parametrized over both (`[sqlite]`, `[postgresql]`).
- `migrated`: `db_url` upgraded to head (`migrated_pg`: `pg_url` only); `database`: a `Database` on it, disposed after.
- `scoped_database(url, size)`: a `Database` on PostgreSQL with a scoped pool of `size`
  connections (the app's hot path), disposed after.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from ehr_api.db import Database, create_engine
from ehr_api.db.engine import async_url
from ehr_api.db.scoped_pool import ScopedPool
from ehr_api.migrate import upgrade_to_head
from sqlalchemy.engine import make_url

APP_ROLE = "ehr_app"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/ehr.sqlite3"


@pytest.fixture
async def pg_url(database_url: str) -> AsyncIterator[str]:
    schema = f"test_{uuid.uuid4().hex[:16]}"
    server = make_url(database_url)
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f"CREATE SCHEMA {schema}")
        yield server.update_query_dict({"options": f"-c search_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        try:
            await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await connection.close()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    return url


@pytest.fixture
async def migrated_pg(pg_url: str) -> str:
    """`pg_url` upgraded to head (for tests that only make sense on PostgreSQL)."""
    await upgrade_to_head(pg_url, app_role=APP_ROLE)
    return pg_url


@pytest.fixture
async def migrated(db_url: str) -> str:
    await upgrade_to_head(db_url, app_role=APP_ROLE)
    return db_url


@pytest.fixture
async def database(migrated: str) -> AsyncIterator[Database]:
    db = Database(create_engine(migrated), app_role=APP_ROLE)
    try:
        yield db
    finally:
        await db.dispose()


@asynccontextmanager
async def scoped_database(url: str, size: int) -> AsyncIterator[Database]:
    """A `Database` on `url` whose scoped pool holds `size` connections, disposed after."""
    target, connect_args = async_url(url)
    pool = ScopedPool(target, connect_args, app_role=APP_ROLE, size=size)
    database = Database(create_engine(url), app_role=APP_ROLE, scoped=pool)
    try:
        yield database
    finally:
        await database.dispose()
