"""Prefer: return=OperationOutcome, POST _search, $validate and conditional update."""

from __future__ import annotations

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_prefer_operation_outcome_on_create_update_patch(fhir: Fhir) -> None:
    client = fhir.client
    headers = {**fhir.a, "Prefer": "return=OperationOutcome"}
    created = await client.post(f"{BASE}/Patient", json=patient(), headers=headers)
    assert created.status_code == 201
    assert created.json()["resourceType"] == "OperationOutcome"
    assert created.json()["issue"][0]["severity"] == "information"
    assert created.headers["ETag"] == 'W/"1"' and "Location" in created.headers
    pid = created.headers["Location"].split("/")[-3]
    current = (await client.get(f"{BASE}/Patient/{pid}", headers=fhir.a)).json()
    updated = await client.put(
        f"{BASE}/Patient/{pid}", json={**current, "gender": "other"}, headers=headers
    )
    assert updated.status_code == 200 and updated.json()["resourceType"] == "OperationOutcome"
    patch = [{"op": "replace", "path": "/gender", "value": "male"}]
    patched = await client.patch(
        f"{BASE}/Patient/{pid}",
        json=patch,
        headers={**headers, "Content-Type": "application/json-patch+json"},
    )
    assert patched.status_code == 200 and patched.json()["resourceType"] == "OperationOutcome"
    assert patched.headers["ETag"] == 'W/"3"'


async def test_post_search_gives_the_same_results_as_get(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    ids = [
        (await client.post(f"{BASE}/Patient", json=patient(str(n)), headers=a)).json()["id"]
        for n in range(3)
    ]
    for params in ({"identifier": "urn:mrn|1"}, {"_id": f"{ids[0]},{ids[2]}", "_count": "1"}, {}):
        got = (await client.get(f"{BASE}/Patient", params=params, headers=a)).json()
        posted = await client.post(f"{BASE}/Patient/_search", data=params, headers={**a, **FORM})
        assert posted.status_code == 200, posted.text
        assert posted.json() == got
    wrong = await client.post(
        f"{BASE}/Patient/_search", json={"x": 1}, headers={**a, "Content-Type": "application/json"}
    )
    assert wrong.status_code == 400
    theirs = (await client.post(f"{BASE}/Patient", json=patient("B"), headers=fhir.b)).json()
    leak = await client.post(
        f"{BASE}/Patient/_search", data={"_id": theirs["id"]}, headers={**a, **FORM}
    )
    assert leak.json()["total"] == 0


async def test_validate_type_and_instance(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    ok = await client.post(f"{BASE}/Patient/$validate", json=patient(), headers=a)
    assert ok.status_code == 200
    assert ok.json()["issue"] == [
        {"severity": "information", "code": "informational", "diagnostics": "All OK"}
    ]
    bad = await client.post(
        f"{BASE}/Patient/$validate", json={**patient(), "gender": "mal"}, headers=a
    )
    assert bad.status_code == 200
    assert any("Patient.gender" in i.get("expression", []) for i in bad.json()["issue"])
    assert all(i["severity"] == "error" for i in bad.json()["issue"])
    params = {
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": patient()}],
    }
    wrapped = await client.post(f"{BASE}/Patient/$validate", json=params, headers=a)
    assert wrapped.json()["issue"][0]["diagnostics"] == "All OK"
    wrong_type = await client.post(
        f"{BASE}/Patient/$validate", json={"resourceType": "Observation"}, headers=a
    )
    assert wrong_type.status_code == 200 and wrong_type.json()["issue"][0]["severity"] == "error"
    empty = {"resourceType": "Parameters", "parameter": []}
    assert (await client.post(f"{BASE}/Patient/$validate", json=empty, headers=a)).json()["issue"][
        0
    ]["severity"] == "error"

    pid = (await client.post(f"{BASE}/Patient", json=patient(), headers=a)).json()["id"]
    mine = await client.post(
        f"{BASE}/Patient/{pid}/$validate", json={**patient(), "id": pid}, headers=a
    )
    assert mine.status_code == 200 and mine.json()["issue"][0]["diagnostics"] == "All OK"
    other_id = await client.post(
        f"{BASE}/Patient/{pid}/$validate", json={**patient(), "id": "x"}, headers=a
    )
    assert other_id.json()["issue"][0]["expression"] == ["Patient.id"]
    missing = await client.post(f"{BASE}/Patient/nope/$validate", json=patient(), headers=a)
    assert missing.status_code == 404
    theirs = (await client.post(f"{BASE}/Patient", json=patient(), headers=fhir.b)).json()
    foreign = await client.post(
        f"{BASE}/Patient/{theirs['id']}/$validate", json=patient(), headers=a
    )
    assert foreign.status_code == 404
    # nothing was stored by validating
    listed = (await client.get(f"{BASE}/Patient", headers=a)).json()
    assert listed["total"] == 1


async def test_conditional_update(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    url = f"{BASE}/Patient?identifier=urn:mrn|cu-1"
    created = await client.put(url, json=patient("cu-1"), headers=a)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    updated = await client.put(url, json={**patient("cu-1"), "gender": "male"}, headers=a)
    assert updated.status_code == 200
    assert updated.json()["id"] == pid and updated.headers["ETag"] == 'W/"2"'
    stale = await client.put(url, json=patient("cu-1"), headers={**a, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    wrong_id = await client.put(url, json={**patient("cu-1"), "id": "other"}, headers=a)
    assert wrong_id.status_code == 400

    await client.post(f"{BASE}/Patient", json=patient("dup"), headers=a)
    await client.post(f"{BASE}/Patient", json=patient("dup"), headers=a)
    several = await client.put(
        f"{BASE}/Patient?identifier=urn:mrn|dup", json=patient("dup"), headers=a
    )
    assert several.status_code == 412
    assert several.json()["resourceType"] == "OperationOutcome"
    no_criteria = await client.put(f"{BASE}/Patient", json=patient(), headers=a)
    assert no_criteria.status_code == 400
    chosen = await client.put(
        f"{BASE}/Patient?identifier=urn:mrn|cu-2", json={**patient("cu-2"), "id": "cu-2"},
        headers=a,
    )  # fmt: skip
    assert chosen.status_code == 201 and chosen.json()["id"] == "cu-2"


async def test_conditional_update_ignores_the_other_organisation(fhir: Fhir) -> None:
    client, a, b = fhir.client, fhir.a, fhir.b
    theirs = (await client.post(f"{BASE}/Patient", json=patient("shared"), headers=b)).json()
    url = f"{BASE}/Patient?identifier=urn:mrn|shared"
    ours = await client.put(url, json=patient("shared"), headers=a)
    assert ours.status_code == 201
    assert ours.json()["id"] != theirs["id"]
    again = await client.put(url, json={**patient("shared"), "gender": "male"}, headers=a)
    assert again.status_code == 200 and again.json()["id"] == ours.json()["id"]
    still = await client.get(f"{BASE}/Patient/{theirs['id']}", headers=b)
    assert still.json() == theirs


async def test_conditional_update_needs_a_criterion_not_only_result_parameters(
    fhir: Fhir,
) -> None:
    client, a = fhir.client, fhir.a
    only = (await client.post(f"{BASE}/Patient", json=patient("only"), headers=a)).json()
    # `_sort` alone narrows nothing: it must not "match" the organisation's only Patient.
    sorted_only = await client.put(
        f"{BASE}/Patient?_sort=family", json={**patient("only"), "gender": "male"}, headers=a
    )
    assert sorted_only.status_code == 400, sorted_only.text
    assert (await client.get(f"{BASE}/Patient/{only['id']}", headers=a)).json() == only


async def test_conditional_delete(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    pid = (await client.post(f"{BASE}/Patient", json=patient("cd-1"), headers=a)).json()["id"]
    deleted = await client.delete(f"{BASE}/Patient?identifier=urn:mrn|cd-1", headers=a)
    assert deleted.status_code == 200, deleted.text
    assert deleted.headers["ETag"] == 'W/"2"'
    assert f"Patient/{pid} deleted" in deleted.json()["issue"][0]["diagnostics"]
    assert (await client.get(f"{BASE}/Patient/{pid}", headers=a)).status_code == 410
    # Deleted resources no longer match: a repeat finds nothing and changes nothing.
    again = await client.delete(f"{BASE}/Patient?identifier=urn:mrn|cd-1", headers=a)
    assert again.status_code == 200 and "ETag" not in again.headers
    assert "nothing matched" in again.json()["issue"][0]["diagnostics"]
    history = (await client.get(f"{BASE}/Patient/{pid}/_history", headers=a)).json()
    assert history["total"] == 2

    first = (await client.post(f"{BASE}/Patient", json=patient("two"), headers=a)).json()
    second = (await client.post(f"{BASE}/Patient", json=patient("two"), headers=a)).json()
    several = await client.delete(f"{BASE}/Patient?identifier=urn:mrn|two", headers=a)
    assert several.status_code == 412
    for survivor in (first, second):
        read = await client.get(f"{BASE}/Patient/{survivor['id']}", headers=a)
        assert read.status_code == 200


async def test_conditional_delete_refuses_vague_or_unknown_criteria(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    only = (await client.post(f"{BASE}/Patient", json=patient("v-1"), headers=a)).json()
    for query in ("", "?_count=1", "?_sort=family", "?identifer=urn:mrn|v-1"):
        refused = await client.delete(f"{BASE}/Patient{query}", headers=a)
        assert refused.status_code == 400, (query, refused.text)
        assert refused.json()["resourceType"] == "OperationOutcome"
    assert (await client.get(f"{BASE}/Patient/{only['id']}", headers=a)).status_code == 200


async def test_conditional_delete_never_touches_the_other_organisation(fhir: Fhir) -> None:
    client, a, b = fhir.client, fhir.a, fhir.b
    theirs = (await client.post(f"{BASE}/Patient", json=patient("shared-d"), headers=b)).json()
    nothing = await client.delete(f"{BASE}/Patient?identifier=urn:mrn|shared-d", headers=a)
    assert nothing.status_code == 200
    assert "nothing matched" in nothing.json()["issue"][0]["diagnostics"]
    by_id = await client.delete(f"{BASE}/Patient?_id={theirs['id']}", headers=a)
    assert "nothing matched" in by_id.json()["issue"][0]["diagnostics"]
    assert (await client.get(f"{BASE}/Patient/{theirs['id']}", headers=b)).json() == theirs


async def test_conditional_delete_needs_the_delete_permission(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    clinician = fhir.harness.auth("org-a", "clinician", sub="doc")
    pid = (await client.post(f"{BASE}/Patient", json=patient("p-1"), headers=a)).json()["id"]
    denied = await client.delete(f"{BASE}/Patient?identifier=urn:mrn|p-1", headers=clinician)
    assert denied.status_code == 403
    assert (await client.get(f"{BASE}/Patient/{pid}", headers=a)).status_code == 200


async def test_validate_modes_and_profiles(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    pid = (await client.post(f"{BASE}/Patient", json=patient("vm"), headers=a)).json()["id"]

    async def issues(url: str, **kwargs: object) -> list[dict[str, object]]:
        response = await client.post(url, headers=a, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        found: list[dict[str, object]] = response.json()["issue"]
        return found

    def wrapped(*parameters: dict[str, object]) -> dict[str, object]:
        return {"resourceType": "Parameters", "parameter": list(parameters)}

    # update: an id is needed at type level; the instance level has one.
    no_id = await issues(f"{BASE}/Patient/$validate?mode=update", json=patient())
    assert [(i["severity"], i["expression"]) for i in no_id] == [("error", ["Patient.id"])]
    body = wrapped(
        {"name": "resource", "resource": patient()}, {"name": "mode", "valueCode": "update"}
    )
    assert (await issues(f"{BASE}/Patient/{pid}/$validate", json=body))[0][
        "diagnostics"
    ] == "All OK"
    # create: a client id is noted, not an error.
    noted = await issues(f"{BASE}/Patient/$validate?mode=create", json={**patient(), "id": "mine"})
    assert [i["severity"] for i in noted] == ["information"]
    # delete: no body needed, nothing refuses it; an unknown id is still a 404.
    assert (await issues(f"{BASE}/Patient/{pid}/$validate?mode=delete"))[0][
        "diagnostics"
    ] == "All OK"
    gone = await client.post(f"{BASE}/Patient/nope/$validate?mode=delete", headers=a)
    assert gone.status_code == 404
    typed = await client.post(f"{BASE}/Patient/$validate?mode=delete", headers=a)
    assert typed.status_code == 400
    # Profiles are not checked, and the outcome says so rather than pretending.
    profile = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
    body = wrapped(
        {"name": "resource", "resource": patient()}, {"name": "profile", "valueUri": profile}
    )
    said = await issues(f"{BASE}/Patient/$validate", json=body)
    assert [(i["severity"], i["code"]) for i in said] == [("warning", "not-supported")]
    assert profile in str(said[0]["diagnostics"])
    # Bad modes and empty bodies are 400s.
    bad_mode = await client.post(f"{BASE}/Patient/$validate?mode=upsert", json=patient(), headers=a)
    assert bad_mode.status_code == 400 and bad_mode.json()["issue"][0]["expression"] == ["mode"]
    assert (await client.post(f"{BASE}/Patient/$validate", headers=a)).status_code == 400
    # Validating never stores anything.
    assert (await client.get(f"{BASE}/Patient", headers=a)).json()["total"] == 1
