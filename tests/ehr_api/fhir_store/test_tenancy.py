"""The tenant leaks HAPI FHIR users reported, turned into tests: nothing foreign, ever."""

from __future__ import annotations

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient


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
