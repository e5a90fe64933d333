"""Organisation A's session never reaches organisation B's rows.

The tests on `database` run on SQLite and PostgreSQL and pin the session filter, the wall
on both. The tests marked `postgres` prove the second wall: raw SQL that forgets the org
filter, or writes a row of another organisation, is stopped by row-level security. One
SQLite test pins where the first wall ends (raw SQL), which is why repositories use ORM
entities.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from ehr_api.db import CrossTenantError, Database, RowSecurityError, create_engine, current_org_id
from ehr_api.db.models import (
    TENANT_TABLES,
    ActorType,
    ApiKey,
    AuditLog,
    EventLog,
    FhirResource,
    FhirResourceHistory,
    FhirSearchToken,
    IntegrationCredential,
    Organization,
    Principal,
    RoleAssignment,
)
from ehr_api.fhir_store.models import (
    FhirSearchDate,
    FhirSearchNumber,
    FhirSearchReference,
    FhirSearchString,
)
from ehr_api.migrate import upgrade_to_head
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError, InvalidRequestError, ProgrammingError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.ehr_api.conftest import APP_ROLE


@dataclass(frozen=True)
class Tenants:
    a: uuid.UUID
    b: uuid.UUID


def _fhir_rows(org_id: uuid.UUID) -> list[object]:
    """The same resource id in both organisations: ids are only unique per organisation."""
    version = {"resource_type": "Patient", "id": "p1", "version_id": 1, "deleted": False}
    content = {"resourceType": "Patient", "id": "p1"}
    now = datetime.now(UTC)
    key = {"resource_type": "Patient", "resource_id": "p1"}
    return [
        FhirResource(org_id=org_id, last_updated=now, content=content, **version),
        FhirResourceHistory(org_id=org_id, last_updated=now, content=content, **version),
        FhirSearchToken(
            org_id=org_id,
            resource_type="Patient",
            resource_id="p1",
            param="identifier",
            system="urn:mrn",
            code="1",
        ),
        FhirSearchString(org_id=org_id, value="doe", exact="Doe", param="name", **key),
        FhirSearchDate(org_id=org_id, low=now, high=now, param="birthdate", **key),
        FhirSearchNumber(
            org_id=org_id, low=1.0, high=2.0, system="", code="", param="length", **key
        ),
        FhirSearchReference(
            org_id=org_id,
            target_type="Organization",
            target_id="o1",
            url="Organization/o1",
            param="organization",
            **key,
        ),
    ]


def _rows_for(org_id: uuid.UUID, slug: str) -> list[object]:
    return [
        Principal(org_id=org_id, subject=f"{slug}-user"),
        RoleAssignment(org_id=org_id, subject=f"{slug}-user", role="org_admin"),
        ApiKey(org_id=org_id, prefix=f"{slug}-key", hash="x" * 64, name="partner", roles=[]),
        IntegrationCredential(
            org_id=org_id, vendor="hl7-v2x", name="ris", config={"mllp_port": 2575}
        ),
        EventLog(org_id=org_id, event_type="report.final", source="mllp"),
        *_fhir_rows(org_id),
        AuditLog(
            org_id=org_id,
            actor=f"{slug}-user",
            actor_type=ActorType.USER,
            action="read",
            outcome="success",
            hash=f"{slug}-1",
        ),
    ]


async def seed(database: Database) -> Tenants:
    """Organisations A and B with one row of each tenant table, plus platform rows."""
    async with database.platform_session() as session:
        a = Organization(slug="org-a", name="A")
        b = Organization(slug="org-b", name="B")
        session.add_all([a, b])
        await session.flush()
        session.add_all(_rows_for(a.id, "a") + _rows_for(b.id, "b"))
        # A platform-level row (no organisation) and a global role assignment.
        session.add(RoleAssignment(org_id=None, subject="root", role="platform_admin"))
        session.add(
            AuditLog(
                org_id=None,
                actor="root",
                actor_type=ActorType.USER,
                action="org.create",
                outcome="success",
                hash="platform-1",
            )
        )
    return Tenants(a=a.id, b=b.id)


@pytest.fixture
async def tenants(database: Database) -> Tenants:
    return await seed(database)


async def list_credentials(session: AsyncSession, *, org_id: uuid.UUID) -> list[str]:
    """What a repository function looks like: explicit org filter, ORM entity."""
    rows = await session.scalars(
        select(IntegrationCredential).where(IntegrationCredential.org_id == org_id)
    )
    return [row.name for row in rows]


async def test_a_repository_in_org_a_sees_only_a(database: Database, tenants: Tenants) -> None:
    async with database.org_session(tenants.a) as session:
        assert await list_credentials(session, org_id=tenants.a) == ["ris"]
        # Asking for B's rows from A's session: the session's own filter still applies.
        assert await list_credentials(session, org_id=tenants.b) == []


@pytest.mark.parametrize(
    "model", [Principal, RoleAssignment, ApiKey, IntegrationCredential, EventLog, AuditLog]
)
async def test_an_orm_query_that_forgets_the_filter_sees_only_a(
    database: Database, tenants: Tenants, model: type
) -> None:
    async with database.org_session(tenants.a) as session:
        rows = (await session.scalars(select(model))).all()
        assert rows
        assert {row.org_id for row in rows} == {tenants.a}


async def test_org_a_sees_only_its_own_organisation(database: Database, tenants: Tenants) -> None:
    async with database.org_session(tenants.a) as session:
        assert (await session.scalars(select(Organization.slug))).all() == ["org-a"]
        assert await session.get(Organization, tenants.b) is None
    async with database.platform_session() as session:
        slugs = (await session.scalars(select(Organization.slug).order_by("slug"))).all()
        assert slugs == ["org-a", "org-b"]


async def test_get_by_primary_key_does_not_cross(database: Database, tenants: Tenants) -> None:
    async with database.platform_session() as session:
        b_id = await session.scalar(
            select(IntegrationCredential.id).where(IntegrationCredential.org_id == tenants.b)
        )
    async with database.org_session(tenants.a) as session:
        assert await session.get(IntegrationCredential, b_id) is None


async def test_bulk_update_and_delete_touch_only_a(database: Database, tenants: Tenants) -> None:
    async with database.org_session(tenants.a) as session:
        await session.execute(update(IntegrationCredential).values(enabled=False))
        await session.execute(delete(Principal))
    async with database.platform_session() as session:
        enabled = dict(
            (
                await session.execute(
                    select(IntegrationCredential.org_id, IntegrationCredential.enabled)
                )
            ).all()
        )
        assert enabled == {tenants.a: False, tenants.b: True}
        principals = (await session.scalars(select(Principal.org_id))).all()
        assert principals == [tenants.b]


async def test_writing_a_row_of_b_from_a_is_refused(database: Database, tenants: Tenants) -> None:
    with pytest.raises(CrossTenantError):
        async with database.org_session(tenants.a) as session:
            session.add(IntegrationCredential(org_id=tenants.b, vendor="fhir-r4", name="sneaky"))
            await session.flush()
    with pytest.raises(CrossTenantError):
        async with database.org_session(tenants.a) as session:
            credential = await session.scalar(select(IntegrationCredential))
            assert credential is not None
            credential.org_id = tenants.b
            await session.flush()
    with pytest.raises(CrossTenantError):
        async with database.org_session(tenants.a) as session:
            session.add(Organization(slug="org-c", name="C"))
            await session.flush()
    async with database.platform_session() as session:
        names = (await session.scalars(select(IntegrationCredential.name))).all()
        assert sorted(names) == ["ris", "ris"]


async def test_platform_rows_are_invisible_to_organisations(
    database: Database, tenants: Tenants
) -> None:
    async with database.org_session(tenants.a) as session:
        roles = (await session.scalars(select(RoleAssignment.role))).all()
        assert roles == ["org_admin"]
        assert await session.scalar(select(func.count()).select_from(AuditLog)) == 1
    async with database.platform_session() as session:
        assert await session.scalar(select(func.count()).select_from(AuditLog)) == 3


async def test_current_org_id_is_for_core_statements(database: Database, tenants: Tenants) -> None:
    async with database.org_session(tenants.a) as session:
        org_id = current_org_id(session)
        assert org_id == tenants.a
        ids = [
            (
                await session.execute(
                    insert(EventLog)
                    .values(org_id=org_id, event_type="patient.updated", source="api", data={})
                    .returning(EventLog.id)
                )
            ).scalar_one()
            for _ in range(3)
        ]
        assert ids == sorted(ids) and len(set(ids)) == 3
    async with database.platform_session() as session:
        with pytest.raises(CrossTenantError):
            current_org_id(session)


async def test_org_session_wants_a_uuid(database: Database) -> None:
    with pytest.raises(TypeError):
        async with database.org_session("org-a"):  # type: ignore[arg-type]
            pass


async def test_timestamps_come_back_utc_aware(database: Database, tenants: Tenants) -> None:
    async with database.org_session(tenants.a) as session:
        credential = await session.scalar(select(IntegrationCredential))
        assert credential is not None
        assert credential.created_at.tzinfo is not None
        assert credential.created_at.utcoffset() == UTC.utcoffset(None)
        assert abs((datetime.now(UTC) - credential.created_at).total_seconds()) < 120
        with pytest.raises(StatementError, match="naive"):
            credential.updated_at = datetime(2026, 1, 1)
            await session.flush()


async def test_optimistic_version_counter(database: Database, tenants: Tenants) -> None:
    async with database.org_session(tenants.a) as session:
        credential = await session.scalar(select(IntegrationCredential))
        assert credential is not None and credential.version == 1
        credential.config = {"mllp_port": 2576}
        await session.flush()
        assert credential.version == 2


async def test_audit_logs_reject_update_and_delete(database: Database, tenants: Tenants) -> None:
    """The trigger holds even for the owner (and on SQLite)."""
    for statement in (
        "UPDATE audit_logs SET action = 'tampered'",
        "DELETE FROM audit_logs",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with database.engine.begin() as connection:
                await connection.execute(text(statement))
    async with database.platform_session() as session:
        actions = (await session.scalars(select(AuditLog.action))).all()
        assert sorted(actions) == ["org.create", "read", "read"]


async def test_sqlite_raw_sql_is_outside_the_session_wall(sqlite_url: str) -> None:
    """Why repositories use ORM entities: on SQLite nothing filters raw SQL."""
    await upgrade_to_head(sqlite_url, app_role=APP_ROLE)
    database = Database(create_engine(sqlite_url), app_role=APP_ROLE)
    try:
        tenants = await seed(database)
        async with database.org_session(tenants.a) as session:
            count = await session.scalar(text("SELECT count(*) FROM integration_credentials"))
            assert count == 2
    finally:
        await database.dispose()


# -- PostgreSQL: row-level security is the second wall -----------------------------------


@pytest.fixture
async def pg_database(migrated_pg: str) -> AsyncIterator[Database]:
    database = Database(create_engine(migrated_pg), app_role=APP_ROLE)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def pg_tenants(pg_database: Database) -> Tenants:
    return await seed(pg_database)


@pytest.mark.parametrize("table", TENANT_TABLES)
@pytest.mark.postgres
async def test_raw_sql_that_forgets_the_org_filter_sees_nothing_of_b(
    pg_database: Database, pg_tenants: Tenants, table: str
) -> None:
    async with pg_database.org_session(pg_tenants.a) as session:
        rows = (await session.execute(text(f"SELECT org_id FROM {table}"))).all()
        assert rows
        assert {org_id for (org_id,) in rows} == {pg_tenants.a}
        foreign = await session.scalar(
            text(f"SELECT count(*) FROM {table} WHERE org_id = :b OR org_id IS NULL"),
            {"b": pg_tenants.b},
        )
        assert foreign == 0


@pytest.mark.postgres
async def test_raw_sql_sees_only_its_own_organisation(
    pg_database: Database, pg_tenants: Tenants
) -> None:
    async with pg_database.org_session(pg_tenants.a) as session:
        slugs = (await session.execute(text("SELECT slug FROM organizations"))).scalars().all()
        assert slugs == ["org-a"]


@pytest.mark.postgres
async def test_raw_insert_of_a_row_of_b_is_refused_by_with_check(
    pg_database: Database, pg_tenants: Tenants
) -> None:
    with pytest.raises(ProgrammingError, match="row-level security"):
        async with pg_database.org_session(pg_tenants.a) as session:
            await session.execute(
                text(
                    "INSERT INTO event_log (org_id, event_type, source, data)"
                    " VALUES (:b, 'x', 'raw', '{}')"
                ),
                {"b": pg_tenants.b},
            )
    with pytest.raises(ProgrammingError, match="row-level security"):
        async with pg_database.org_session(pg_tenants.a) as session:
            await session.execute(
                text("UPDATE integration_credentials SET org_id = :b"), {"b": pg_tenants.b}
            )


@pytest.mark.postgres
async def test_raw_update_and_delete_of_b_change_nothing(
    pg_database: Database, pg_tenants: Tenants
) -> None:
    async with pg_database.org_session(pg_tenants.a) as session:
        updated = await session.execute(
            text("UPDATE integration_credentials SET enabled = false WHERE org_id = :b"),
            {"b": pg_tenants.b},
        )
        deleted = await session.execute(
            text("DELETE FROM principals WHERE org_id = :b"), {"b": pg_tenants.b}
        )
        assert (updated.rowcount, deleted.rowcount) == (0, 0)


@pytest.mark.postgres
async def test_sessions_run_as_the_app_role_and_leave_nothing_behind(
    pg_database: Database, pg_tenants: Tenants
) -> None:
    async with pg_database.org_session(pg_tenants.a) as session:
        row = (
            await session.execute(
                text("SELECT current_user, current_setting('app.current_org', true)")
            )
        ).one()
        assert tuple(row) == ("ehr_app", str(pg_tenants.a))
        # A stray commit cannot lead to queries outside the scoped transaction.
        await session.commit()
        with pytest.raises(InvalidRequestError):
            await session.scalar(text("SELECT 1"))
    # The pooled connection comes back as the login role with no organisation set.
    async with pg_database.engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT current_user, coalesce(current_setting('app.current_org', true), ''),"
                    " coalesce(current_setting('app.platform', true), '')"
                )
            )
        ).one()
        assert row[0] != "ehr_app"
        assert row[1:] == ("", "")


@pytest.mark.postgres
async def test_the_app_role_cannot_change_the_audit_log(
    pg_database: Database, pg_tenants: Tenants
) -> None:
    for statement in ("UPDATE audit_logs SET action = 'x'", "DELETE FROM audit_logs"):
        with pytest.raises(ProgrammingError, match="permission denied"):
            async with pg_database.platform_session() as session:
                await session.execute(text(statement))


@pytest.mark.postgres
async def test_truncating_the_audit_log_is_refused(
    pg_database: Database, pg_tenants: Tenants
) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        async with pg_database.engine.begin() as connection:
            await connection.execute(text("TRUNCATE audit_logs"))


@pytest.mark.postgres
async def test_row_security_check_catches_a_bypassing_role(pg_database: Database) -> None:
    await pg_database.check_row_security()  # as ehr_app: fine
    superuser = Database(pg_database.engine, app_role=None)  # the test login is a superuser
    with pytest.raises(RowSecurityError, match="bypasses row-level security"):
        await superuser.check_row_security()


# -- Database.org_connection: the Core sibling of org_session ---------------------------


async def test_an_org_connection_commits_or_rolls_back_and_needs_a_uuid(
    database: Database, tenants: Tenants
) -> None:
    event = insert(EventLog).values(org_id=tenants.a, event_type="probe", source="t", data={})
    async with database.org_connection(tenants.a) as connection:
        await connection.execute(event)
    with pytest.raises(RuntimeError, match="abandon"):
        async with database.org_connection(tenants.a) as connection:
            await connection.execute(event.values(event_type="rolled-back"))
            raise RuntimeError("abandon")
    async with database.org_connection(tenants.a, read_only=True) as connection:
        kinds = (
            await connection.execute(
                select(EventLog.event_type).where(EventLog.org_id == tenants.a)
            )
        ).scalars()
        assert sorted(kinds) == ["probe", "report.final"]  # the seeded row, and ours
    with pytest.raises(TypeError, match="uuid"):
        async with database.org_connection(str(tenants.a)):  # type: ignore[arg-type]
            pass


@pytest.mark.postgres
async def test_an_org_connection_keeps_row_security(
    pg_database: Database, pg_tenants: Tenants
) -> None:
    async with pg_database.org_connection(pg_tenants.a) as connection:
        # Raw SQL that forgets the org filter still sees only A.
        orgs = (await connection.execute(text("SELECT org_id FROM principals"))).scalars()
        assert set(orgs) == {pg_tenants.a}
        user = await connection.scalar(text("SELECT current_user"))
        assert user == APP_ROLE
    with pytest.raises(ProgrammingError, match="row-level security"):
        async with pg_database.org_connection(pg_tenants.a) as connection:
            await connection.execute(
                text(
                    "INSERT INTO event_log (org_id, event_type, source, data)"
                    " VALUES (:b, 'x', 'raw', '{}')"
                ),
                {"b": pg_tenants.b},
            )
    with pytest.raises(DBAPIError, match="read-only transaction"):
        async with pg_database.org_connection(pg_tenants.a, read_only=True) as connection:
            await connection.execute(text("DELETE FROM principals"))
    # The pooled connection comes back as the login role with no organisation set.
    async with pg_database.engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT current_user, coalesce(current_setting('app.current_org', true), '')")
            )
        ).one()
        assert row[0] != APP_ROLE
        assert row[1] == ""


async def test_a_fhir_write_for_another_organisation_is_refused_on_a_connection(
    database: Database, tenants: Tenants
) -> None:
    # The FHIR store writes with Core statements (no flush to check): the write itself
    # refuses an organisation other than the connection's.
    from ehr_api.fhir_store import service

    row = FhirResource(org_id=tenants.b, resource_type="Patient", id="x", version_id=1)
    async with database.org_connection(tenants.a) as connection:
        with pytest.raises(CrossTenantError):
            await service.write(
                connection,
                org_id=tenants.b,
                row=row,
                content={"resourceType": "Patient"},
                event_type="fhir.created",
                existed=False,
            )
    async with database.platform_session(read_only=True) as session:
        count = await session.scalar(
            select(func.count()).select_from(FhirResource).where(FhirResource.id == "x")
        )
    assert count == 0
