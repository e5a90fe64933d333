"""_include / _revinclude (deduplicated, not counted, mode "include", :iterate), chained
parameters (one and two levels, type modifier) and reverse chaining with _has."""

from __future__ import annotations

from typing import Any

from tests.ehr_api.fhir_store.conftest import BASE, Fhir


async def _create(fhir: Fhir, body: dict[str, Any]) -> str:
    created = await fhir.client.post(f"{BASE}/{body['resourceType']}", json=body, headers=fhir.a)
    assert created.status_code == 201, created.text
    ident: str = created.json()["id"]
    return ident


async def _search(fhir: Fhir, resource_type: str, params: Any) -> dict[str, Any]:
    found = await fhir.client.get(f"{BASE}/{resource_type}", params=params, headers=fhir.a)
    assert found.status_code == 200, found.text
    bundle: dict[str, Any] = found.json()
    return bundle


def _entries(bundle: dict[str, Any], mode: str) -> list[str]:
    return [
        f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
        for entry in bundle["entry"]
        if entry["search"]["mode"] == mode
    ]


async def _world(fhir: Fhir) -> dict[str, str]:
    """Two patients, an organisation, an encounter, three observations, a provenance."""
    ids: dict[str, str] = {}
    ids["org"] = await _create(fhir, {"resourceType": "Organization", "name": "Ward Nine"})
    ids["peter"] = await _create(
        fhir,
        {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:mrn", "value": "P1"}],
            "name": [{"family": "Parker", "given": ["Peter"]}],
        },
    )
    ids["mary"] = await _create(
        fhir, {"resourceType": "Patient", "name": [{"family": "Jane", "given": ["Mary"]}]}
    )
    ids["enc"] = await _create(
        fhir,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/{ids['peter']}"},
            "serviceProvider": {"reference": f"Organization/{ids['org']}"},
        },
    )
    for name, who, code in (
        ("o1", "peter", "1234"),
        ("o2", "peter", "5678"),
        ("o3", "mary", "1234"),
    ):
        ids[name] = await _create(
            fhir,
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": f"Patient/{ids[who]}"},
                **(
                    {"encounter": {"reference": f"Encounter/{ids['enc']}"}}
                    if who == "peter"
                    else {}
                ),
            },
        )
    ids["prov"] = await _create(
        fhir,
        {
            "resourceType": "Provenance",
            "target": [{"reference": f"Patient/{ids['peter']}"}],
            "recorded": "2024-01-01T00:00:00Z",
            "agent": [{"who": {"reference": f"Organization/{ids['org']}"}}],
        },
    )
    return ids


async def test_include_is_deduplicated_and_not_counted(fhir: Fhir) -> None:
    ids = await _world(fhir)
    bundle = await _search(fhir, "Observation", {"_include": "Observation:patient"})
    assert bundle["total"] == 3
    assert sorted(_entries(bundle, "match")) == sorted(
        f"Observation/{ids[name]}" for name in ("o1", "o2", "o3")
    )
    assert sorted(_entries(bundle, "include")) == sorted(
        [f"Patient/{ids['peter']}", f"Patient/{ids['mary']}"]
    )
    only_peter = await _search(
        fhir, "Observation", [("code", "5678"), ("_include", "Observation:subject:Patient")]
    )
    assert _entries(only_peter, "include") == [f"Patient/{ids['peter']}"]
    wrong_target = await _search(
        fhir, "Observation", [("code", "5678"), ("_include", "Observation:subject:Group")]
    )
    assert _entries(wrong_target, "include") == []
    everything = await _search(fhir, "Observation", [("code", "5678"), ("_include", "*")])
    assert sorted(_entries(everything, "include")) == sorted(
        [f"Patient/{ids['peter']}", f"Encounter/{ids['enc']}"]
    )


async def test_revinclude_and_iterate(fhir: Fhir) -> None:
    ids = await _world(fhir)
    bundle = await _search(
        fhir, "Patient", [("_id", ids["peter"]), ("_revinclude", "Provenance:target")]
    )
    assert bundle["total"] == 1
    assert _entries(bundle, "include") == [f"Provenance/{ids['prov']}"]
    observations = await _search(
        fhir, "Patient", [("_id", ids["mary"]), ("_revinclude", "Observation:subject")]
    )
    assert _entries(observations, "include") == [f"Observation/{ids['o3']}"]
    iterated = await _search(
        fhir,
        "Observation",
        [
            ("code", "5678"),
            ("_include", "Observation:encounter"),
            ("_include:iterate", "Encounter:service-provider"),
        ],
    )
    assert sorted(_entries(iterated, "include")) == sorted(
        [f"Encounter/{ids['enc']}", f"Organization/{ids['org']}"]
    )
    for bad in ("Observation:nonsense", "Patient:organization", "Observation", "Observation:code"):
        response = await fhir.client.get(
            f"{BASE}/Observation", params={"_include": bad}, headers=fhir.a
        )
        assert response.status_code == 400, bad
        assert response.json()["issue"][0]["expression"] == ["_include"]


async def test_chained_parameters(fhir: Fhir) -> None:
    ids = await _world(fhir)

    async def matches(resource_type: str, params: Any) -> set[str]:
        return {
            entry.split("/")[1]
            for entry in _entries(await _search(fhir, resource_type, params), "match")
        }

    o1, o2, o3 = ids["o1"], ids["o2"], ids["o3"]
    assert await matches("Observation", {"subject:Patient.name": "peter"}) == {o1, o2}
    assert await matches("Observation", {"subject.name": "mary"}) == {o3}
    assert await matches("Observation", {"patient.identifier": "urn:mrn|P1"}) == {o1, o2}
    assert await matches("Observation", {"patient.family:exact": "Jane"}) == {o3}
    assert await matches("Observation", {"encounter.status": "finished"}) == {o1, o2}
    assert await matches("Observation", [("encounter.status", "finished"), ("code", "1234")]) == {
        o1
    }
    # Two levels: observation -> encounter -> organisation.
    assert await matches("Observation", {"encounter.service-provider.name": "ward"}) == {o1, o2}
    assert await matches("Observation", {"encounter.service-provider.name": "other"}) == set()
    # Reverse chaining: patients with an observation coded 5678.
    assert await matches("Patient", {"_has:Observation:patient:code": "5678"}) == {ids["peter"]}
    assert await matches("Patient", {"_has:Observation:patient:code": "1234"}) == {
        ids["peter"],
        ids["mary"],
    }
    bad = await fhir.client.get(f"{BASE}/Observation", params={"status.name": "x"}, headers=fhir.a)
    assert bad.status_code == 400


async def test_reference_forms(fhir: Fhir) -> None:
    ids = await _world(fhir)
    peter = ids["peter"]

    async def matches(params: Any) -> set[str]:
        bundle = await _search(fhir, "Observation", params)
        return {entry.split("/")[1] for entry in _entries(bundle, "match")}

    mine = {ids["o1"], ids["o2"]}
    assert await matches({"patient": peter}) == mine
    assert await matches({"subject": f"Patient/{peter}"}) == mine
    assert await matches({"subject:Patient": peter}) == mine
    assert await matches({"subject:Group": peter}) == set()
    assert await matches({"subject": f"http://testserver/fhir/R4/Patient/{peter}"}) == mine
    assert await matches({"encounter:missing": "true"}) == {ids["o3"]}
    assert await matches({"patient": f"{peter},{ids['mary']}"}) == {ids["o1"], ids["o2"], ids["o3"]}


async def test_search_is_audited_with_matches_and_includes(fhir: Fhir) -> None:
    ids = await _world(fhir)
    before = await fhir.harness.last_audit_id()
    await _search(fhir, "Observation", [("code", "5678"), ("_include", "Observation:patient")])
    rows = await fhir.harness.audit_rows_after(before)
    assert [(row.resource_type, list(row.resource_ids)) for row in rows] == [
        ("Observation", [ids["o2"], f"Patient/{ids['peter']}"])
    ]
