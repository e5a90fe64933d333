"""Batch and transaction Bundles at POST /fhir/R4: atomicity, order, references, tenancy."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
from ehr_api.errors import PreconditionFailedError
from ehr_api.events.models import EventLog
from ehr_api.fhir_store import service
from ehr_api.fhir_store.bundles import MAX_ENTRIES
from ehr_api.fhir_store.models import FhirResource, FhirResourceHistory, FhirSearchToken
from sqlalchemy import func, select

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient

JSON = dict[str, Any]


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def entry(method: str, url: str, resource: JSON | None = None, **extra: Any) -> JSON:
    full_url = extra.pop("fullUrl", None)
    item: JSON = {"request": {"method": method, "url": url, **extra}}
    if resource is not None:
        item["resource"] = resource
    if full_url:
        item["fullUrl"] = full_url
    return item


def bundle(kind: str, *entries: JSON) -> JSON:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def encounter(subject: str) -> JSON:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": subject},
    }


def observation(subject: str, encounter_ref: str | None = None) -> JSON:
    body: JSON = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": subject},
        "valueQuantity": {"value": 72, "unit": "/min"},
    }
    if encounter_ref:
        body["encounter"] = {"reference": encounter_ref}
    return body


async def post(fhir: Fhir, body: JSON, headers: dict[str, str]) -> httpx.Response:
    return await fhir.client.post(BASE, json=body, headers=headers)


async def counts(fhir: Fhir) -> tuple[int, ...]:
    """Rows of every table a write touches, across both organisations."""
    async with fhir.harness.database.platform_session(read_only=True) as db:
        tables = (FhirResource, FhirResourceHistory, FhirSearchToken, EventLog)
        return tuple(
            [int(await db.scalar(select(func.count()).select_from(t)) or 0) for t in tables]
        )


async def indexed(fhir: Fhir) -> set[str]:
    """Ids of the resources that have token index rows."""
    async with fhir.harness.database.platform_session(read_only=True) as db:
        return set((await db.execute(select(FhirSearchToken.resource_id).distinct())).scalars())


async def tokens_of(fhir: Fhir, resource_id: str) -> list[FhirSearchToken]:
    async with fhir.harness.database.platform_session(read_only=True) as db:
        query = select(FhirSearchToken).where(FhirSearchToken.resource_id == resource_id)
        return [*(await db.execute(query)).scalars()]


async def create(fhir: Fhir, body: JSON, headers: dict[str, str]) -> str:
    created = await fhir.client.post(f"{BASE}/{body['resourceType']}", json=body, headers=headers)
    assert created.status_code == 201, created.text
    resource_id: str = created.json()["id"]
    return resource_id


def issue(response: httpx.Response) -> JSON:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    first: JSON = body["issue"][0]
    return first


# -- transaction: references, order, atomicity -----------------------------------------------


async def test_transaction_resolves_urn_uuid_references_in_any_order(fhir: Fhir) -> None:
    p, e, o = urn(), urn(), urn()
    body = bundle(
        "transaction",
        # The Observation comes first and names entries that follow it.
        entry("POST", "Observation", observation(p, e), fullUrl=o),
        entry("POST", "Encounter", encounter(p), fullUrl=e),
        entry("POST", "Patient", patient("T-1"), fullUrl=p),
    )
    response = await post(fhir, body, fhir.a)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "transaction-response"
    kinds = [item["resource"]["resourceType"] for item in answer["entry"]]
    assert kinds == ["Observation", "Encounter", "Patient"]  # the request's order
    ids = {}
    for item in answer["entry"]:
        resource, status = item["resource"], item["response"]
        key = f"{resource['resourceType']}/{resource['id']}"
        ids[resource["resourceType"]] = key
        assert status["status"] == "201 Created"
        assert status["location"] == f"{key}/_history/1"
        assert status["etag"] == 'W/"1"'
        assert status["lastModified"] == resource["meta"]["lastUpdated"]
        assert item["fullUrl"].endswith(f"/fhir/R4/{key}")

    read = await fhir.client.get(f"{BASE}/{ids['Observation']}", headers=fhir.a)
    stored = read.json()
    assert stored["subject"]["reference"] == ids["Patient"]
    assert stored["encounter"]["reference"] == ids["Encounter"]
    enc = (await fhir.client.get(f"{BASE}/{ids['Encounter']}", headers=fhir.a)).json()
    assert enc["subject"]["reference"] == ids["Patient"]
    for target in (ids["Patient"], ids["Encounter"]):
        assert (await fhir.client.get(f"{BASE}/{target}", headers=fhir.a)).status_code == 200
    # The reference index holds the real ids too: search by subject finds the Observation.
    found = await fhir.client.get(
        f"{BASE}/Observation", params={"subject": ids["Patient"]}, headers=fhir.a
    )
    assert [item["resource"]["id"] for item in found.json()["entry"]] == [stored["id"]]


async def test_a_failing_entry_rolls_back_the_whole_transaction(fhir: Fhir) -> None:
    await create(fhir, patient("keep"), fhir.a)
    before = await counts(fhir)
    p = urn()
    bad = {**patient("bad"), "gender": "sometimes"}
    body = bundle(
        "transaction",
        entry("POST", "Patient", patient("T-2"), fullUrl=p),
        entry("POST", "Observation", observation(p)),
        entry("PUT", "Patient/fixed-id", {**patient("T-3"), "id": "fixed-id"}),
        entry("POST", "Patient", bad),
    )
    response = await post(fhir, body, fhir.a)
    assert response.status_code == 422, response.text
    problem = issue(response)
    assert problem["expression"] == ["Bundle.entry[3].resource.gender"]
    assert problem["severity"] == "error"
    # Nothing at all: no resource, no history, no index row, no event_log row.
    assert await counts(fhir) == before
    gone = await fhir.client.get(f"{BASE}/Patient/fixed-id", headers=fhir.a)
    assert gone.status_code == 404


async def test_transaction_deletes_first_and_reads_last(fhir: Fhir) -> None:
    pid = await create(fhir, patient("D-1"), fhir.a)
    # The GET comes first in the Bundle but runs after the DELETE: 410 fails the whole
    # transaction, so the DELETE is undone as well.
    body = bundle("transaction", entry("GET", f"Patient/{pid}"), entry("DELETE", f"Patient/{pid}"))
    response = await post(fhir, body, fhir.a)
    assert response.status_code == 410, response.text
    assert issue(response)["expression"] == ["Bundle.entry[0]"]
    assert (await fhir.client.get(f"{BASE}/Patient/{pid}", headers=fhir.a)).status_code == 200

    # A search listed before a POST sees what the POST wrote.
    body = bundle(
        "transaction",
        entry("GET", "Patient?identifier=urn:mrn|N-1"),
        entry("POST", "Patient", patient("N-1")),
    )
    answer = (await post(fhir, body, fhir.a)).json()
    searchset = answer["entry"][0]["resource"]
    assert searchset["type"] == "searchset" and searchset["total"] == 1
    assert searchset["entry"][0]["resource"]["id"] == answer["entry"][1]["resource"]["id"]


async def test_transaction_delete_then_post_and_read_in_one_go(fhir: Fhir) -> None:
    pid = await create(fhir, patient("old"), fhir.a)
    other = await create(fhir, patient("by-criteria"), fhir.a)
    kept = await create(fhir, patient("kept"), fhir.a)
    body = bundle(
        "transaction",
        entry("POST", "Patient", patient("new")),
        entry("DELETE", f"Patient/{pid}"),
        entry("GET", "Patient?identifier=urn:mrn|old,urn:mrn|by-criteria"),
        entry("DELETE", "Patient?identifier=urn:mrn|by-criteria"),
        entry("HEAD", f"Patient/{kept}"),
    )
    answer = (await post(fhir, body, fhir.a)).json()
    statuses = [item["response"]["status"] for item in answer["entry"]]
    assert statuses == ["201 Created", "200 OK", "200 OK", "200 OK", "200 OK"]
    assert answer["entry"][1]["response"]["etag"] == 'W/"2"'
    assert answer["entry"][2]["resource"]["total"] == 0
    assert answer["entry"][3]["response"]["etag"] == 'W/"2"'
    head = answer["entry"][4]
    assert "resource" not in head and head["response"]["etag"] == 'W/"1"'
    gone = await fhir.client.get(f"{BASE}/Patient/{other}", headers=fhir.a)
    assert gone.status_code == 410


async def test_two_entries_for_one_resource_are_refused(fhir: Fhir) -> None:
    pid = await create(fhir, patient("twice"), fhir.a)
    before = await counts(fhir)
    body = bundle(
        "transaction",
        entry("PUT", f"Patient/{pid}", {**patient("twice"), "id": pid, "gender": "male"}),
        entry("DELETE", f"Patient/{pid}"),
    )
    response = await post(fhir, body, fhir.a)
    assert response.status_code == 400
    assert f"Patient/{pid}" in issue(response)["diagnostics"]
    assert issue(response)["expression"] == ["Bundle.entry[1]"]
    # A conditional update is checked once it has found its target (after it wrote).
    body = bundle(
        "transaction",
        entry("PUT", f"Patient/{pid}", {**patient("twice"), "id": pid}),
        entry("PUT", "Patient?identifier=urn:mrn|twice", patient("twice")),
    )
    response = await post(fhir, body, fhir.a)
    assert response.status_code == 400
    assert issue(response)["expression"] == ["Bundle.entry[1]"]
    assert await counts(fhir) == before


async def test_if_none_exist_maps_the_placeholder_to_the_existing_resource(fhir: Fhir) -> None:
    pid = await create(fhir, patient("E-1"), fhir.a)
    p = urn()
    body = bundle(
        "transaction",
        entry("POST", "Patient", patient("E-1"), fullUrl=p, ifNoneExist="identifier=urn:mrn|E-1"),
        entry("POST", "Observation", observation(p)),
    )
    answer = (await post(fhir, body, fhir.a)).json()
    first, second = answer["entry"]
    assert first["response"]["status"] == "200 OK"
    assert first["resource"]["id"] == pid
    assert second["resource"]["subject"]["reference"] == f"Patient/{pid}"
    everyone = await fhir.client.get(f"{BASE}/Patient", headers=fhir.a)
    assert everyone.json()["total"] == 1


async def test_two_posts_with_the_same_if_none_exist_store_one_resource(fhir: Fhir) -> None:
    """What a mapped HL7 message sends when one person is two participants: one record."""
    first_urn, second_urn = urn(), urn()
    criteria = "identifier=urn:mrn|D-1&gender=female"
    reordered = "gender=female&identifier=urn:mrn|D-1"
    body = bundle(
        "transaction",
        entry("POST", "Observation", observation(second_urn)),
        entry("POST", "Patient", patient("D-1"), fullUrl=first_urn, ifNoneExist=criteria),
        entry("POST", "Patient", patient("D-1"), fullUrl=second_urn, ifNoneExist=reordered),
        entry("POST", "Observation", observation(first_urn)),
    )
    response = await post(fhir, body, fhir.a)
    assert response.status_code == 200, response.text
    obs_a, first, second, obs_b = response.json()["entry"]
    assert first["response"]["status"] == "201 Created"
    assert second["response"]["status"] == "200 OK"
    pid = first["resource"]["id"]
    assert second["resource"]["id"] == pid
    for obs in (obs_a, obs_b):
        assert obs["resource"]["subject"]["reference"] == f"Patient/{pid}"
    everyone = await fhir.client.get(f"{BASE}/Patient", headers=fhir.a)
    assert everyone.json()["total"] == 1
    # Sent again, both entries find the stored one.
    again = (await post(fhir, body, fhir.a)).json()["entry"]
    assert [item["response"]["status"] for item in again[1:3]] == ["200 OK", "200 OK"]
    assert {again[1]["resource"]["id"], again[2]["resource"]["id"]} == {pid}
    everyone = await fhir.client.get(f"{BASE}/Patient", headers=fhir.a)
    assert everyone.json()["total"] == 1


async def test_batch_reads_honour_if_none_match_and_if_modified_since(fhir: Fhir) -> None:
    pid = await create(fhir, patient("B-304"), fhir.a)
    url = f"Patient/{pid}"
    body = bundle(
        "batch",
        entry("GET", url, ifNoneMatch='W/"1"'),
        entry("GET", url, ifNoneMatch='W/"0"'),
        entry("GET", url, ifModifiedSince="2999-01-01T00:00:00Z"),
        entry("GET", url, ifModifiedSince="2001-01-01T00:00:00Z"),
    )
    answer = (await post(fhir, body, fhir.a)).json()["entry"]
    assert [item["response"]["status"] for item in answer] == [
        "304 Not Modified", "200 OK", "304 Not Modified", "200 OK",
    ]  # fmt: skip
    assert [("resource" in item) for item in answer] == [False, True, False, True]
    assert all(item["response"]["etag"] == 'W/"1"' for item in answer)
    bad = bundle("batch", entry("GET", url, ifNoneMatch=1))
    assert (
        (await post(fhir, bad, fhir.a)).json()["entry"][0]["response"]["status"].startswith("400")
    )


async def test_conditional_references_need_exactly_one_match(fhir: Fhir) -> None:
    pid = await create(fhir, patient("C-1"), fhir.a)
    body = bundle(
        "transaction",
        entry("POST", "Observation", observation("Patient?identifier=urn:mrn|C-1")),
    )
    answer = (await post(fhir, body, fhir.a)).json()
    assert answer["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{pid}"

    await create(fhir, patient("C-2"), fhir.a)
    await create(fhir, patient("C-2"), fhir.a)
    before = await counts(fhir)
    for query, text in (("identifier=urn:mrn|C-2", "matched 2"), ("identifier=urn:mrn|no", "")):
        body = bundle(
            "transaction",
            entry("POST", "Patient", patient("C-3")),
            entry("POST", "Observation", observation(f"Patient?{query}")),
        )
        response = await post(fhir, body, fhir.a)
        assert response.status_code == 412, response.text
        assert issue(response)["expression"] == ["Bundle.entry[1].resource.subject.reference"]
        assert text in issue(response)["diagnostics"]
    # An unknown search parameter is never ignored into a match.
    body = bundle("transaction", entry("POST", "Observation", observation("Patient?nope=1")))
    response = await post(fhir, body, fhir.a)
    assert response.status_code == 400
    assert issue(response)["expression"] == ["Bundle.entry[0].resource.subject.reference"]
    assert await counts(fhir) == before


async def test_unknown_placeholder_and_malformed_bundles(fhir: Fhir) -> None:
    body = bundle("transaction", entry("POST", "Observation", observation(urn())))
    response = await post(fhir, body, fhir.a)
    assert response.status_code == 400
    assert issue(response)["expression"] == ["Bundle.entry[0].resource.subject.reference"]

    for wrong, where in (
        (patient(), "Bundle.resourceType"),
        ({"resourceType": "Bundle", "type": "collection"}, "Bundle.type"),
        (bundle("batch", {"request": {"method": "TRACE", "url": "Patient"}}), None),
    ):
        response = await post(fhir, wrong, fhir.a)
        if where is None:  # a batch answers a malformed entry in its own response
            item = response.json()["entry"][0]["response"]
            assert item["status"] == "400 Bad Request"
            assert item["outcome"]["issue"][0]["expression"] == ["Bundle.entry[0].request.method"]
        else:
            assert response.status_code == 400 and issue(response)["expression"] == [where]

    too_many = bundle("batch", *[entry("GET", "Patient/x")] * (MAX_ENTRIES + 1))
    response = await post(fhir, too_many, fhir.a)
    assert response.status_code == 413
    assert str(MAX_ENTRIES) in issue(response)["diagnostics"]
    not_json = await fhir.client.post(BASE, content=b"{", headers=fhir.a)
    assert not_json.status_code == 400
    xml = await post(fhir, bundle("batch"), {**fhir.a, "Accept": "application/fhir+xml"})
    assert xml.status_code == 406
    empty = await post(fhir, bundle("batch"), fhir.a)
    assert empty.json() == {"resourceType": "Bundle", "type": "batch-response", "entry": []}


async def test_if_match_and_patch_entries(fhir: Fhir) -> None:
    pid = await create(fhir, patient("M-1"), fhir.a)
    ops = [{"op": "replace", "path": "/gender", "value": "other"}]
    binary = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(json.dumps(ops).encode()).decode(),
    }
    body = bundle("transaction", entry("PATCH", f"Patient/{pid}", binary, ifMatch='W/"1"'))
    answer = (await post(fhir, body, fhir.a)).json()
    assert answer["entry"][0]["resource"]["gender"] == "other"
    assert answer["entry"][0]["response"]["etag"] == 'W/"2"'

    stale = {**patient("M-1"), "id": pid}
    body = bundle("transaction", entry("PUT", f"Patient/{pid}", stale, ifMatch='W/"1"'))
    response = await post(fhir, body, fhir.a)
    assert response.status_code == 412
    assert issue(response)["expression"] == ["Bundle.entry[0]"]
    body = bundle(
        "batch",
        entry("PUT", f"Patient/{pid}", stale, ifMatch='W/"1"'),
        entry("PUT", f"Patient/{pid}", stale, ifMatch='W/"2"'),
    )
    answer = (await post(fhir, body, fhir.a)).json()
    statuses = [item["response"]["status"] for item in answer["entry"]]
    assert statuses == ["412 Precondition Failed", "200 OK"]
    current = (await fhir.client.get(f"{BASE}/Patient/{pid}", headers=fhir.a)).json()
    assert current["meta"]["versionId"] == "3" and current["gender"] == "female"


# -- batch -------------------------------------------------------------------------------------


async def test_batch_entries_succeed_or_fail_alone(fhir: Fhir) -> None:
    before = await counts(fhir)
    body = bundle(
        "batch",
        entry("POST", "Patient", patient("B-ok")),
        entry("POST", "Patient", {**patient("B-bad"), "gender": "sometimes"}),
        entry("GET", "Patient/does-not-exist"),
        entry("PUT", "Patient/batch-put", {**patient("B-put"), "id": "batch-put"}),
        entry("POST", "NoSuchType", {"resourceType": "NoSuchType"}),
        entry("GET", "Patient/batch-put/_history/1"),
    )
    response = await post(fhir, body, fhir.a)
    assert response.status_code == 200
    answer = response.json()
    assert answer["type"] == "batch-response"
    statuses = [item["response"]["status"] for item in answer["entry"]]
    assert statuses == [
        "201 Created",
        "422 Unprocessable Entity",
        "404 Not Found",
        "201 Created",
        "404 Not Found",
        "200 OK",
    ]
    bad = answer["entry"][1]["response"]["outcome"]["issue"][0]
    assert bad["expression"] == ["Bundle.entry[1].resource.gender"]
    assert "resource" not in answer["entry"][1]
    # Two resources: their rows, history, index and events; nothing of the failures.
    resources, history, _, events = before
    resources_after, history_after, _, events_after = await counts(fhir)
    assert (resources_after, history_after, events_after) == (
        resources + 2,
        history + 2,
        events + 2,
    )
    assert await indexed(fhir) == {answer["entry"][0]["resource"]["id"], "batch-put"}
    found = await fhir.client.get(f"{BASE}/Patient", headers=fhir.a)
    assert {item["resource"]["identifier"][0]["value"] for item in found.json()["entry"]} == {
        "B-ok",
        "B-put",
    }


async def test_a_savepoint_undoes_only_its_own_writes(fhir: Fhir) -> None:
    """What a batch relies on, on this backend: SAVEPOINT rollback inside the org session."""
    org = await fhir.harness.org("org-c")
    async with fhir.harness.database.org_session(org.id) as db:
        try:
            async with db.begin_nested():
                await service.create(db, org_id=org.id, resource_type="Patient", body=patient())
                raise PreconditionFailedError("undo")
        except PreconditionFailedError:
            pass
        async with db.begin_nested():
            kept, _ = await service.create(
                db, org_id=org.id, resource_type="Patient", body=patient("kept")
            )
    assert await counts(fhir) == (1, 1, len(await tokens_of(fhir, kept.id)), 1)


async def test_batch_does_not_resolve_placeholders(fhir: Fhir) -> None:
    p = urn()
    body = bundle(
        "batch",
        entry("POST", "Patient", patient("U-1"), fullUrl=p),
        entry("POST", "Observation", observation(p)),
    )
    answer = (await post(fhir, body, fhir.a)).json()
    assert answer["entry"][1]["resource"]["subject"]["reference"] == p


async def test_prefer_return_applies_to_every_entry(fhir: Fhir) -> None:
    body = bundle("transaction", entry("POST", "Patient", patient("P-1")))
    minimal = await post(fhir, body, {**fhir.a, "Prefer": "return=minimal"})
    item = minimal.json()["entry"][0]
    assert "resource" not in item and item["response"]["status"] == "201 Created"
    assert item["response"]["location"].startswith("Patient/")
    outcome = await post(fhir, body, {**fhir.a, "Prefer": "return=OperationOutcome"})
    item = outcome.json()["entry"][0]
    assert "resource" not in item
    assert item["response"]["outcome"]["issue"][0]["severity"] == "information"


# -- permissions, audit, tenancy ----------------------------------------------------------------


async def test_each_entry_is_permission_checked(fhir: Fhir) -> None:
    clinician = fhir.harness.auth("org-a", "clinician", sub="doc")
    pid = await create(fhir, patient("R-1"), fhir.a)
    before = await counts(fhir)
    body = bundle(
        "transaction",
        entry("POST", "Patient", patient("R-2")),
        entry("DELETE", f"Patient/{pid}"),  # clinicians may not delete
    )
    response = await post(fhir, body, clinician)
    assert response.status_code == 403
    assert issue(response)["expression"] == ["Bundle.entry[1]"]
    assert await counts(fhir) == before

    answer = (await post(fhir, {**body, "type": "batch"}, clinician)).json()
    statuses = [item["response"]["status"] for item in answer["entry"]]
    assert statuses == ["201 Created", "403 Forbidden"]
    auditor = fhir.harness.auth("org-a", "auditor", sub="aud")
    read = bundle("batch", entry("GET", f"Patient/{pid}"))
    denied = (await post(fhir, read, auditor)).json()["entry"][0]["response"]
    assert denied["status"] == "403 Forbidden"
    assert (await fhir.client.post(BASE, json=read)).status_code == 401


async def test_the_bundle_is_audited_with_every_id(fhir: Fhir) -> None:
    pid = await create(fhir, patient("A-1"), fhir.a)
    before = await fhir.harness.last_audit_id()
    body = bundle(
        "transaction",
        entry("GET", f"Patient/{pid}"),
        entry("POST", "Observation", observation(f"Patient/{pid}")),
    )
    answer = (await post(fhir, body, fhir.a)).json()
    oid = answer["entry"][1]["resource"]["id"]
    (row,) = await fhir.harness.audit_rows_after(before)
    assert row.action == "POST /fhir/R4" and row.resource_type == "Bundle"
    assert sorted(row.resource_ids) == sorted([f"Patient/{pid}", f"Observation/{oid}"])


async def test_conditional_reference_never_reaches_another_organisation(fhir: Fhir) -> None:
    theirs = await create(fhir, patient("only-b"), fhir.b)
    before = await counts(fhir)
    body = bundle(
        "transaction",
        entry("POST", "Patient", patient("A-new")),
        entry("POST", "Observation", observation("Patient?identifier=urn:mrn|only-b")),
    )
    response = await post(fhir, body, fhir.a)
    assert response.status_code == 412
    assert theirs not in response.text
    assert await counts(fhir) == before


async def test_if_none_exist_matching_only_the_other_organisation_creates_our_own(
    fhir: Fhir,
) -> None:
    theirs = await create(fhir, patient("shared"), fhir.b)
    p = urn()
    body = bundle(
        "transaction",
        entry(
            "POST", "Patient", patient("shared"), fullUrl=p, ifNoneExist="identifier=urn:mrn|shared"
        ),
        entry("POST", "Observation", observation(p)),
    )
    answer = (await post(fhir, body, fhir.a)).json()
    ours = answer["entry"][0]
    assert ours["response"]["status"] == "201 Created" and ours["resource"]["id"] != theirs
    assert (
        answer["entry"][1]["resource"]["subject"]["reference"]
        == f"Patient/{ours['resource']['id']}"
    )
    still = (await fhir.client.get(f"{BASE}/Patient/{theirs}", headers=fhir.b)).json()
    assert still["meta"]["versionId"] == "1"


async def test_entries_naming_another_organisations_ids_do_not_touch_them(fhir: Fhir) -> None:
    theirs = (await fhir.client.post(f"{BASE}/Patient", json=patient("B-1"), headers=fhir.b)).json()
    bid = theirs["id"]
    body = bundle(
        "batch",
        entry("GET", f"Patient/{bid}"),
        entry("GET", f"Patient/{bid}/_history/1"),
        entry("GET", f"Patient?_id={bid}"),
        entry("PATCH", f"Patient/{bid}", {"resourceType": "Binary",
                                          "contentType": "application/json-patch+json",
                                          "data": base64.b64encode(b"[]").decode()}),
    )  # fmt: skip
    answer = (await post(fhir, body, fhir.a)).json()
    statuses = [item["response"]["status"] for item in answer["entry"]]
    assert statuses == ["404 Not Found", "404 Not Found", "200 OK", "404 Not Found"]
    assert answer["entry"][2]["resource"]["total"] == 0
    assert "B-1" not in json.dumps(answer)

    body = bundle("batch", entry("DELETE", f"Patient/{bid}"))
    assert (await post(fhir, body, fhir.a)).json()["entry"][0]["response"]["status"] == "200 OK"
    body = bundle("transaction", entry("PUT", f"Patient/{bid}", {**patient("A-x"), "id": bid}))
    put = (await post(fhir, body, fhir.a)).json()["entry"][0]
    assert put["response"]["status"] == "201 Created"  # A's own resource under that id
    still = await fhir.client.get(f"{BASE}/Patient/{bid}", headers=fhir.b)
    assert still.status_code == 200 and still.json() == theirs
    mine = await fhir.client.get(f"{BASE}/Patient/{bid}", headers=fhir.a)
    assert mine.json()["identifier"][0]["value"] == "A-x"
