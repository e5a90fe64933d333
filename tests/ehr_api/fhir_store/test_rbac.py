"""Permissions per resource type and interaction, plus the audit rows of PHI access."""

from __future__ import annotations

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient


async def test_clinician_writes_patients_auditor_cannot_read_them(fhir: Fhir) -> None:
    harness, client = fhir.harness, fhir.client
    clinician = harness.auth("org-a", "clinician", sub="doc")
    auditor = harness.auth("org-a", "auditor", sub="aud")
    created = await client.post(f"{BASE}/Patient", json=patient(), headers=clinician)
    assert created.status_code == 201
    pid = created.json()["id"]
    assert (await client.get(f"{BASE}/Patient/{pid}", headers=clinician)).status_code == 200

    for method, url in [
        ("GET", f"{BASE}/Patient/{pid}"),
        ("GET", f"{BASE}/Patient/{pid}/_history/1"),
        ("GET", f"{BASE}/Patient"),
    ]:
        denied = await client.request(method, url, headers=auditor)
        assert denied.status_code == 403, url
        assert denied.json()["resourceType"] == "OperationOutcome"
    post = await client.post(f"{BASE}/Patient", json=patient(), headers=auditor)
    assert post.status_code == 403
    # clinicians may not delete clinical resources (org_admin may)
    assert (await client.delete(f"{BASE}/Patient/{pid}", headers=clinician)).status_code == 403
    assert (await client.get(f"{BASE}/Patient/{pid}")).status_code == 401


async def test_reads_are_audited_with_the_returned_ids(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    pid = (await client.post(f"{BASE}/Patient", json=patient("9"), headers=a)).json()["id"]
    before = await fhir.harness.last_audit_id()
    await client.get(f"{BASE}/Patient", params={"identifier": "urn:mrn|9"}, headers=a)
    await client.get(f"{BASE}/Patient/{pid}", headers=a)
    rows = await fhir.harness.audit_rows_after(before)
    assert [(row.resource_type, list(row.resource_ids)) for row in rows] == [
        ("Patient", [pid]),
        ("Patient", [pid]),
    ]


async def test_new_interactions_are_permission_checked(fhir: Fhir) -> None:
    harness, client = fhir.harness, fhir.client
    clinician = harness.auth("org-a", "clinician", sub="doc")
    auditor = harness.auth("org-a", "auditor", sub="aud")
    pid = (await client.post(f"{BASE}/Patient", json=patient(), headers=clinician)).json()["id"]
    patch = [{"op": "replace", "path": "/gender", "value": "other"}]
    patch_headers = {"Content-Type": "application/json-patch+json"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for who, expected in ((auditor, 403), (clinician, 200)):
        responses = [
            await client.patch(
                f"{BASE}/Patient/{pid}", json=patch, headers={**who, **patch_headers}
            ),
            await client.post(f"{BASE}/Patient/$validate", json=patient(), headers=who),
            await client.post(f"{BASE}/Patient/{pid}/$validate", json=patient(), headers=who),
            await client.post(f"{BASE}/Patient/_search", data={}, headers={**who, **form}),
            await client.put(f"{BASE}/Patient?identifier=urn:mrn|123", json=patient(), headers=who),
        ]
        assert [r.status_code for r in responses] == [expected] * 5, [r.text for r in responses]
