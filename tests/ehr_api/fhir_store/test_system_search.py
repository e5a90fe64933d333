"""Search across types: GET /fhir/R4?_type=...; criteria per type, paging, tenancy, permissions."""

from __future__ import annotations

from typing import Any

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient


def practitioner(value: str) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "identifier": [{"system": "urn:npi", "value": value}],
        "name": [{"family": "Smith"}],
    }


async def _post(fhir: Fhir, body: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    created = await fhir.client.post(
        f"{BASE}/{body['resourceType']}", json=body, headers=headers or fhir.a
    )
    assert created.status_code == 201, created.text
    ident: str = created.json()["id"]
    return ident


def _keys(bundle: dict[str, Any]) -> list[str]:
    return [entry["fullUrl"].split("/R4/")[1] for entry in bundle["entry"]]


async def test_one_search_across_two_types(fhir: Fhir) -> None:
    pid = await _post(fhir, patient("42"))
    npi = await _post(fhir, practitioner("42"))
    await _post(fhir, practitioner("43"))
    await _post(fhir, {"resourceType": "Organization", "identifier": [{"value": "42"}]})
    found = await fhir.client.get(
        BASE, params={"_type": "Patient,Practitioner", "identifier": "42"}, headers=fhir.a
    )
    assert found.status_code == 200, found.text
    bundle = found.json()
    assert bundle["type"] == "searchset" and bundle["total"] == 2
    assert _keys(bundle) == [f"Patient/{pid}", f"Practitioner/{npi}"]  # oldest change first
    # Each type's criteria apply to its own rows: a system on one misses the other.
    only = await fhir.client.get(
        BASE, params={"_type": "Patient,Practitioner", "identifier": "urn:npi|42"}, headers=fhir.a
    )
    assert _keys(only.json()) == [f"Practitioner/{npi}"]


async def test_pages_with_next_links_and_stays_in_the_organisation(fhir: Fhir) -> None:
    mine = [await _post(fhir, practitioner(str(n))) for n in range(3)]
    mine += [await _post(fhir, patient(str(n))) for n in range(2)]
    await _post(fhir, practitioner("theirs"), fhir.b)
    params = {"_type": "Practitioner,Patient", "_count": "2"}
    bundle = (await fhir.client.get(BASE, params=params, headers=fhir.a)).json()
    seen = [key.split("/")[1] for key in _keys(bundle)]
    while url := next((ln["url"] for ln in bundle["link"] if ln["relation"] == "next"), None):
        page = await fhir.client.get(url, headers=fhir.a)
        assert page.status_code == 200, page.text
        bundle = page.json()
        assert bundle["total"] == 5
        seen += [key.split("/")[1] for key in _keys(bundle)]
        stolen = await fhir.client.get(url, headers=fhir.b)
        assert stolen.status_code == 400  # the cursor is bound to the organisation
    assert seen == mine


async def test_refusals(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    cases = [
        ({}, 400, "_type"),
        ({"_type": "Patient,Practitioner", "birthdate": "1980"}, 400, "birthdate"),  # Patient's
        ({"_type": "Patient", "_sort": "family"}, 400, "_sort"),
        ({"_type": "Patient,NotAType"}, 404, None),
    ]
    for params, status, field in cases:
        answer = await client.get(BASE, params=params, headers=a)
        assert answer.status_code == status, (params, answer.text)
        if field:
            assert answer.json()["issue"][0]["expression"] == [field]
    auditor = fhir.harness.auth("org-a", "auditor")
    denied = await client.get(BASE, params={"_type": "Patient"}, headers=auditor)
    assert denied.status_code == 403
    assert (await client.get(BASE, params={"_type": "Patient"})).status_code == 401
