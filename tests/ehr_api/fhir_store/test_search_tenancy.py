"""Search never crosses organisations: _id, _include, _revinclude, chains, _has, cursors."""

from __future__ import annotations

from typing import Any

from tests.ehr_api.fhir_store.conftest import BASE, Fhir


def _refs(bundle: dict[str, Any]) -> list[str]:
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]]


async def _get(fhir: Fhir, resource_type: str, params: Any, headers: dict[str, str]) -> Any:
    response = await fhir.client.get(f"{BASE}/{resource_type}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_id_search_finds_only_the_callers_resource(fhir: Fhir) -> None:
    body = {"resourceType": "Patient", "id": "same-id", "name": [{"family": "Theirs"}]}
    assert (await fhir.client.put(f"{BASE}/Patient/same-id", json=body, headers=fhir.b)).is_success
    only_b = await _get(fhir, "Patient", {"_id": "same-id"}, fhir.a)
    assert only_b["total"] == 0 and only_b["entry"] == []
    ours = {**body, "name": [{"family": "Ours"}]}
    assert (await fhir.client.put(f"{BASE}/Patient/same-id", json=ours, headers=fhir.a)).is_success
    found = await _get(fhir, "Patient", {"_id": "same-id"}, fhir.a)
    assert [e["resource"]["name"][0]["family"] for e in found["entry"]] == ["Ours"]
    assert (await _get(fhir, "Patient", {"family": "theirs"}, fhir.a))["total"] == 0


async def test_include_and_chain_never_reach_another_organisation(fhir: Fhir) -> None:
    theirs = {"resourceType": "Patient", "id": "x-b", "name": [{"family": "Foreign"}]}
    assert (await fhir.client.put(f"{BASE}/Patient/x-b", json=theirs, headers=fhir.b)).is_success
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "Patient/x-b"},  # an id that lives only in B
    }
    created = await fhir.client.post(f"{BASE}/Observation", json=observation, headers=fhir.a)
    oid = created.json()["id"]
    for include in ("Observation:patient", "Observation:subject", "*"):
        bundle = await _get(fhir, "Observation", {"_include": include}, fhir.a)
        assert _refs(bundle) == [f"Observation/{oid}"], include
    iterate = [("_include", "Observation:patient"), ("_include:iterate", "Patient:link")]
    assert _refs(await _get(fhir, "Observation", iterate, fhir.a)) == [f"Observation/{oid}"]
    for chain in ({"patient.name": "foreign"}, {"subject:Patient.family": "foreign"}):
        assert (await _get(fhir, "Observation", chain, fhir.a))["total"] == 0, chain
    # B sees its patient, and nothing of A's through the reverse direction.
    reverse = [("_id", "x-b"), ("_revinclude", "Observation:subject")]
    assert _refs(await _get(fhir, "Patient", reverse, fhir.b)) == ["Patient/x-b"]
    has = await _get(fhir, "Patient", {"_has:Observation:patient:code": "x"}, fhir.b)
    assert has["total"] == 0


async def test_revinclude_and_has_ignore_another_organisations_pointers(fhir: Fhir) -> None:
    ours = {"resourceType": "Patient", "id": "p-a", "name": [{"family": "Ours"}]}
    assert (await fhir.client.put(f"{BASE}/Patient/p-a", json=ours, headers=fhir.a)).is_success
    provenance = {
        "resourceType": "Provenance",
        "target": [{"reference": "Patient/p-a"}],  # B points at A's id
        "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"who": {"display": "someone in B"}}],
    }
    made = await fhir.client.post(f"{BASE}/Provenance", json=provenance, headers=fhir.b)
    assert made.status_code == 201, made.text
    bundle = await _get(fhir, "Patient", [("_id", "p-a"), ("_revinclude", "Provenance:target")],
                        fhir.a)  # fmt: skip
    assert _refs(bundle) == ["Patient/p-a"]
    has = await _get(fhir, "Patient", {"_has:Provenance:target:recorded": "2024"}, fhir.a)
    assert has["total"] == 0
    assert (await _get(fhir, "Patient", {"_has:Provenance:target:recorded": "2024"}, fhir.b))[
        "total"
    ] == 0  # B's provenance points at a patient B does not have


async def test_paging_cursor_of_another_organisation_is_refused(fhir: Fhir) -> None:
    for family in ("One", "Two"):
        body = {"resourceType": "Patient", "name": [{"family": family}]}
        assert (await fhir.client.post(f"{BASE}/Patient", json=body, headers=fhir.a)).is_success
    first = await _get(fhir, "Patient", {"_count": "1"}, fhir.a)
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    stolen = await fhir.client.get(next_url, headers=fhir.b)
    assert stolen.status_code == 400
    assert stolen.json()["issue"][0]["diagnostics"] == (
        "the paging cursor belongs to another organisation"
    )
    assert (await fhir.client.get(next_url, headers=fhir.a)).status_code == 200
