"""`Patient/{id}/$everything`: the compartment, `_type`, `_since`, paging, RBAC, tenancy."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
from ehr_api.auth.rbac import Authorizer, Policy

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)


def _refs(bundle: dict[str, Any], mode: str | None = None) -> list[str]:
    return [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle["entry"]
        if mode is None or e["search"]["mode"] == mode
    ]


async def _create(client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> str:
    response = await client.post(f"{BASE}/{body['resourceType']}", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return f"{body['resourceType']}/{response.json()['id']}"


def _observation(subject: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": subject},
        **extra,
    }


async def _record(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """A patient with an encounter, two observations, a report and an order, a
    practitioner and organisation they point at, and things that must stay out."""
    pat = await _create(client, headers, patient("P-1"))
    other = await _create(client, headers, patient("P-2"))
    doctor = await _create(
        client, headers, {"resourceType": "Practitioner", "name": [{"family": "House"}]}
    )
    lab = await _create(client, headers, {"resourceType": "Organization", "name": "Lab"})
    encounter = await _create(
        client,
        headers,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": pat},
            "serviceProvider": {"reference": lab},
        },
    )
    hr = await _create(
        client,
        headers,
        _observation(pat, performer=[{"reference": doctor}], encounter={"reference": encounter}),
    )
    bp = await _create(client, headers, _observation(pat))
    report = await _create(
        client,
        headers,
        {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "code": {"text": "panel"},
            "subject": {"reference": pat},
            "result": [{"reference": hr}, {"reference": bp}],
        },
    )
    order = await _create(
        client,
        headers,
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "subject": {"reference": pat},
            "requester": {"reference": doctor},
        },
    )
    not_ours = await _create(client, headers, _observation(other))
    gone = await _create(client, headers, _observation(pat))
    assert (await client.delete(f"{BASE}/{gone}", headers=headers)).status_code == 200
    return {
        "patient": pat,
        "members": {encounter, hr, bp, report, order},
        "included": {doctor, lab},
        "outside": {other, not_ours, gone},
    }


async def test_everything_returns_the_patient_compartment(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    record = await _record(client, a)
    before = await fhir.harness.last_audit_id()

    response = await client.get(f"{BASE}/{record['patient']}/$everything", headers=a)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    matches = _refs(bundle, "match")
    assert matches[0] == record["patient"]  # the patient leads
    assert set(matches[1:]) == record["members"]
    assert len(matches) == len(set(matches)) == bundle["total"] == 6
    assert set(_refs(bundle, "include")) == record["included"]
    assert not set(_refs(bundle)) & record["outside"]
    assert all(
        e["fullUrl"].endswith(f"{BASE}/{r}")
        for e, r in zip(bundle["entry"], _refs(bundle), strict=True)
    )
    assert _link(bundle, "next") is None

    rows = await fhir.harness.audit_rows_after(before)
    audited = [row for row in rows if "$everything" in (row.action or "")]
    assert audited and set(audited[-1].resource_ids) == set(_refs(bundle))

    types = await client.get(
        f"{BASE}/{record['patient']}/$everything",
        params={"_type": "Observation,Practitioner"},
        headers=a,
    )
    assert types.status_code == 200, types.text
    kinds = Counter(ref.split("/")[0] for ref in _refs(types.json()))
    assert kinds == {"Observation": 2, "Practitioner": 1} and types.json()["total"] == 2
    bad_type = await client.get(
        f"{BASE}/{record['patient']}/$everything", params={"_type": "Bundle"}, headers=a
    )
    assert bad_type.status_code == 400
    assert bad_type.json()["issue"][0]["expression"] == ["_type"]

    future = await client.get(
        f"{BASE}/{record['patient']}/$everything",
        params={"_since": "2999-01-01T00:00:00Z"},
        headers=a,
    )
    assert future.json()["total"] == 0 and future.json()["entry"] == []
    past = await client.get(
        f"{BASE}/{record['patient']}/$everything",
        params={"_since": "2000-01-01T00:00:00Z"},
        headers=a,
    )
    assert past.json()["total"] == 6


async def test_everything_pages_with_org_bound_cursors(fhir: Fhir) -> None:
    client, a, b = fhir.client, fhir.a, fhir.b
    record = await _record(client, a)
    other_patient = next(iter(r for r in record["outside"] if r.startswith("Patient/")))
    url: str | None = f"{BASE}/{record['patient']}/$everything?_count=4"
    pages = []
    while url is not None:
        response = await client.get(url, headers=a)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        url = _link(pages[-1], "next")
        assert len(pages) < 10
    assert [len(_refs(p, "match")) for p in pages] == [4, 2]
    assert all(p["total"] == 6 for p in pages)
    matches = [ref for p in pages for ref in _refs(p, "match")]
    assert matches[0] == record["patient"] and len(set(matches)) == 6
    assert set(matches[1:]) == record["members"]
    next_url = _link(pages[0], "next")
    assert next_url is not None and "_count=4" in next_url

    unknown_to_b = await client.get(next_url, headers=b)
    assert unknown_to_b.status_code == 404  # B has no such patient
    pid = record["patient"].split("/")[1]
    twin = {**patient("B-twin"), "id": pid}  # B now has a patient with the same id
    assert (await client.put(f"{BASE}/Patient/{pid}", json=twin, headers=b)).status_code == 201
    stolen = await client.get(next_url, headers=b)
    assert stolen.status_code == 400, stolen.text
    assert "another organisation" in stolen.json()["issue"][0]["diagnostics"]
    assert stolen.json()["issue"][0]["expression"] == ["_cursor"]
    cursor = httpx.URL(next_url).params["_cursor"]
    elsewhere = await client.get(
        f"{BASE}/{other_patient}/$everything", params={"_cursor": cursor}, headers=a
    )
    assert elsewhere.status_code == 400
    assert elsewhere.json()["issue"][0]["expression"] == ["_cursor"]


async def test_everything_never_crosses_organisations(fhir: Fhir) -> None:
    client, a, b = fhir.client, fhir.a, fhir.b
    shared = {**patient("S-1"), "id": "shared-1"}
    for headers in (a, b):
        put = await client.put(f"{BASE}/Patient/shared-1", json=shared, headers=headers)
        assert put.status_code == 201, put.text
    ours = await _create(client, a, _observation("Patient/shared-1"))
    theirs = await _create(client, b, _observation("Patient/shared-1"))
    only_a = await _create(client, a, patient("A-only"))
    leak = await _create(client, b, _observation(only_a))  # B points at A's patient id

    mine = (await client.get(f"{BASE}/Patient/shared-1/$everything", headers=a)).json()
    assert set(_refs(mine)) == {"Patient/shared-1", ours}
    assert mine["entry"][0]["resource"]["identifier"][0]["value"] == "S-1"
    their = (await client.get(f"{BASE}/Patient/shared-1/$everything", headers=b)).json()
    assert set(_refs(their)) == {"Patient/shared-1", theirs}

    a_view = (await client.get(f"{BASE}/{only_a}/$everything", headers=a)).json()
    assert _refs(a_view) == [only_a] and leak not in _refs(a_view)
    b_view = await client.get(f"{BASE}/{only_a}/$everything", headers=b)
    assert b_view.status_code == 404
    assert b_view.json()["issue"][0]["code"] == "not-found"

    assert (await client.delete(f"{BASE}/{only_a}", headers=a)).status_code == 200
    deleted = await client.get(f"{BASE}/{only_a}/$everything", headers=a)
    assert deleted.status_code == 410
    missing = await client.get(f"{BASE}/Patient/nobody/$everything", headers=a)
    assert missing.status_code == 404


async def test_everything_leaves_out_types_the_caller_may_not_read(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    record = await _record(client, a)
    url = f"{BASE}/{record['patient']}/$everything"
    auditor = fhir.harness.auth("org-a", "auditor")  # reads AuditEvent only
    refused = await client.get(url, headers=auditor)
    assert refused.status_code == 403
    assert refused.json()["issue"][0]["code"] == "forbidden"

    # A real policy with one more role: patients and encounters, nothing else clinical.
    default = Policy.default()
    rules = [
        *default.rules,
        *(("chart_reader", f"fhir:{t}", "read") for t in ("Patient", "Encounter")),
    ]
    fhir.harness.app.state.access.authorizer = Authorizer(
        Policy(default.model_text, rules, default.object_groups)
    )
    reader = fhir.harness.auth("org-a", "chart_reader")
    narrow = await client.get(url, headers=reader)
    assert narrow.status_code == 200, narrow.text
    assert Counter(r.split("/")[0] for r in _refs(narrow.json())) == {"Patient": 1, "Encounter": 1}
    assert narrow.json()["total"] == 2
