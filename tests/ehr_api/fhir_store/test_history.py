"""History interactions: instance and type, `_since`, `_count`, tombstones, tenancy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient


async def test_instance_history_lists_every_version_newest_first(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    body = (await client.post(f"{BASE}/Patient", json=patient(), headers=a)).json()
    pid = body["id"]
    await client.put(f"{BASE}/Patient/{pid}", json={**body, "gender": "other"}, headers=a)
    await client.delete(f"{BASE}/Patient/{pid}", headers=a)

    response = await client.get(f"{BASE}/Patient/{pid}/_history", headers=a)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history"
    assert bundle["total"] == 3
    entries = bundle["entry"]
    assert [e["response"]["etag"] for e in entries] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert [e["request"]["method"] for e in entries] == ["DELETE", "PUT", "POST"]
    assert entries[0]["request"]["url"] == f"Patient/{pid}"
    assert "resource" not in entries[0]  # the deletion has no content
    assert entries[1]["resource"]["gender"] == "other"
    assert entries[2]["resource"]["meta"]["versionId"] == "1"
    assert entries[2]["response"]["status"].startswith("201")
    assert all(e["fullUrl"].endswith(f"{BASE}/Patient/{pid}") for e in entries)

    limited = await client.get(f"{BASE}/Patient/{pid}/_history", params={"_count": "1"}, headers=a)
    assert limited.json()["total"] == 3 and len(limited.json()["entry"]) == 1
    missing = await client.get(f"{BASE}/Patient/nope/_history", headers=a)
    assert missing.status_code == 404


async def test_type_history_with_since_and_count(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    first = (await client.post(f"{BASE}/Patient", json=patient("1"), headers=a)).json()
    await asyncio.sleep(0.01)
    since = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    await asyncio.sleep(0.01)
    second = (await client.post(f"{BASE}/Patient", json=patient("2"), headers=a)).json()
    await client.put(f"{BASE}/Patient/{first['id']}", json={**first, "gender": "male"}, headers=a)

    everything = (await client.get(f"{BASE}/Patient/_history", headers=a)).json()
    assert everything["type"] == "history" and everything["total"] == 3
    recent = await client.get(f"{BASE}/Patient/_history", params={"_since": since}, headers=a)
    assert recent.status_code == 200, recent.text
    got = [(e["resource"]["id"], e["response"]["etag"]) for e in recent.json()["entry"]]
    assert got == [(first["id"], 'W/"2"'), (second["id"], 'W/"1"')]
    assert "_since=" in recent.json()["link"][0]["url"]
    counted = (await client.get(f"{BASE}/Patient/_history?_count=1", headers=a)).json()
    assert counted["total"] == 3 and len(counted["entry"]) == 1
    for bad in ("yesterday", "2026-01-01T00:00:00"):  # no zone: not an instant
        response = await client.get(f"{BASE}/Patient/_history", params={"_since": bad}, headers=a)
        assert response.status_code == 400
        assert response.json()["resourceType"] == "OperationOutcome"
    empty = (await client.get(f"{BASE}/Observation/_history", headers=a)).json()
    assert empty["total"] == 0 and empty["entry"] == []


async def test_history_never_shows_another_organisation(fhir: Fhir) -> None:
    client, a, b = fhir.client, fhir.a, fhir.b
    ours = (await client.post(f"{BASE}/Patient", json=patient("A-1"), headers=a)).json()
    theirs = (await client.post(f"{BASE}/Patient", json=patient("B-1"), headers=b)).json()
    await client.put(f"{BASE}/Patient/{theirs['id']}", json={**theirs, "gender": "male"}, headers=b)

    type_history = (await client.get(f"{BASE}/Patient/_history", headers=a)).json()
    assert type_history["total"] == 1
    assert [e["resource"]["id"] for e in type_history["entry"]] == [ours["id"]]
    instance = await client.get(f"{BASE}/Patient/{theirs['id']}/_history", headers=a)
    assert instance.status_code == 404
    since = await client.get(
        f"{BASE}/Patient/_history", params={"_since": "2000-01-01T00:00:00Z"}, headers=a
    )
    assert {e["resource"]["id"] for e in since.json()["entry"]} == {ours["id"]}
    assert (await client.get(f"{BASE}/Patient/_history", headers=b)).json()["total"] == 2


async def test_history_is_audited_and_permission_checked(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    pid = (await client.post(f"{BASE}/Patient", json=patient(), headers=a)).json()["id"]
    auditor = fhir.harness.auth("org-a", "auditor", sub="aud")
    assert (await client.get(f"{BASE}/Patient/_history", headers=auditor)).status_code == 403
    denied = await client.get(f"{BASE}/Patient/{pid}/_history", headers=auditor)
    assert denied.status_code == 403
    before = await fhir.harness.last_audit_id()
    await client.get(f"{BASE}/Patient/{pid}/_history", headers=a)
    rows = await fhir.harness.audit_rows_after(before)
    assert [(row.resource_type, list(row.resource_ids)) for row in rows] == [("Patient", [pid])]
