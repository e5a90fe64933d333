"""FHIRPath Patch: the operations on JSON, then over HTTP and in a transaction."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ehr_api.fhir_store.fhirpath_patch import apply_fhirpath_patch
from ehr_api.fhir_store.json_patch import PatchFailedError, PatchSyntaxError

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [
        {"system": "urn:mrn", "value": "1"},
        {"system": "urn:ssn", "value": "999"},
    ],
    "name": [{"family": "Doe", "given": ["Jane", "Q"]}],
    "gender": "female",
}


def op(kind: str, path: str, **parts: Any) -> dict[str, Any]:
    items = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for name, value in parts.items():
        if name == "value" and isinstance(value, dict):
            items.append({"name": "value", "part": [
                {"name": key, "valueString": item} for key, item in value.items()
            ]})  # fmt: skip
        elif name == "value":
            items.append({"name": "value", "valueString": value})
        elif isinstance(value, int):
            items.append({"name": name, "valueInteger": value})
        else:
            items.append({"name": name, "valueString": value})
    return {"name": "operation", "part": items}


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(operations)}


def test_each_operation_type() -> None:
    before = copy.deepcopy(PATIENT)
    result = apply_fhirpath_patch(
        PATIENT,
        patch(
            op("replace", "Patient.gender", value="other"),
            op("add", "Patient", name="birthDate", value="1980-04-12"),
            op("add", "Patient", name="identifier", value={"system": "urn:x", "value": "7"}),
            op("delete", "Patient.identifier.where(system = 'urn:ssn')"),
            op("insert", "Patient.name[0].given", index=0, value="Dr"),
            op("move", "Patient.name[0].given", source=2, destination=1),
            op("replace", "Patient.identifier.where(system='urn:mrn').value", value="2"),
        ),
    )
    assert before == PATIENT  # never mutated
    assert result["gender"] == "other" and result["birthDate"] == "1980-04-12"
    assert result["identifier"] == [
        {"system": "urn:mrn", "value": "2"},
        {"system": "urn:x", "value": "7"},
    ]
    assert result["name"][0]["given"] == ["Dr", "Q", "Jane"]


def test_delete_of_nothing_is_a_no_op_and_empty_lists_go() -> None:
    unchanged = apply_fhirpath_patch(PATIENT, patch(op("delete", "Patient.birthDate")))
    assert unchanged == PATIENT
    emptied = apply_fhirpath_patch(
        PATIENT,
        patch(op("delete", "Patient.name[0].given[1]"), op("delete", "Patient.name[0].given[0]")),
    )
    assert emptied["name"] == [{"family": "Doe"}]
    first_last = apply_fhirpath_patch(
        PATIENT, patch(op("replace", "Patient.identifier.last().value", value="1000"))
    )
    assert first_last["identifier"][1]["value"] == "1000"


@pytest.mark.parametrize(
    ("operation", "error"),
    [
        (op("replace", "Patient.identifier.value", value="x"), PatchFailedError),  # two targets
        (op("delete", "Patient.identifier"), PatchFailedError),
        (op("replace", "Patient.birthDate", value="x"), PatchFailedError),  # no target
        (op("add", "Patient", name="gender", value="male"), PatchFailedError),  # has a value
        (op("move", "Patient.name[0].given", source=5, destination=0), PatchFailedError),
        (op("replace", "Patient.name.exists()", value="x"), PatchSyntaxError),
        (op("replace", "Observation.status", value="x"), PatchSyntaxError),
        (op("replace", "Patient", value="x"), PatchSyntaxError),
        (op("upsert", "Patient.gender", value="x"), PatchSyntaxError),
        (op("add", "Patient", value="x"), PatchSyntaxError),  # no name
        ({"name": "operation"}, PatchSyntaxError),
    ],
)
def test_what_cannot_apply_says_so(operation: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        apply_fhirpath_patch(PATIENT, patch(operation))


async def test_fhirpath_patch_over_http_and_in_a_transaction(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    pid = (await client.post(f"{BASE}/Patient", json=patient("fp"), headers=a)).json()["id"]
    url = f"{BASE}/Patient/{pid}"
    fhir_json = {"Content-Type": "application/fhir+json"}
    done = await client.patch(
        url, json=patch(op("replace", "Patient.gender", value="other")), headers={**a, **fhir_json}
    )
    assert done.status_code == 200, done.text
    assert done.json()["gender"] == "other" and done.headers["ETag"] == 'W/"2"'
    # A patch that leaves an invalid resource, or that does not apply: 422, nothing stored.
    invalid = await client.patch(
        url, json=patch(op("replace", "Patient.gender", value="mal")), headers={**a, **fhir_json}
    )
    assert invalid.status_code == 422
    missing = await client.patch(
        url, json=patch(op("replace", "Patient.birthDate", value="2000-01-01")),
        headers={**a, **fhir_json},
    )  # fmt: skip
    assert missing.status_code == 422
    unsupported = await client.patch(
        url,
        json=patch(op("replace", "Patient.name.exists()", value="x")),
        headers={**a, **fhir_json},
    )
    assert unsupported.status_code == 400 and "supported FHIRPath" in unsupported.text
    # The content type must say which kind of patch the body is.
    crossed = await client.patch(
        url, json=patch(op("replace", "Patient.gender", value="male")),
        headers={**a, "Content-Type": "application/json-patch+json"},
    )  # fmt: skip
    assert crossed.status_code == 400
    assert (await client.get(url, headers=a)).json()["meta"]["versionId"] == "2"

    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "resource": patch(op("add", "Patient", name="birthDate", value="1990-01-01")),
            "request": {"method": "PATCH", "url": f"Patient/{pid}"},
        }],
    }  # fmt: skip
    answer = await client.post(BASE, json=bundle, headers=a)
    assert answer.status_code == 200, answer.text
    assert answer.json()["entry"][0]["resource"]["birthDate"] == "1990-01-01"
    # Another organisation's resource is not there to patch.
    theirs = await client.patch(
        url,
        json=patch(op("replace", "Patient.gender", value="male")),
        headers={**fhir.b, **fhir_json},
    )
    assert theirs.status_code == 404


async def test_conditional_patch(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    pid = (await client.post(f"{BASE}/Patient", json=patient("cp-1"), headers=a)).json()["id"]
    json_patch = {"Content-Type": "application/json-patch+json"}
    change = [{"op": "replace", "path": "/gender", "value": "other"}]
    done = await client.patch(
        f"{BASE}/Patient?identifier=urn:mrn|cp-1", json=change, headers={**a, **json_patch}
    )
    assert done.status_code == 200, done.text
    assert done.json()["id"] == pid and done.json()["gender"] == "other"
    none = await client.patch(
        f"{BASE}/Patient?identifier=urn:mrn|nobody", json=change, headers={**a, **json_patch}
    )
    assert none.status_code == 404
    for _ in range(2):
        await client.post(f"{BASE}/Patient", json=patient("cp-2"), headers=a)
    several = await client.patch(
        f"{BASE}/Patient?identifier=urn:mrn|cp-2", json=change, headers={**a, **json_patch}
    )
    assert several.status_code == 412
    vague = await client.patch(f"{BASE}/Patient?_count=1", json=change, headers={**a, **json_patch})
    assert vague.status_code == 400
    # Another organisation's match is no match.
    await client.post(f"{BASE}/Patient", json=patient("cp-b"), headers=fhir.b)
    foreign = await client.patch(
        f"{BASE}/Patient?identifier=urn:mrn|cp-b", json=change, headers={**a, **json_patch}
    )
    assert foreign.status_code == 404
    # In a transaction, as a FHIRPath Patch.
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "resource": patch(op("replace", "Patient.gender", value="male")),
            "request": {"method": "PATCH", "url": "Patient?identifier=urn:mrn|cp-1"},
        }],
    }  # fmt: skip
    answer = await client.post(BASE, json=bundle, headers=a)
    assert answer.status_code == 200, answer.text
    assert answer.json()["entry"][0]["resource"]["gender"] == "male"
    assert (await client.get(f"{BASE}/Patient/{pid}", headers=a)).json()["meta"]["versionId"] == "3"
