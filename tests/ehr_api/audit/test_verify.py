"""Tampering with the audit log through a raw connection is caught, and the row named.

The append-only guard is switched off first (as an attacker or a careless operator with
owner rights could do); what is left to catch the change is the hash chain, checked by
`GET /api/audit/verify`, `ehr_api.admin.verify_audit` (`ehr-platform audit verify`) and
the service itself.
"""

from __future__ import annotations

import pytest
from ehr_api import admin
from ehr_api.audit.models import AuditLog

from tests.ehr_api.support import Harness, tamper


async def _chain(harness: Harness, calls: int) -> list[AuditLog]:
    org = await harness.org("org-a")
    admin_headers = harness.auth("org-a", "org_admin")
    for _ in range(calls):
        await harness.client.get("/api/me", headers=admin_headers)
    return await harness.audit_rows(org.id)


async def _verify(harness: Harness) -> dict[str, object]:
    response = await harness.client.get(
        "/api/audit/verify", headers=harness.auth("org-a", "auditor")
    )
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_an_intact_chain_verifies(harness: Harness) -> None:
    rows = await _chain(harness, 5)
    assert await _verify(harness) == {
        "ok": True,
        "rows_checked": len(rows),
        "broken_row_id": None,
        "reason": None,
    }


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("UPDATE audit_logs SET outcome = 'denied' WHERE id = :id", "content"),
        ("UPDATE audit_logs SET actor = 'mallory' WHERE id = :id", "content"),
        ("UPDATE audit_logs SET status_code = 500 WHERE id = :id", "content"),
        ("UPDATE audit_logs SET hash = :forged WHERE id = :id", "content"),
        ("DELETE FROM audit_logs WHERE id = :id", "prev_hash"),
    ],
    ids=["outcome", "actor", "status", "hash", "delete"],
)
async def test_tampering_is_caught_and_named(
    harness: Harness, migrated: str, sql: str, reason: str
) -> None:
    rows = await _chain(harness, 6)
    victim = rows[3]
    params: dict[str, object] = {"id": victim.id}
    if ":forged" in sql:
        params["forged"] = "f" * 64
    await tamper(migrated, sql, **params)

    # A deleted row is noticed at the next one, whose prev_hash no longer links.
    named = rows[4].id if sql.startswith("DELETE") else victim.id
    before_victim = 3
    result = await _verify(harness)
    assert result["ok"] is False
    assert result["broken_row_id"] == named
    assert reason in str(result["reason"])
    assert result["rows_checked"] == before_victim

    label, walked = await admin.verify_audit(harness.database, org="org-a")
    assert label == "org-a" and walked.broken is not None and walked.broken.row_id == named


async def test_rewriting_a_row_and_its_hash_is_caught_at_the_next_row(
    harness: Harness, migrated: str
) -> None:
    from ehr_api.audit.chain import chain_hash

    rows = await _chain(harness, 4)
    victim = rows[1]
    forged = {column.name: getattr(victim, column.name) for column in AuditLog.__table__.c}
    forged["outcome"] = "denied"
    new_hash = chain_hash(victim.prev_hash, forged)
    await tamper(
        migrated,
        "UPDATE audit_logs SET outcome = 'denied', hash = :hash WHERE id = :id",
        hash=new_hash,
        id=victim.id,
    )
    result = await _verify(harness)
    assert result["broken_row_id"] == rows[2].id
    assert "prev_hash" in str(result["reason"])
