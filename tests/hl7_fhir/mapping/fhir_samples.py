"""FHIR resources and helpers the FHIR -> v2 tests share."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

from hl7_fhir import mapping, v2

from tests.corpus import CORPUS

Json = dict[str, Any]
FHIR_EXAMPLES = CORPUS / "fhir-server-examples/src/Microsoft.Health.Fhir.Tests.Common/TestFiles/R4"
RADIOLOGY = CORPUS / "radiology"
WHEN = datetime(2025, 8, 20, 10, 30)
OPTIONS: Json = {"timestamp": WHEN, "control_id": "T1", "sending_application": "EHR"}
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def build(data: Any, message_type: str, profile: Any = None, **options: Any) -> v2.Message:
    """Build, then check the ER7 parses back identically and validates without errors."""
    msg = mapping.from_fhir(data, message_type, profile, **{**OPTIONS, **options})
    text = msg.to_er7()
    again = v2.parse(msg.encode())
    assert again.to_er7() == text
    report = v2.validate(again)
    assert report.errors == [], report.to_text()
    return again


def typed(code: str, system: str, value: str) -> Json:
    return {
        "type": {"coding": [{"system": V2_0203, "code": code}]},
        "system": system,
        "value": value,
    }


def patient(**extra: Any) -> Json:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [
            typed("MR", "urn:hl7v2:authority:AXIS", "P001"),
            {"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "4003123456"},
            {"system": "https://hospital.example/ids", "value": "H-9"},
            {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "123-45-6789"},
        ],
        "name": [
            {"use": "nickname", "given": ["Jack"]},
            {
                "use": "official",
                "family": "O'Brien|Smith",
                "given": ["John", "Andrew", "Paul"],
                "prefix": ["Dr"],
                "suffix": ["Jr", "MD"],
            },
        ],
        "gender": "male",
        "birthDate": "1990-01",
        "address": [
            {
                "use": "home",
                "line": ["45 New Rd", "Unit 2", "Rear"],
                "city": "Richmond",
                "state": "VIC",
                "postalCode": "3121",
                "country": "AU",
            },
            {"type": "postal", "line": ["PO Box 9"], "city": "Melbourne"},
        ],
        "telecom": [
            {"system": "phone", "value": "(03) 9000 1234", "use": "home"},
            {"system": "phone", "value": "0412 345 678", "use": "mobile"},
            {"system": "phone", "value": "(03) 9555 0000", "use": "work"},
            {"system": "email", "value": "john@example.org"},
        ],
        "maritalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}
            ]
        },
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}]}}],
        **extra,
    }


def fhir_example(name: str) -> Json:
    data: Json = json.loads((FHIR_EXAMPLES / name).read_text(encoding="utf-8"))
    return data


def bundle_resources(bundle: Json, kind: str) -> list[Json]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def practitioner(ident: str = "1234", family: str = "Jones") -> Json:
    return {
        "resourceType": "Practitioner",
        "id": f"dr-{ident}",
        "identifier": [{"system": "urn:hl7v2:authority:AUSHICPR", "value": ident}],
        "name": [{"family": family, "given": ["Peter"], "prefix": ["Dr"], "suffix": ["MBBS"]}],
    }


def service_request(**extra: Any) -> Json:
    return {
        "resourceType": "ServiceRequest",
        "id": "sr1",
        "status": "active",
        "intent": "order",
        "identifier": [
            typed("PLAC", "urn:hl7v2:authority:EHR", "ORD001"),
            typed("FILL", "urn:hl7v2:authority:RIS", "F-77"),
            typed("ACSN", "urn:hl7v2:authority:RIS", "ACC001"),
        ],
        "code": {
            "coding": [
                {
                    "system": "http://www.ama-assn.org/go/cpt",
                    "code": "71046",
                    "display": "XR CHEST 2 VIEWS",
                }
            ]
        },
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RX"}]}
        ],
        "priority": "stat",
        "subject": {"reference": "Patient/p1"},
        "occurrenceDateTime": "2025-08-18T09:00:00+10:00",
        "authoredOn": "2025-08-17T14:00:00+10:00",
        "requester": {"reference": "Practitioner/dr-1234"},
        "reasonCode": [
            {
                "coding": [
                    {"system": "http://hl7.org/fhir/sid/icd-10", "code": "R05", "display": "Cough"}
                ]
            }
        ],
        "note": [{"text": "Patient is claustrophobic\nNeeds a chaperone"}],
        **extra,
    }


def with_resources(bundle: Json, *extra: Json) -> Json:
    copied = copy.deepcopy(bundle)
    copied["entry"] += [{"resource": r} for r in extra]
    return copied
