"""The audit writer: chained rows, redacted details, one chain per organisation, no forks.

On PostgreSQL every test runs twice: an organisation's rows through an ORM session (no
scoped pool) and through the scoped pool's plain asyncpg transaction (the app's path).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from ehr_api.audit import service as audit
from ehr_api.audit.chain import chain_hash
from ehr_api.audit.models import ActorType, AuditLog
from ehr_api.audit.writer import REDACTED, AuditEntry, AuditWriter, redact
from ehr_api.db import Database, create_engine
from ehr_api.migrate import upgrade_to_head
from ehr_api.tenants.models import Organization
from sqlalchemy import select

from tests.ehr_api.conftest import APP_ROLE, scoped_database

PATHS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("postgresql-scoped", marks=pytest.mark.postgres),
]


@pytest.fixture(params=PATHS)
def writer_url(request: pytest.FixtureRequest) -> tuple[str, bool]:
    """A database URL, and whether to give the `Database` a scoped pool."""
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    return url, request.param.endswith("-scoped")


@pytest.fixture
async def database(writer_url: tuple[str, bool]) -> AsyncIterator[Database]:
    url, scoped = writer_url
    await upgrade_to_head(url, app_role=APP_ROLE)
    if scoped:
        async with scoped_database(url, 2) as db:
            yield db
        return
    db = Database(create_engine(url), app_role=APP_ROLE)
    try:
        yield db
    finally:
        await db.dispose()


def entry(org_id: uuid.UUID | None, n: int = 0, **details: object) -> AuditEntry:
    return AuditEntry(
        org_id=org_id,
        actor=f"user-{n}",
        actor_type=ActorType.USER,
        action="GET /api/thing",
        outcome="success",
        status_code=200,
        resource_type="thing",
        resource_ids=(str(n),),
        details=details,
    )


async def new_org(database: Database, slug: str) -> uuid.UUID:
    async with database.platform_session() as db:
        org = Organization(slug=slug, name=slug)
        db.add(org)
        await db.flush()
        return org.id


async def rows(database: Database, org_id: uuid.UUID | None) -> list[AuditLog]:
    async with database.platform_session(read_only=True) as db:
        chain = AuditLog.org_id.is_(None) if org_id is None else AuditLog.org_id == org_id
        return [*(await db.execute(select(AuditLog).where(chain).order_by(AuditLog.id))).scalars()]


async def test_rows_form_one_chain_per_organisation(database: Database) -> None:
    writer = AuditWriter(database)
    a, b = await new_org(database, "org-a"), await new_org(database, "org-b")
    for n in range(3):
        await writer.append(entry(a, n))
        await writer.append(entry(b, n))
        await writer.append(entry(None, n))
    for org_id in (a, b, None):
        chain = await rows(database, org_id)
        assert len(chain) == 3
        assert chain[0].prev_hash is None
        assert [row.prev_hash for row in chain[1:]] == [row.hash for row in chain[:-1]]
        assert chain[1].hash == chain_hash(chain[0].hash, chain[1].__dict__)
        async with database.platform_session(read_only=True) as db:
            assert (await audit.walk(db, org_id=org_id)).rows == 3


async def test_details_never_keep_secrets(database: Database) -> None:
    writer = AuditWriter(database)
    org = await new_org(database, "org-a")
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    key = "ehr_0123456789ab_" + "s" * 43
    await writer.append(
        entry(
            org,
            config={"client_secret": "hunter2", "tls_key": "PEM", "fhir_server_url": "https://x"},
            query={"access_token": token, "q": f"look {key} here"},
            note=f"Bearer {token}",
        )
    )
    (row,) = await rows(database, org)
    assert row.details["config"] == {
        "client_secret": REDACTED,
        "tls_key": REDACTED,
        "fhir_server_url": "https://x",
    }
    assert row.details["query"] == {"access_token": REDACTED, "q": f"look {REDACTED} here"}
    assert row.details["note"] == f"Bearer {REDACTED}"
    assert "hunter2" not in str(row.details) and token not in str(row.details)


def test_redact_is_total() -> None:
    assert redact({"password": {"nested": 1}, "ok": (1, 2.5, None, True)}) == {
        "password": REDACTED,
        "ok": [1, 2.5, None, True],
    }
    assert redact({"x": float("nan"), "y": b"bytes", "z": "a\x00b"}) == {
        "x": None,
        "y": "b'bytes'",
        "z": "ab",
    }


async def test_long_values_are_cut_to_the_columns(database: Database) -> None:
    writer = AuditWriter(database)
    org = await new_org(database, "org-a")
    await writer.append(
        AuditEntry(
            org_id=org,
            actor="a" * 1000,
            actor_type=ActorType.API_KEY,
            action="POST /" + "x" * 200,
            outcome="success",
            user_agent="u" * 5000,
        )
    )
    (row,) = await rows(database, org)
    assert len(row.actor) == 255 and len(row.action) == 64 and len(row.user_agent or "") == 512
    async with database.platform_session(read_only=True) as db:
        assert await audit.verify(db, org_id=org) is None


async def test_concurrent_appends_share_commits_and_do_not_fork(database: Database) -> None:
    class Counting(AuditWriter):
        transactions = 0

        async def _try_append(self, org_id: uuid.UUID | None, batch: list[Any]) -> list[int]:
            self.transactions += 1
            return await super()._try_append(org_id, batch)

    writer = Counting(database)
    org = await new_org(database, "org-a")
    ids = await asyncio.gather(*(writer.append(entry(org, n)) for n in range(100)))
    assert len(set(ids)) == 100
    # Group commit: rows that queued up while a transaction ran share the next one.
    assert writer.transactions < 10
    async with database.platform_session(read_only=True) as db:
        result = await audit.walk(db, org_id=org)
    assert result.ok and result.rows == 100
    # Each caller got the id of its own row.
    chain = await rows(database, org)
    assert [row.actor for row in sorted(chain, key=lambda row: ids.index(row.id))] == [
        f"user-{n}" for n in range(100)
    ]
    await writer.aclose()


@pytest.mark.postgres
@pytest.mark.parametrize("path", ["session", "scoped"])
@pytest.mark.parametrize("seeded", [False, True], ids=["empty-chain", "existing-chain"])
async def test_concurrent_appends_from_many_processes_do_not_fork(
    migrated_pg: str, seeded: bool, path: str
) -> None:
    """Writers with their own engines (as separate API processes would have) race.

    Empty chain: the first row has no prev_hash for the unique constraint to clash on;
    existing chain: every append after the first.
    """
    async with AsyncExitStack() as stack:
        if path == "scoped":
            databases = [
                await stack.enter_async_context(scoped_database(migrated_pg, 2)) for _ in range(6)
            ]
        else:
            databases = [Database(create_engine(migrated_pg), app_role=APP_ROLE) for _ in range(6)]
            for database in databases:
                stack.push_async_callback(database.dispose)
        org = await new_org(databases[0], "org-a")
        if seeded:
            await AuditWriter(databases[0]).append(entry(org, -1))
        writers = [AuditWriter(database) for database in databases]
        async with asyncio.TaskGroup() as group:
            for n in range(15):
                for writer in writers:
                    group.create_task(writer.append(entry(org, n)))
        async with databases[0].platform_session(read_only=True) as db:
            result = await audit.walk(db, org_id=org)
        assert result.ok, result.broken
        assert result.rows == 6 * 15 + seeded


async def test_an_append_after_a_stale_tail_retries_instead_of_forking(
    database: Database,
) -> None:
    """The unique (org_id, prev_hash) constraint turns a lost race into a retry."""
    org = await new_org(database, "org-a")
    writer = AuditWriter(database)
    await writer.append(entry(org, 1))
    await writer.append(entry(org, 2))
    first, _second = await rows(database, org)

    class StaleOnce(AuditWriter):
        reads = 0

        async def _tail(self, session: Any, org_id: uuid.UUID | None) -> str | None:
            self.reads += 1
            current = await super()._tail(session, org_id)
            return first.hash if self.reads == 1 else current

    stale = StaleOnce(database)
    await stale.append(entry(org, 3))
    assert stale.reads == 2
    async with database.platform_session(read_only=True) as db:
        result = await audit.walk(db, org_id=org)
    assert result.ok and result.rows == 3


async def test_a_tail_remembered_from_before_another_writer_appended(database: Database) -> None:
    """Each writer remembers its last hash; another process's append makes it stale."""
    org = await new_org(database, "org-a")
    here, elsewhere = AuditWriter(database), AuditWriter(database)
    await here.append(entry(org, 1))
    await elsewhere.append(entry(org, 2))
    await here.append(entry(org, 3))  # clashes on (org_id, prev_hash), rereads, succeeds
    await elsewhere.append(entry(org, 4))
    async with database.platform_session(read_only=True) as db:
        result = await audit.walk(db, org_id=org)
    assert result.ok and result.rows == 4


@pytest.mark.postgres
async def test_a_lost_race_on_the_scoped_pool_rolls_back_and_keeps_its_connection(
    migrated_pg: str,
) -> None:
    """The clash ends in ROLLBACK on the same connection: not a transaction left open (the
    pool would retire the connection) and not a new connection per lost race."""
    async with scoped_database(migrated_pg, 1) as database:
        org = await new_org(database, "org-a")
        here, elsewhere = AuditWriter(database), AuditWriter(database)
        await here.append(entry(org, 1))
        assert database.scoped is not None
        opened = database.scoped.opened
        await elsewhere.append(entry(org, 2))
        await here.append(entry(org, 3))  # remembered tail is stale: clash, retry
        assert database.scoped.opened == opened
        async with database.platform_session(read_only=True) as db:
            result = await audit.walk(db, org_id=org)
        assert result.ok and result.rows == 3
