"""CRUD over plain httpx: status codes, headers, versions, tombstones, preconditions."""

from __future__ import annotations

from ehr_api.events.models import EventLog
from ehr_api.fhir_store.search_params import params_for
from hl7_fhir.fhir import validate_resource
from sqlalchemy import select

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient


async def test_create_read_vread_update_delete(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    created = await client.post(f"{BASE}/Patient", json=patient(), headers=a)
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith("application/fhir+json")
    assert created.headers["ETag"] == 'W/"1"'
    assert created.headers["Last-Modified"].endswith("GMT")
    body = created.json()
    pid = body["id"]
    assert created.headers["Location"].endswith(f"{BASE}/Patient/{pid}/_history/1")
    assert body["meta"]["versionId"] == "1"

    read = await client.get(f"{BASE}/Patient/{pid}", headers=a)
    assert read.status_code == 200
    assert read.json() == body
    assert read.headers["ETag"] == 'W/"1"'

    changed = {**body, "gender": "other"}
    updated = await client.put(f"{BASE}/Patient/{pid}", json=changed, headers=a)
    assert updated.status_code == 200, updated.text
    assert updated.headers["ETag"] == 'W/"2"'
    assert updated.json()["meta"]["versionId"] == "2"

    old = await client.get(f"{BASE}/Patient/{pid}/_history/1", headers=a)
    assert old.status_code == 200
    assert old.json()["gender"] == "female"
    assert (await client.get(f"{BASE}/Patient/{pid}/_history/9", headers=a)).status_code == 404

    stale = await client.put(
        f"{BASE}/Patient/{pid}", json=changed, headers={**a, "If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    fresh = await client.put(
        f"{BASE}/Patient/{pid}", json=changed, headers={**a, "If-Match": 'W/"2"'}
    )
    assert fresh.status_code == 200
    assert fresh.headers["ETag"] == 'W/"3"'

    deleted = await client.delete(f"{BASE}/Patient/{pid}", headers=a)
    assert deleted.status_code == 200
    assert deleted.headers["ETag"] == 'W/"4"'
    gone = await client.get(f"{BASE}/Patient/{pid}", headers=a)
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    assert (await client.get(f"{BASE}/Patient/{pid}/_history/4", headers=a)).status_code == 410
    assert (await client.get(f"{BASE}/Patient/{pid}/_history/3", headers=a)).status_code == 200

    async with fhir.harness.database.platform_session(read_only=True) as db:
        events = (await db.execute(select(EventLog.event_type).order_by(EventLog.id))).all()
    assert [e for (e,) in events] == [
        "fhir.created",
        "fhir.updated",
        "fhir.updated",
        "fhir.deleted",
    ]


async def test_update_as_create_and_prefer_minimal(fhir: Fhir) -> None:
    body = {**patient(), "id": "client-chosen-1"}
    headers = {**fhir.a, "Prefer": "return=minimal"}
    response = await fhir.client.put(f"{BASE}/Patient/client-chosen-1", json=body, headers=headers)
    assert response.status_code == 201
    assert response.content == b""
    assert response.headers["ETag"] == 'W/"1"'
    mismatch = await fhir.client.put(f"{BASE}/Patient/other", json=body, headers=fhir.a)
    assert mismatch.status_code == 400


async def test_invalid_resource_is_422_with_expressions(fhir: Fhir) -> None:
    bad = {**patient(), "gender": "mal", "birthDate": "not-a-date"}
    response = await fhir.client.post(f"{BASE}/Patient", json=bad, headers=fhir.a)
    assert response.status_code == 422
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    expressions = {e for issue in outcome["issue"] for e in issue.get("expression", [])}
    assert "Patient.gender" in expressions
    assert len(outcome["issue"]) >= 2


async def test_not_found_unknown_type_and_bad_body(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    missing = await client.get(f"{BASE}/Patient/nope", headers=a)
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"
    unknown = await client.get(f"{BASE}/Frobnicator/1", headers=a)
    assert unknown.status_code == 404
    assert (await client.post(f"{BASE}/Patient", content=b"{", headers=a)).status_code == 400
    wrong = await client.post(f"{BASE}/Patient", json={"resourceType": "Observation"}, headers=a)
    assert wrong.status_code == 400


async def test_conditional_create_returns_the_existing_resource(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    first = await client.post(f"{BASE}/Patient", json=patient("77"), headers=a)
    headers = {**a, "If-None-Exist": "identifier=urn:mrn|77"}
    again = await client.post(f"{BASE}/Patient", json=patient("77"), headers=headers)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = {**a, "If-None-Exist": "identifier=urn:mrn|78"}
    assert (
        await client.post(f"{BASE}/Patient", json=patient("78"), headers=other)
    ).status_code == 201


async def test_search_by_id_identifier_and_count(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    ids = [
        (await client.post(f"{BASE}/Patient", json=patient(str(n)), headers=a)).json()["id"]
        for n in range(3)
    ]
    found = (
        await client.get(f"{BASE}/Patient", params={"identifier": "urn:mrn|1"}, headers=a)
    ).json()
    assert found["resourceType"] == "Bundle" and found["type"] == "searchset"
    assert found["total"] == 1 and found["entry"][0]["resource"]["id"] == ids[1]
    assert found["link"][0]["relation"] == "self"
    assert "identifier=urn%3Amrn%7C1" in found["link"][0]["url"]
    by_code = (await client.get(f"{BASE}/Patient", params={"identifier": "2"}, headers=a)).json()
    assert [e["resource"]["id"] for e in by_code["entry"]] == [ids[2]]
    no_system = await client.get(f"{BASE}/Patient", params={"identifier": "|2"}, headers=a)
    assert no_system.json()["total"] == 0
    by_id = await client.get(f"{BASE}/Patient", params={"_id": f"{ids[0]},{ids[2]}"}, headers=a)
    assert {e["resource"]["id"] for e in by_id.json()["entry"]} == {ids[0], ids[2]}
    page = (await client.get(f"{BASE}/Patient", params={"_count": "2"}, headers=a)).json()
    assert page["total"] == 3 and len(page["entry"]) == 2
    await client.delete(f"{BASE}/Patient/{ids[1]}", headers=a)
    after = await client.get(f"{BASE}/Patient", params={"identifier": "urn:mrn|1"}, headers=a)
    assert after.json()["total"] == 0


async def test_metadata_is_public_and_json_only(fhir: Fhir) -> None:
    before = await fhir.harness.last_audit_id()
    anonymous = await fhir.client.get(f"{BASE}/metadata")
    assert anonymous.status_code == 200
    assert anonymous.json()["resourceType"] == "CapabilityStatement"
    (row,) = await fhir.harness.audit_rows_after(before)
    assert (row.actor, row.org_id, row.outcome) == ("anonymous", None, "success")
    bad = await fhir.client.get(f"{BASE}/metadata", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401  # a credential that is sent must be good
    response = await fhir.client.get(f"{BASE}/metadata", headers=fhir.a)
    assert response.status_code == 200
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["format"] == ["application/fhir+json", "json"]
    patient_entry = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert {i["code"] for i in patient_entry["interaction"]} == {
        "read", "vread", "create", "update", "patch", "delete", "history-instance",
        "history-type", "search-type",
    }  # fmt: skip
    assert patient_entry["conditionalUpdate"] is True and patient_entry["readHistory"] is True
    assert patient_entry["conditionalDelete"] == "single"
    assert [op["name"] for op in patient_entry["operation"]] == ["validate", "everything"]
    assert "Observation:subject" in patient_entry["searchRevInclude"]
    assert "Patient:general-practitioner" in patient_entry["searchInclude"]
    assert statement["rest"][0]["interaction"] == [
        {"code": "transaction"},
        {"code": "batch"},
        {"code": "history-system"},
        {"code": "search-system"},
    ]
    audit_entry = next(r for r in statement["rest"][0]["resource"] if r["type"] == "AuditEvent")
    assert {i["code"] for i in audit_entry["interaction"]} == {"read", "vread", "search-type"}
    assert validate_resource(statement) == []  # the statement is itself valid R4
    assert statement["patchFormat"] == ["application/json-patch+json", "application/fhir+json"]
    assert {p["name"] for p in patient_entry["searchParam"]} == set(params_for("Patient"))
    xml_only = {**fhir.a, "Accept": "application/fhir+xml"}
    xml = await fhir.client.get(f"{BASE}/metadata", headers=xml_only)
    assert xml.status_code == 406
    assert xml.json()["resourceType"] == "OperationOutcome"


async def test_conditional_read_answers_304_for_a_current_copy(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    created = await client.post(f"{BASE}/Patient", json=patient("cr-1"), headers=a)
    pid, etag = created.json()["id"], created.headers["ETag"]
    url = f"{BASE}/Patient/{pid}"
    current = await client.get(url, headers={**a, "If-None-Match": etag})
    assert current.status_code == 304 and current.content == b""
    assert current.headers["ETag"] == etag and "Last-Modified" in current.headers
    for tags in ('"1"', 'W/"7", W/"1"', "*"):
        assert (await client.get(url, headers={**a, "If-None-Match": tags})).status_code == 304
    stale = await client.get(url, headers={**a, "If-None-Match": 'W/"0"'})
    assert stale.status_code == 200 and stale.json()["id"] == pid
    modified = created.headers["Last-Modified"]
    since = await client.get(url, headers={**a, "If-Modified-Since": modified})
    assert since.status_code == 304
    earlier = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert (await client.get(url, headers={**a, "If-Modified-Since": earlier})).status_code == 200
    garbage = await client.get(url, headers={**a, "If-Modified-Since": "yesterday"})
    assert garbage.status_code == 200  # an unreadable date is ignored (RFC 9110)
    # If-None-Match decides when both are sent.
    both = {"If-None-Match": 'W/"0"', "If-Modified-Since": modified}
    assert (await client.get(url, headers={**a, **both})).status_code == 200
    # After an update the old tag is stale; another organisation gets its 404 as ever.
    body = {**patient("cr-1"), "id": pid, "gender": "other"}
    assert (await client.put(url, json=body, headers=a)).status_code == 200
    after = await client.get(url, headers={**a, "If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] == 'W/"2"'
    assert (await client.get(url, headers={**fhir.b, "If-None-Match": "*"})).status_code == 404
    statement = (await client.get(f"{BASE}/metadata", headers=a)).json()
    patient_entry = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert patient_entry["conditionalRead"] == "full-support"
