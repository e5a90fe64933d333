"""The tenant leaks HAPI FHIR users reported, turned into tests: nothing foreign, ever."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient
from tests.ehr_api.support import running


async def test_org_a_never_sees_org_b(fhir: Fhir) -> None:
    client, a, b = fhir.client, fhir.a, fhir.b
    theirs = (await client.post(f"{BASE}/Patient", json=patient("B-1"), headers=b)).json()
    bid = theirs["id"]
    assert (await client.get(f"{BASE}/Patient/{bid}", headers=b)).status_code == 200

    assert (await client.get(f"{BASE}/Patient/{bid}", headers=a)).status_code == 404
    vread = await client.get(f"{BASE}/Patient/{bid}/_history/1", headers=a)
    assert vread.status_code == 404
    by_id = await client.get(f"{BASE}/Patient", params={"_id": bid}, headers=a)
    assert by_id.json()["total"] == 0 and by_id.json()["entry"] == []
    by_identifier = await client.get(
        f"{BASE}/Patient", params={"identifier": "urn:mrn|B-1"}, headers=a
    )
    assert by_identifier.json()["total"] == 0
    assert (await client.get(f"{BASE}/Patient", headers=a)).json()["total"] == 0

    # Writes cannot reach it either: PUT makes A's own resource, DELETE finds nothing.
    put = await client.put(f"{BASE}/Patient/{bid}", json={**patient("A-x"), "id": bid}, headers=a)
    assert put.status_code == 201
    assert put.headers["ETag"] == 'W/"1"'
    assert (await client.delete(f"{BASE}/Patient/{bid}", headers=a)).status_code == 200
    still = await client.get(f"{BASE}/Patient/{bid}", headers=b)
    assert still.status_code == 200 and still.json() == theirs


async def test_conditional_create_ignores_the_other_organisation(fhir: Fhir) -> None:
    client, a, b = fhir.client, fhir.a, fhir.b
    theirs = (await client.post(f"{BASE}/Patient", json=patient("shared"), headers=b)).json()
    headers = {**a, "If-None-Exist": "identifier=urn:mrn|shared"}
    ours = await client.post(f"{BASE}/Patient", json=patient("shared"), headers=headers)
    assert ours.status_code == 201
    assert ours.json()["id"] != theirs["id"]
    again = await client.post(f"{BASE}/Patient", json=patient("shared"), headers=headers)
    assert again.status_code == 200 and again.json()["id"] == ours.json()["id"]


@pytest.mark.postgres
async def test_one_scoped_connection_passed_between_organisations_leaks_nothing(
    migrated_pg: str, tmp_path: Path
) -> None:
    # One connection in the scoped pool: every read and write of A and B goes through the
    # same PostgreSQL session, which keeps its scope between uses (ehr_api.db.scoped_pool).
    async with running(migrated_pg, tmp_path, db_scoped_pool_size=1) as harness:
        await harness.org("org-a")
        await harness.org("org-b")
        client = harness.client
        a, b = harness.auth("org-a", "org_admin"), harness.auth("org-b", "org_admin")
        for turn in range(3):
            theirs = await client.post(f"{BASE}/Patient", json=patient(f"B-{turn}"), headers=b)
            ours = await client.post(f"{BASE}/Patient", json=patient(f"A-{turn}"), headers=a)
            bid, aid = theirs.json()["id"], ours.json()["id"]
            assert (await client.get(f"{BASE}/Patient/{bid}", headers=a)).status_code == 404
            assert (await client.get(f"{BASE}/Patient/{aid}", headers=b)).status_code == 404
            for headers, own in ((a, "A"), (b, "B")):
                found = (await client.get(f"{BASE}/Patient", headers=headers)).json()
                values = {e["resource"]["identifier"][0]["value"] for e in found["entry"]}
                assert values == {f"{own}-{n}" for n in range(turn + 1)}
            update = await client.put(
                f"{BASE}/Patient/{bid}", json={**patient("A-x"), "id": bid}, headers=a
            )
            assert update.status_code == 201  # A's own new resource under that id
            assert (await client.delete(f"{BASE}/Patient/{bid}", headers=a)).status_code == 200
            still = await client.get(f"{BASE}/Patient/{bid}", headers=b)
            assert still.status_code == 200 and still.json() == theirs.json()
        pool = harness.database.scoped
        # Really one connection throughout, the 404s included: never replaced.
        assert pool is not None and pool.opened == 1
