"""`Access`: bearer credential -> Principal -> allow/deny, and how its caches stay honest.

Changes committed through this process's sessions reach every `Access` at once (ORM
hooks); changes made elsewhere (raw SQL here, standing in for another process) are seen
once the cache entry is older than the TTL. A fake clock makes that deterministic.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from ehr_api.auth import service as access_admin
from ehr_api.auth.access import Access
from ehr_api.auth.api_keys import ApiKeyExpiredError, ApiKeyInvalidError
from ehr_api.auth.tokens import TokenVerifier, issue_token
from ehr_api.db import Database
from ehr_api.db.base import utcnow
from ehr_api.errors import AuthenticationError, ForbiddenError
from ehr_api.tenants.models import Organization
from sqlalchemy import text

SECRET = "s" * 40


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def make_org(database: Database, slug: str = "org-a") -> Organization:
    async with database.platform_session() as db:
        org = Organization(slug=slug, name=slug)
        db.add(org)
        await db.flush()
    return org


async def behind_its_back(database: Database, sql: str, **params: object) -> None:
    """A change the hooks cannot see (as if another process had made it)."""
    async with database.engine.begin() as connection:
        await connection.execute(text(sql), params)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def access(database: Database, clock: Clock) -> Iterator[Access]:
    access = Access(database, TokenVerifier(secret=SECRET), ttl=5.0, clock=clock)
    yield access
    access.close()


async def test_token_and_key_principals(database: Database, access: Access) -> None:
    org = await make_org(database)
    by_slug = await access.authenticate(issue_token("alice", "org-a", ["clinician"], SECRET))
    by_id = await access.authenticate(issue_token("alice", str(org.id), ["clinician"], SECRET))
    assert by_slug == by_id
    assert (by_slug.org_id, by_slug.org_slug, by_slug.kind) == (org.id, "org-a", "user")
    async with database.org_session(org.id) as db:
        created = await access_admin.create_api_key(db, org_id=org.id, name="k", roles=["partner"])
    key = await access.authenticate(created.key)
    assert (key.kind, key.org_id, key.roles) == ("api_key", org.id, frozenset({"partner"}))
    with pytest.raises(ApiKeyInvalidError):
        await access.authenticate(created.key[:-4] + "AAAA")
    assert await access.allowed(key, "hl7", "ingest")
    assert not await access.allowed(key, "audit", "read")
    with pytest.raises(ForbiddenError):
        await access.authorize(key, "audit", "read")


async def test_changes_elsewhere_are_seen_after_the_ttl(
    database: Database, access: Access, clock: Clock
) -> None:
    org = await make_org(database)
    token = issue_token("alice", "org-a", [], SECRET)
    principal = await access.authenticate(token)
    assert not await access.allowed(principal, "audit", "read")

    await behind_its_back(
        database,
        "INSERT INTO role_assignments (id, org_id, subject, role, created_at)"
        " VALUES (:id, :org, 'alice', 'auditor', CURRENT_TIMESTAMP)",
        id=uuid.uuid4().hex if database.engine.dialect.name == "sqlite" else uuid.uuid4(),
        org=org.id.hex if database.engine.dialect.name == "sqlite" else org.id,
    )
    await behind_its_back(database, "UPDATE organizations SET status = 'suspended'")
    assert not await access.allowed(principal, "audit", "read")  # cached
    await access.authenticate(token)  # cached: still active

    clock.now += 5.1
    assert await access.allowed(principal, "audit", "read")
    with pytest.raises(ForbiddenError):
        await access.authenticate(token)


async def test_changes_committed_here_are_seen_at_once(database: Database, access: Access) -> None:
    org = await make_org(database)
    token = issue_token("bob", "org-a", [], SECRET)
    bob = await access.authenticate(token)
    assert not await access.allowed(bob, "members", "read")
    async with database.org_session(org.id) as db:
        await access_admin.assign_role(db, org_id=org.id, subject="bob", role="auditor")
    assert await access.allowed(bob, "members", "read")

    # A rolled-back change evicts nothing and grants nothing.
    with pytest.raises(RuntimeError):
        async with database.org_session(org.id) as db:
            await access_admin.assign_role(db, org_id=org.id, subject="bob", role="org_admin")
            raise RuntimeError("abandon")
    assert not await access.allowed(bob, "members", "write")

    async with database.org_session(org.id) as db:
        created = await access_admin.create_api_key(
            db, org_id=org.id, name="k", roles=["partner"], expires_at=utcnow() + timedelta(days=1)
        )
    assert (await access.authenticate(created.key)).kind == "api_key"
    async with database.org_session(org.id) as db:
        await access_admin.revoke_api_key(db, org_id=org.id, key_id=created.row.id)
    with pytest.raises(AuthenticationError) as revoked:
        await access.authenticate(created.key)
    assert getattr(revoked.value, "code", None) == "api_key_revoked"

    async with database.platform_session() as db:
        (await db.get(Organization, org.id)).status = "suspended"  # type: ignore[union-attr]
    with pytest.raises(ForbiddenError):
        await access.authenticate(token)


async def test_an_expired_key_is_refused(database: Database, access: Access) -> None:
    org = await make_org(database)
    async with database.org_session(org.id) as db:
        created = await access_admin.create_api_key(
            db, org_id=org.id, name="k", roles=["partner"], expires_at=utcnow() + timedelta(days=1)
        )
    await behind_its_back(
        database,
        "UPDATE api_keys SET expires_at = :past",
        past=(utcnow() - timedelta(days=1)).replace(tzinfo=None)
        if database.engine.dialect.name == "sqlite"
        else utcnow() - timedelta(days=1),
    )
    access.forget_all()
    with pytest.raises(ApiKeyExpiredError):
        await access.authenticate(created.key)


async def test_a_verified_token_is_kept_for_the_ttl_and_never_past_its_expiry(
    database: Database, clock: Clock
) -> None:
    await make_org(database)
    access = Access(
        database, TokenVerifier(secret=SECRET, leeway=timedelta(0)), ttl=5.0, clock=clock
    )
    try:
        token = issue_token("alice", "org-a", ["clinician"], SECRET)
        await access.authenticate(token)
        # The signing secret changes (a key withdrawn): the verified token is kept for the
        # ttl, then checked again and refused.
        access.verifier = TokenVerifier(secret="t" * 40, leeway=timedelta(0))
        assert (await access.authenticate(token)).actor == "alice"
        clock.now += 5.1
        with pytest.raises(AuthenticationError, match="signature"):
            await access.authenticate(token)

        # A cached token still stops at its `exp`, whatever the ttl.
        access.verifier = TokenVerifier(secret=SECRET, leeway=timedelta(0))
        expiring = issue_token(
            "bob",
            "org-a",
            [],
            SECRET,
            ttl=timedelta(seconds=61),
            now=utcnow() - timedelta(minutes=1),
        )
        await access.authenticate(expiring)
        await asyncio.sleep(max(0.0, (expiry(expiring) - utcnow()).total_seconds()) + 0.05)
        with pytest.raises(AuthenticationError, match="expired"):
            await access.authenticate(expiring)
    finally:
        access.close()


def expiry(token: str) -> datetime:
    return TokenVerifier(secret=SECRET).verify(token).expires_at
