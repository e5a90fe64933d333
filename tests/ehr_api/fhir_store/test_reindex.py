"""`ehr-platform fhir reindex`: search indexes rebuilt from stored content, per organisation."""

from __future__ import annotations

import asyncio

import pytest
from ehr_api import admin
from ehr_api.fhir_store.models import FhirResource, FhirSearchString, FhirSearchToken
from ehr_api.fhir_store.reindex import rebuild_batch, reindex_organisation
from sqlalchemy import delete, func, select

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient
from tests.ehr_api.support import Harness


async def _found(fhir: Fhir, headers: dict[str, str], query: str) -> int:
    answer = await fhir.client.get(f"{BASE}/Patient?{query}", headers=headers)
    assert answer.status_code == 200, answer.text
    total: int = answer.json()["total"]
    return total


async def _forget_index(harness: Harness, slug: str) -> None:
    """What an older indexer left: no token or string rows (as if the parameters were new)."""
    org = await admin.find_organization(harness.database, slug)
    async with harness.database.org_session(org.id) as db:
        for model in (FhirSearchToken, FhirSearchString):
            await db.execute(delete(model).where(model.org_id == org.id))


async def test_reindex_restores_what_searches_find(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    pids = [
        (await client.post(f"{BASE}/Patient", json=patient(f"r-{n}"), headers=a)).json()["id"]
        for n in range(5)
    ]
    deleted = pids.pop()
    assert (await client.delete(f"{BASE}/Patient/{deleted}", headers=a)).status_code == 200
    await _forget_index(fhir.harness, "org-a")
    assert await _found(fhir, a, "identifier=urn:mrn|r-1") == 0
    assert await _found(fhir, a, "family=Doe") == 0

    org = await admin.find_organization(fhir.harness.database, "org-a")
    result = await reindex_organisation(fhir.harness.database, org.id, batch=2)
    assert result.by_type == {"Patient": 4}  # the deleted one has nothing to index
    assert await _found(fhir, a, "identifier=urn:mrn|r-1") == 1
    assert await _found(fhir, a, "family=Doe") == 4
    # Twice is the same as once: no duplicate index rows.
    async with fhir.harness.database.org_session(org.id, read_only=True) as db:
        before = await db.scalar(select(func.count()).select_from(FhirSearchToken))
    await reindex_organisation(fhir.harness.database, org.id)
    async with fhir.harness.database.org_session(org.id, read_only=True) as db:
        assert await db.scalar(select(func.count()).select_from(FhirSearchToken)) == before
        versions = await db.scalar(select(func.max(FhirResource.version_id)))
    assert versions == 2  # only the deletion made a version: reindexing writes none


async def test_reindex_of_one_organisation_leaves_the_other_alone(fhir: Fhir) -> None:
    client, a, b = fhir.client, fhir.a, fhir.b
    await client.post(f"{BASE}/Patient", json=patient("mine"), headers=a)
    await client.post(f"{BASE}/Patient", json=patient("theirs"), headers=b)
    await _forget_index(fhir.harness, "org-a")
    await _forget_index(fhir.harness, "org-b")

    done = await admin.reindex_fhir(fhir.harness.database, org="org-a", resource_type=None)
    assert [(slug, result.total) for slug, result in done] == [("org-a", 1)]
    assert await _found(fhir, a, "identifier=urn:mrn|mine") == 1
    assert await _found(fhir, b, "identifier=urn:mrn|theirs") == 0
    # Every organisation, one type.
    done = await admin.reindex_fhir(fhir.harness.database, org=None, resource_type="Patient")
    assert {slug: result.total for slug, result in done} == {"org-a": 1, "org-b": 1}
    assert await _found(fhir, b, "identifier=urn:mrn|theirs") == 1
    assert await _found(fhir, a, "identifier=urn:mrn|theirs") == 0


async def test_reindex_refuses_unknown_organisations_and_types(fhir: Fhir) -> None:
    database = fhir.harness.database
    with pytest.raises(admin.CommandError, match="not a resource type"):
        await admin.reindex_fhir(database, org=None, resource_type="NotAType")
    with pytest.raises(admin.CommandError, match="no organisation"):
        await admin.reindex_fhir(database, org="nope", resource_type=None)


async def test_an_update_racing_a_reindex_batch_keeps_no_stale_index_rows(fhir: Fhir) -> None:
    # The update reads version 1 while a reindex batch holds the row, and its one-statement
    # write starts (snapshot taken) before the batch commits index rows for version 1.
    # Those rows are invisible to the write's snapshot, so its index deletes cannot see
    # them: the write must notice the batch came between (the row version it read is
    # gone) and do it again, or the old identifier would stay searchable.
    if not fhir.harness.database.is_postgresql:
        pytest.skip("SQLite runs one writer at a time: nothing to race")
    client, a, database = fhir.client, fhir.a, fhir.harness.database
    pid = (await client.post(f"{BASE}/Patient", json=patient("old"), headers=a)).json()["id"]
    await _forget_index(fhir.harness, "org-a")  # as an older indexer left it
    org = await admin.find_organization(database, "org-a")

    async with database.org_connection(org.id) as batch:
        keys = await rebuild_batch(batch, org.id, resource_type="Patient", after=None, limit=10)
        assert keys == [("Patient", pid)]
        update = asyncio.create_task(
            client.put(f"{BASE}/Patient/{pid}", json={**patient("new"), "id": pid}, headers=a)
        )
        await asyncio.sleep(0.5)
        assert not update.done()  # its write waits for the batch's row lock
    answer = await update
    assert answer.status_code == 200 and answer.json()["meta"]["versionId"] == "2"
    assert await _found(fhir, a, "identifier=urn:mrn|new") == 1
    assert await _found(fhir, a, "identifier=urn:mrn|old") == 0
