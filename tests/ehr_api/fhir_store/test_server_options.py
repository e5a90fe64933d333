"""Server options that change FHIR behaviour: the update-as-create switch, and read-time
`_summary` / `_elements`."""

from __future__ import annotations

from pathlib import Path

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient
from tests.ehr_api.support import running


async def test_update_as_create_can_be_switched_off(migrated: str, tmp_path: Path) -> None:
    async with running(migrated, tmp_path, fhir_update_create=False) as harness:
        await harness.org("org-a")
        auth = harness.auth("org-a", "org_admin")
        client = harness.client
        refused = await client.put(
            f"{BASE}/Patient/chosen-id", json={**patient(), "id": "chosen-id"}, headers=auth
        )
        assert refused.status_code == 405, refused.text
        assert refused.json()["issue"][0]["code"] == "not-supported"
        assert (await client.get(f"{BASE}/Patient/chosen-id", headers=auth)).status_code == 404
        # Conditional update without a match and with a body id: also a client-chosen id.
        conditional = await client.put(
            f"{BASE}/Patient?identifier=urn:mrn|1",
            json={**patient("1"), "id": "chosen-2"},
            headers=auth,
        )
        assert conditional.status_code == 405
        # ... without an id the server assigns one, as a create would.
        assigned = await client.put(
            f"{BASE}/Patient?identifier=urn:mrn|1", json=patient("1"), headers=auth
        )
        assert assigned.status_code == 201
        # An existing resource still updates; the statement says updateCreate false.
        new_id = assigned.json()["id"]
        body = {**assigned.json(), "gender": "other"}
        updated = await client.put(f"{BASE}/Patient/{new_id}", json=body, headers=auth)
        assert updated.status_code == 200
        batch = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {
                    "resource": {**patient("9"), "id": "chosen-3"},
                    "request": {"method": "PUT", "url": "Patient/chosen-3"},
                }
            ],
        }
        answer = await client.post(BASE, json=batch, headers=auth)
        assert answer.json()["entry"][0]["response"]["status"].startswith("405")
        statement = (await client.get(f"{BASE}/metadata", headers=auth)).json()
        patient_entry = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
        assert patient_entry["updateCreate"] is False


async def test_read_honours_summary_and_elements(fhir: Fhir) -> None:
    created = await fhir.client.post(
        f"{BASE}/Patient",
        json={**patient(), "text": {"status": "generated", "div": "<div>Jane</div>"}},
        headers=fhir.a,
    )
    url = f"{BASE}/Patient/{created.json()['id']}"
    full = (await fhir.client.get(url, headers=fhir.a)).json()
    assert "text" in full and "meta" in full and "tag" not in full["meta"]
    data = (await fhir.client.get(url, params={"_summary": "data"}, headers=fhir.a)).json()
    assert "text" not in data and data["name"] == full["name"]
    assert {"code": "SUBSETTED"}.items() <= data["meta"]["tag"][0].items()
    only_gender = (
        await fhir.client.get(url, params={"_elements": "gender"}, headers=fhir.a)
    ).json()
    assert set(only_gender) == {"resourceType", "id", "meta", "gender"}
    bad = await fhir.client.get(url, params={"_summary": "maybe"}, headers=fhir.a)
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["expression"] == ["_summary"]
    # The stored version is untouched.
    assert (await fhir.client.get(url, headers=fhir.a)).json() == full


async def test_if_none_exist_never_ignores_a_criterion(fhir: Fhir) -> None:
    """A typo must not be ignored and turn into "matches the one patient there is"."""
    await fhir.client.post(f"{BASE}/Patient", json=patient("1"), headers=fhir.a)
    typo = {**fhir.a, "If-None-Exist": "identifer=urn:mrn|2"}
    answer = await fhir.client.post(f"{BASE}/Patient", json=patient("2"), headers=typo)
    assert answer.status_code == 400, answer.text
    assert "identifer" in answer.text
    empty = {**fhir.a, "If-None-Exist": "_count=1"}
    answer = await fhir.client.post(f"{BASE}/Patient", json=patient("2"), headers=empty)
    assert answer.status_code == 400
    total = (await fhir.client.get(f"{BASE}/Patient", headers=fhir.a)).json()["total"]
    assert total == 1
