"""Migrations: up and down on empty SQLite and PostgreSQL, and the models agree with them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from ehr_api.db import create_engine
from ehr_api.db.models import TENANT_TABLES, Base
from ehr_api.migrate import (
    current_revision,
    downgrade_to_base,
    head_revision,
    is_at_head,
    migrations_dir,
    upgrade_to_head,
)
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from tests.ehr_api.conftest import APP_ROLE

ROOT = Path(__file__).resolve().parents[3]
TABLES = {table.name for table in Base.metadata.sorted_tables}


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def test_head_is_the_fhir_search_index_revision() -> None:
    assert head_revision() == "0003"
    assert migrations_dir() == ROOT / "migrations"


async def test_upgrade_to_head_then_downgrade_to_base(db_url: str) -> None:
    assert await current_revision(db_url) is None
    await upgrade_to_head(db_url, app_role=APP_ROLE)
    assert await current_revision(db_url) == head_revision()
    assert await is_at_head(db_url)

    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_table_names) == TABLES | {"alembic_version"}
            vendors = (await connection.execute(text("SELECT slug FROM integration_vendors"))).all()
            assert sorted(slug for (slug,) in vendors) == ["fhir-r4", "hl7-v2x"]

        await downgrade_to_base(engine, app_role=APP_ROLE)
        assert await current_revision(engine) is None
        async with engine.connect() as connection:
            assert await connection.run_sync(_table_names) == {"alembic_version"}

        # Nothing left behind (trigger function, grants) stops a second upgrade.
        await upgrade_to_head(engine, app_role=APP_ROLE)
        assert await is_at_head(engine)
    finally:
        await engine.dispose()


async def test_models_match_the_migrations(migrated: str) -> None:
    engine = create_engine(migrated)

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()


async def test_every_tenant_table_has_an_index_leading_with_org_id(migrated: str) -> None:
    engine = create_engine(migrated)

    def leading_columns(connection: Connection, table: str) -> set[str]:
        inspector = inspect(connection)
        indexes = [index["column_names"] for index in inspector.get_indexes(table)]
        uniques = [unique["column_names"] for unique in inspector.get_unique_constraints(table)]
        primary = [inspector.get_pk_constraint(table)["constrained_columns"]]  # an index too
        return {columns[0] for columns in indexes + uniques + primary if columns}

    try:
        async with engine.connect() as connection:
            for table in TENANT_TABLES:
                assert "org_id" in await connection.run_sync(leading_columns, table), table
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_every_tenant_table_has_forced_rls_and_a_policy(pg_url: str) -> None:
    await upgrade_to_head(pg_url, app_role=APP_ROLE)
    engine = create_engine(pg_url)
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
                        " (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)"
                        " FROM pg_class c"
                        " WHERE c.relnamespace = current_schema()::regnamespace"
                        " AND c.relkind = 'r'"
                        " AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid"
                        "              AND a.attname = 'org_id' AND NOT a.attisdropped)"
                        "      OR c.relname = 'organizations')"
                    )
                )
            ).all()
            covered = {
                name: (enabled, forced, policies) for name, enabled, forced, policies in rows
            }
            assert set(covered) == {*TENANT_TABLES, "organizations"}
            assert all(value == (True, True, 1) for value in covered.values()), covered

            role = (
                await connection.execute(
                    text(
                        "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = :r"
                    ),
                    {"r": APP_ROLE},
                )
            ).one()
            assert tuple(role) == (False, False, False)
    finally:
        await engine.dispose()


def test_alembic_command_line_upgrades_and_downgrades(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/cli.sqlite3"}
    env.pop("EHR_MIGRATIONS_DIR", None)
    for revision in ("head", "base", "head"):
        command = "upgrade" if revision == "head" else "downgrade"
        result = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", "migrations/alembic.ini", command, revision],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "cli.sqlite3").is_file()
