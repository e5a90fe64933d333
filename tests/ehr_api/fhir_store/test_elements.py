"""`_summary` and `_elements`: which elements survive, the SUBSETTED tag, bad values.

`shape` is exercised on resources the store really holds (created over HTTP, read back)
and through the one route of this module's owner that applies it, `$everything`.
"""

from __future__ import annotations

from typing import Any

import pytest
from ehr_api.errors import BadRequestError
from ehr_api.fhir_store.elements import SUBSETTED, count_only, parse_elements, shape

from tests.ehr_api.fhir_store.conftest import BASE, Fhir

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Jane</div>'},
    "identifier": [{"system": "urn:mrn", "value": "E-1"}],
    "name": [{"family": "Doe", "given": ["Jane"]}],
    "gender": "female",
    "_gender": {"extension": [{"url": "urn:x", "valueString": "stated"}]},
    "birthDate": "1970-01-01",
    "maritalStatus": {"text": "married"},
    "contact": [{"name": {"family": "Doe"}, "relationship": [{"text": "spouse"}]}],
    "communication": [{"language": {"text": "English"}}],
}
OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"text": "blood pressure"},
    "note": [{"text": "taken sitting"}],
    "interpretation": [{"text": "normal"}],
    "component": [
        {
            "code": {"text": "systolic"},
            "valueQuantity": {"value": 120, "unit": "mm[Hg]"},
            "referenceRange": [{"text": "< 140"}],
        }
    ],
}


def _subsetted(content: dict[str, Any]) -> bool:
    return SUBSETTED in (content.get("meta") or {}).get("tag", [])


async def _stored(fhir: Fhir, body: dict[str, Any]) -> dict[str, Any]:
    """The resource as the store keeps it (id and meta included)."""
    created = await fhir.client.post(f"{BASE}/{body['resourceType']}", json=body, headers=fhir.a)
    assert created.status_code == 201, created.text
    read = await fhir.client.get(
        f"{BASE}/{body['resourceType']}/{created.json()['id']}", headers=fhir.a
    )
    content: dict[str, Any] = read.json()
    return content


async def test_summary_modes_on_stored_resources(fhir: Fhir) -> None:
    stored = await _stored(fhir, PATIENT)

    summary = shape("Patient", stored, summary="true", elements=None)
    assert set(summary) == {
        "resourceType", "id", "meta", "identifier", "name", "gender", "_gender", "birthDate"
    }  # fmt: skip
    assert _subsetted(summary) and summary["meta"]["versionId"] == stored["meta"]["versionId"]
    assert not _subsetted(stored)  # the stored content is not changed in place

    text = shape("Patient", stored, summary="text", elements=None)
    assert set(text) == {"resourceType", "id", "meta", "text"} and _subsetted(text)

    data = shape("Patient", stored, summary="data", elements=None)
    assert set(data) == set(stored) - {"text"} and _subsetted(data)
    assert data["contact"] == stored["contact"]

    assert shape("Patient", stored, summary="false", elements=None) == stored
    assert shape("Patient", stored, summary=None, elements=None) == stored
    assert shape("Patient", stored, summary="count", elements=None) == stored
    assert count_only("count") and not count_only("true") and not count_only(None)


async def test_summary_keeps_mandatory_and_summary_children_of_backbones(fhir: Fhir) -> None:
    stored = await _stored(fhir, OBSERVATION)
    summary = shape("Observation", stored, summary="true", elements=None)
    assert summary["status"] == "final" and summary["code"] == {"text": "blood pressure"}
    assert "note" not in summary and "interpretation" not in summary
    assert summary["component"] == [
        {"code": {"text": "systolic"}, "valueQuantity": {"value": 120, "unit": "mm[Hg]"}}
    ]  # referenceRange is not a summary element of a component
    text = shape("Observation", stored, summary="text", elements=None)
    assert set(text) == {"resourceType", "id", "meta", "status", "code"}  # mandatory stay

    # Nothing to remove: no tag (the resource is complete).
    bare = {
        k: v for k, v in stored.items() if k in ("resourceType", "id", "meta", "status", "code")
    }
    assert shape("Observation", bare, summary="true", elements=None) == bare


async def test_elements_selects_top_level_elements(fhir: Fhir) -> None:
    stored = await _stored(fhir, OBSERVATION)
    picked = shape("Observation", stored, summary=None, elements=["note", "value"])
    assert set(picked) == {"resourceType", "id", "meta", "status", "code", "note"}
    assert _subsetted(picked)
    chosen = shape("Observation", stored, summary=None, elements=["component"])
    assert chosen["component"] == stored["component"]  # a chosen element is kept whole

    patient = await _stored(fhir, PATIENT)
    gender = shape("Patient", patient, summary="false", elements=["gender"])
    assert set(gender) == {"resourceType", "id", "meta", "gender", "_gender"}
    assert parse_elements(["gender,Patient.name", "gender"]) == ["gender", "name"]
    assert parse_elements([]) is None

    with pytest.raises(BadRequestError) as raised:
        shape("Patient", patient, summary="everything", elements=None)
    assert raised.value.field == "_summary"


async def test_everything_honours_summary_and_elements_over_http(fhir: Fhir) -> None:
    stored = await _stored(fhir, PATIENT)
    url = f"{BASE}/Patient/{stored['id']}/$everything"

    picked = await fhir.client.get(url, params={"_elements": "gender"}, headers=fhir.a)
    assert picked.status_code == 200, picked.text
    resource = picked.json()["entry"][0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "gender", "_gender"}
    assert _subsetted(resource)
    assert "_elements=gender" in picked.json()["link"][0]["url"]

    counted = (await fhir.client.get(url, params={"_summary": "count"}, headers=fhir.a)).json()
    assert counted["total"] == 1 and counted["entry"] == []

    bad = await fhir.client.get(url, params={"_summary": "yes"}, headers=fhir.a)
    assert bad.status_code == 400
    issue = bad.json()["issue"][0]
    assert issue["severity"] == "error" and issue["expression"] == ["_summary"]
    assert "_summary" in issue["diagnostics"]

    unchanged = await fhir.client.get(f"{BASE}/Patient/{stored['id']}", headers=fhir.a)
    assert not _subsetted(unchanged.json())  # shaping never reaches the stored version
