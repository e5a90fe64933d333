"""Settings, URL translation and the SQLite set-up of the engine."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from ehr_api.db import Database, ReadOnlySessionError, create_engine, database_url, is_postgresql
from ehr_api.db.engine import async_url
from ehr_api.db.models import EventLog, Organization
from ehr_api.settings import Settings, SettingsError
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError


def test_settings_defaults_give_the_embedded_sqlite_database() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.data_dir == Path("var")
    assert settings.db_app_role == "ehr_app"
    assert database_url(settings) == f"sqlite:///{Path('var').resolve() / 'ehr.sqlite3'}"


def test_settings_read_the_environment() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u@db/ehr",
            "EHR_DATA_DIR": "/srv/ehr",
            "EHR_DB_APP_ROLE": "",
            "EHR_DB_ECHO": "yes",
            "EHR_PORT": "9000",
        }
    )
    assert database_url(settings) == "postgresql://u@db/ehr"
    assert settings.data_dir == Path("/srv/ehr")
    assert settings.db_app_role == ""
    assert settings.db_echo is True
    assert settings.port == 9000


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EHR_PORT", "eighty"),
        ("EHR_PORT", "70000"),
        ("EHR_DB_ECHO", "maybe"),
        ("EHR_DB_APP_ROLE", "app; DROP TABLE x"),
        ("EHR_SQLITE_SYNCHRONOUS", "sometimes"),
    ],
)
def test_settings_name_the_bad_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5433/db", "postgresql+asyncpg://u:p@h:5433/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:////tmp/x.sqlite3", "sqlite+aiosqlite:////tmp/x.sqlite3"),
    ],
)
def test_the_async_driver_is_chosen_for_the_operator(given: str, expected: str) -> None:
    url, _ = async_url(given)
    assert url.render_as_string(hide_password=False) == expected


def test_libpq_parameters_become_asyncpg_arguments() -> None:
    url, connect_args = async_url(
        "postgresql://u@h/db?sslmode=require&application_name=ehr"
        "&options=-c%20search_path%3Dt1%20-cstatement_timeout%3D5s"
    )
    assert dict(url.query) == {}
    assert connect_args == {
        "ssl": "require",
        "server_settings": {
            "search_path": "t1",
            "statement_timeout": "5s",
            "application_name": "ehr",
        },
    }


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        async_url("mysql://u@h/db")
    assert is_postgresql("postgres://u@h/db")
    assert not is_postgresql("sqlite:///x")


async def test_sqlite_gets_wal_foreign_keys_and_a_data_directory(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/nested/dir/ehr.sqlite3")
    try:
        async with engine.connect() as connection:
            pragmas = [
                (await connection.execute(text(f"PRAGMA {name}"))).scalar_one()
                for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
            ]
        assert pragmas == ["wal", 1, 2, 5000]  # synchronous 2 = FULL
        assert (tmp_path / "nested" / "dir" / "ehr.sqlite3").is_file()
    finally:
        await engine.dispose()


async def test_foreign_keys_are_enforced(database: Database) -> None:
    async with database.platform_session() as session:
        org = Organization(slug="fk", name="FK")
        session.add(org)
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        async with database.platform_session() as session:
            session.add(EventLog(org_id=uuid.UUID(int=1), event_type="x", source="t"))


async def test_concurrent_read_then_write_sessions_do_not_fail(database: Database) -> None:
    """Twenty writers each read the newest id then append: none fails, none interleaves.

    On SQLite with deferred BEGIN most of them would fail with "database is locked".
    """
    async with database.platform_session() as session:
        org = Organization(slug="busy", name="Busy")
        session.add(org)

    async def append(index: int) -> None:
        async with database.org_session(org.id) as session:
            last = await session.scalar(select(EventLog.id).order_by(EventLog.id.desc()).limit(1))
            await asyncio.sleep(0)
            session.add(
                EventLog(
                    org_id=org.id,
                    event_type="seq",
                    source="test",
                    data={"after": last, "index": index},
                )
            )

    await asyncio.gather(*(append(index) for index in range(20)))
    async with database.org_session(org.id) as session:
        rows = (await session.scalars(select(EventLog).order_by(EventLog.id))).all()
    if not database.is_postgresql:
        # BEGIN IMMEDIATE makes each writer see the previous one's row.
        assert [row.data["after"] for row in rows] == [None] + [row.id for row in rows[:-1]]
    assert len(rows) == 20


async def test_read_only_sessions_refuse_writes(database: Database) -> None:
    async with database.platform_session() as session:
        org = Organization(slug="ro", name="Read only")
        session.add(org)
    async with database.org_session(org.id, read_only=True) as session:
        assert (await session.scalars(select(Organization.slug))).all() == ["ro"]
    with pytest.raises(ReadOnlySessionError):
        async with database.org_session(org.id, read_only=True) as session:
            session.add(EventLog(org_id=org.id, event_type="x", source="t"))
            await session.flush()
    with pytest.raises(ReadOnlySessionError):
        async with database.platform_session(read_only=True) as session:
            await session.execute(update(Organization).values(name="changed"))
    if database.is_postgresql:
        with pytest.raises(DBAPIError, match="read-only transaction"):
            async with database.org_session(org.id, read_only=True) as session:
                await session.execute(text("UPDATE organizations SET name = 'raw'"))
