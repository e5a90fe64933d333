"""The search parameter table: what the issue asks for, well-formed, and what /metadata says."""

from __future__ import annotations

import re

import pytest
from ehr_api.fhir_store import search_params
from ehr_api.fhir_store.indexing import compile_expression
from ehr_api.fhir_store.search_params import (
    COMMON,
    TYPES,
    SearchParam,
    definition_url,
    lookup,
    params_for,
)

from tests.ehr_api.fhir_store.conftest import BASE, Fhir

#: The issue's minimum: these parameters on these types (beyond _id and _lastUpdated).
REQUIRED: dict[str, set[str]] = {
    "Patient": {"identifier", "name", "family", "given", "birthdate", "gender", "address",
                "telecom", "phone", "email", "general-practitioner", "organization", "active"},
    "Practitioner": {"identifier", "name", "family", "given", "active"},
    "PractitionerRole": {"identifier", "practitioner", "organization", "role", "specialty",
                         "location"},
    "Organization": {"identifier", "name", "type", "active", "partof"},
    "Location": {"identifier", "name", "status", "type", "organization", "partof", "address"},
    "Encounter": {"identifier", "subject", "patient", "status", "class", "type", "date",
                  "participant", "practitioner", "location", "service-provider"},
    "ServiceRequest": {"identifier", "code", "subject", "patient", "encounter", "status",
                       "intent", "category", "authored", "requester", "performer", "based-on",
                       "occurrence"},
    "DiagnosticReport": {"code", "subject", "patient", "encounter", "date", "issued", "status",
                         "category", "based-on", "performer", "result", "identifier"},
    "Observation": {"code", "subject", "patient", "encounter", "date", "status", "category",
                    "value-quantity", "based-on", "performer", "identifier", "value-concept"},
    "ImagingStudy": {"identifier", "patient", "subject", "started", "status", "modality",
                     "basedon", "encounter", "referrer"},
    "Appointment": {"identifier", "date", "status", "actor", "patient", "practitioner",
                    "location", "service-type", "based-on"},
    "DocumentReference": {"identifier", "patient", "subject", "status", "type", "category",
                          "date", "author", "encounter"},
    "Provenance": {"target", "agent", "recorded", "patient", "entity"},
    "AuditEvent": {"date", "agent", "entity", "patient", "type", "outcome"},
    "Binary": set(),
}  # fmt: skip
_RESOLVE = re.compile(r"where\(resolve\(\) is ([A-Za-z]+)\)")


@pytest.mark.parametrize("resource_type", sorted(REQUIRED))
def test_the_issues_parameters_are_in_the_table(resource_type: str) -> None:
    names = set(params_for(resource_type))
    assert REQUIRED[resource_type] | {"_id", "_lastUpdated"} <= names
    if resource_type == "Binary":
        assert names == set(COMMON)


def test_every_row_is_well_formed() -> None:
    seen: set[tuple[str, str]] = set()
    for type_, name, kind, expression, targets in search_params._TABLE:
        assert (type_, name) not in seen, (type_, name)
        seen.add((type_, name))
        assert kind in TYPES, (type_, name)
        assert re.fullmatch(r"[a-z][a-z-]*", name), name
        assert all(part.strip().lstrip("(").startswith(type_) for part in expression.split("|"))
        assert bool(targets) <= (kind == "reference"), (type_, name)
        # `where(resolve() is T)` is evaluated through the targets: T must be all of them.
        for wanted in _RESOLVE.findall(expression):
            assert targets == (wanted,), (type_, name)


@pytest.mark.parametrize("resource_type", sorted(REQUIRED))
def test_every_expression_compiles(resource_type: str) -> None:
    for param in params_for(resource_type).values():
        if param.name not in COMMON:
            assert callable(compile_expression(resource_type, param.expression)), param


def test_identifier_is_added_to_types_that_have_one() -> None:
    assert lookup("Condition", "identifier") == SearchParam(
        "identifier", "token", "Condition.identifier"
    )
    # An explicit row wins over the generic one.
    assert lookup("DocumentReference", "identifier") == SearchParam(
        "identifier",
        "token",
        "DocumentReference.masterIdentifier | DocumentReference.identifier",
    )
    assert lookup("Binary", "identifier") is None
    assert lookup("Patient", "no-such-thing") is None


def test_definition_urls_name_the_r4_search_parameter() -> None:
    base = "http://hl7.org/fhir/SearchParameter/"
    assert definition_url("Patient", "_id") == base + "Resource-id"
    assert definition_url("Patient", "_lastUpdated") == base + "Resource-lastUpdated"
    assert definition_url("Patient", "name") == base + "Patient-name"
    assert definition_url("Patient", "birthdate") == base + "individual-birthdate"
    assert definition_url("Observation", "patient") == base + "clinical-patient"
    assert definition_url("Observation", "value-quantity") == base + "Observation-value-quantity"
    assert definition_url("Appointment", "patient") == base + "Appointment-patient"
    assert definition_url("ServiceRequest", "identifier") == base + "clinical-identifier"


async def test_metadata_lists_the_table(fhir: Fhir) -> None:
    response = await fhir.client.get(f"{BASE}/metadata", headers=fhir.a)
    assert response.status_code == 200
    resources = {entry["type"]: entry for entry in response.json()["rest"][0]["resource"]}
    for type_ in ("Patient", "Observation", "ServiceRequest", "Binary"):
        listed = {param["name"]: param for param in resources[type_]["searchParam"]}
        assert set(listed) == set(params_for(type_)), type_
        for name, param in params_for(type_).items():
            assert listed[name]["type"] == param.type
            assert listed[name]["definition"] == definition_url(type_, name)
    accession = {p["name"]: p for p in resources["ServiceRequest"]["searchParam"]}["identifier"]
    assert accession == {
        "name": "identifier",
        "definition": "http://hl7.org/fhir/SearchParameter/clinical-identifier",
        "type": "token",
    }
