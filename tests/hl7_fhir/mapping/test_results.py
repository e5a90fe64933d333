"""ORU^R01 -> DiagnosticReport, Observations and the order they answer, end to end."""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

import pytest
from hl7_fhir import mapping, v2
from hl7_fhir.errors import MappingError, ParseError
from hl7_fhir.fhir import validate_resource
from hl7_fhir.mapping._quantity import ucum_code

from tests.corpus import CORPUS, hl7_files, relative

from .memory_store import MemoryStore

RADIOLOGY = CORPUS / "radiology"
Json = dict[str, Any]
HEADER = "MSH|^~\\&|LIS|LAB|EHR|HOSP|20250301120000||ORU^R01^ORU_R01|C1|P|2.5.1\r"
PATIENT = "PID|1||MRN1^^^HOSP^MR||Doe^Jane||19800101|F\r"


def radiology(name: str) -> v2.Message:
    return v2.parse((RADIOLOGY / name).read_bytes())


def resources(bundle: Json, resource_type: str) -> list[Json]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    ]


def entries(bundle: Json, resource_type: str) -> list[Json]:
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def oru(*segments: str) -> v2.Message:
    return v2.parse(HEADER + PATIENT + "".join(s + "\r" for s in segments))


# -- the radiology report ----------------------------------------------------------------


def test_rtf_report_facts() -> None:
    message = radiology("oru_r01_v25_rtf_report.hl7")
    bundle = mapping.to_fhir(message)
    (entry,) = entries(bundle, "DiagnosticReport")
    report = entry["resource"]
    assert entry["request"] == {
        "method": "PUT",
        "url": "DiagnosticReport?identifier=urn:hl7v2:authority:AXIS|ACC001",
    }
    assert report["status"] == "final"
    assert report["code"]["coding"][0]["code"] == "71046"
    rtf = report["presentedForm"][0]
    assert rtf["contentType"] == "application/rtf"
    assert rtf["data"] == message["OBX[2]-5.5"]
    assert base64.b64decode(rtf["data"]).startswith(b"{\\rtf1")
    plain = report["presentedForm"][1]
    assert plain["contentType"].startswith("text/plain")
    assert "CLINICAL HISTORY: Cough for 3 weeks." in base64.b64decode(plain["data"]).decode()
    assert report["conclusion"].startswith("CLINICAL HISTORY: Cough for 3 weeks.\nTECHNIQUE:")
    assert "IMPRESSION: No acute cardiopulmonary abnormality." in report["conclusion"]
    # The reading radiologist: this sender puts her in OBR-33 (OBR-32 is empty).
    (interpreter,) = report["resultsInterpreter"]
    assert interpreter["display"] == "Dr Sarah Smith"
    practitioners = {p["identifier"][0]["value"]: p for p in resources(bundle, "Practitioner")}
    assert practitioners["5678"]["name"] == [
        {"family": "Smith", "given": ["Sarah"], "prefix": ["Dr"]}
    ]
    assert report["effectiveDateTime"] == "2025-08-18T09:00:00Z"
    assert report["issued"] == "2025-08-18T16:00:00Z"
    assert report["category"][0]["coding"][0]["code"] == "RX"
    # The report's ServiceRequest is only ensured, on the same key as the ORM's.
    (request,) = entries(bundle, "ServiceRequest")
    assert request["request"]["ifNoneExist"] == "identifier=urn:hl7v2:authority:AXIS|ACC001"
    assert report["basedOn"] == [{"reference": request["fullUrl"]}]
    assert request["resource"]["identifier"][2]["type"]["coding"][0]["code"] == "ACSN"
    (status,) = resources(bundle, "Observation")
    assert status["valueString"] == "REPORT_COMPLETE"


def test_report_lands_on_the_order_whichever_arrives_first() -> None:
    orm = mapping.to_fhir(radiology("orm_o01_v25_new_order.hl7"))
    oru_bundle = mapping.to_fhir(radiology("oru_r01_v25_rtf_report.hl7"))
    (order,) = entries(orm, "ServiceRequest")
    (stub,) = entries(oru_bundle, "ServiceRequest")
    assert order["request"]["url"].split("?", 1)[1] == stub["request"]["ifNoneExist"]
    assert order["fullUrl"] == stub["fullUrl"]
    for first, second in (("orm", "oru"), ("oru", "orm")):
        store = MemoryStore()
        bundles = {"orm": orm, "oru": oru_bundle}
        store.transaction(bundles[first])
        store.transaction(bundles[second])
        store.transaction(bundles[first])  # a replay
        (request,) = store.all("ServiceRequest")
        (report,) = store.all("DiagnosticReport")
        assert report["basedOn"] == [{"reference": f"ServiceRequest/{request['id']}"}]
        assert len(store.all("Patient")) == 1
        assert len(store.all("Observation")) == 1
        # The ORM is the source of truth for the order: its details win over the stub.
        assert request["priority"] == "routine"


def test_text_report_lines_are_one_observation_and_the_conclusion() -> None:
    bundle = mapping.to_fhir(radiology("oru_r01_v23_text_report.hl7"))
    (report,) = resources(bundle, "DiagnosticReport")
    (observation,) = resources(bundle, "Observation")  # two TX lines of one observation
    expected = (
        "Normal study with no significant findings.\nLungs are clear.\n"
        "Impression: no acute abnormality. Incidental 4 mm nodule RUL & follow-up in 12 months."
    )
    assert observation["valueString"] == expected
    assert report["conclusion"] == expected
    # This sender shifted OBR-24/25 one to the left: CT in OBR-23, F in OBR-24.
    assert report["status"] == "final"
    assert report["category"][0]["coding"][1] == {
        "system": "http://dicom.nema.org/resources/ontology/DCM",
        "code": "CT",
        "display": "Computed Tomography",
    }


def test_zsegment_rule_makes_the_imaging_study() -> None:
    profile = mapping.MappingProfile(
        z_segments=(mapping.ZSegmentRule("ZDS-1.1", "ImagingStudy.identifier"),)
    )
    bundle = mapping.to_fhir(radiology("oru_r01_v251_zsegment_utf8.hl7"), profile)
    (entry,) = entries(bundle, "ImagingStudy")
    study = entry["resource"]
    uid = "urn:oid:1.2.840.113619.2.55.3.604688119.969.1268071029.320"
    assert study["identifier"][0] == {"system": "urn:dicom:uid", "value": uid}
    assert study["identifier"][1]["value"] == "NS-ACC-55"  # the accession beside it
    assert study["status"] == "available"
    assert entry["request"]["method"] == "PUT"
    (request,) = entries(bundle, "ServiceRequest")
    (patient,) = entries(bundle, "Patient")
    assert study["basedOn"] == [{"reference": request["fullUrl"]}]
    assert study["subject"] == {"reference": patient["fullUrl"]}
    assert study["modality"] == [
        {
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "US",
            "display": "Ultrasound",
        }
    ]
    assert patient["resource"]["name"][0]["family"] == "Chalmérs"
    (report,) = resources(bundle, "DiagnosticReport")
    assert report["conclusion"].startswith(
        "Liver normal in size and echotexture.\nGallbladder: 8 mm"
    )
    without_rule = mapping.to_fhir(radiology("oru_r01_v251_zsegment_utf8.hl7"))
    assert not resources(without_rule, "ImagingStudy")


def test_zsegment_rule_rejects_a_value_that_is_not_a_uid() -> None:
    message = radiology("oru_r01_v251_zsegment_utf8.hl7")
    message["ZDS-1.1"] = "not-a-uid"
    profile = mapping.MappingProfile(
        z_segments=(mapping.ZSegmentRule("ZDS-1.1", "ImagingStudy.identifier"),)
    )
    with pytest.raises(MappingError) as info:
        mapping.to_fhir(message, profile)
    assert info.value.location == "ZDS-1.1"


def test_zsegment_rules_for_order_and_patient_identifiers() -> None:
    profile = mapping.MappingProfile(
        z_segments=(
            mapping.ZSegmentRule("ZDS-1.1", "ServiceRequest.identifier"),
            mapping.ZSegmentRule("ZDS-1.2", "Patient.identifier", system="urn:example:pacs"),
        )
    )
    bundle = mapping.to_fhir(radiology("oru_r01_v251_zsegment_utf8.hl7"), profile)
    (request,) = resources(bundle, "ServiceRequest")
    assert request["identifier"][-1]["system"] == "urn:dicom:uid"
    (patient,) = resources(bundle, "Patient")
    assert patient["identifier"][-1] == {"system": "urn:example:pacs", "value": "PACS"}


# -- observation values ------------------------------------------------------------------

LAB = [
    "ORC|RE|ORD1^EHR|FIL1^LIS||CM",
    "OBR|1|ORD1^EHR|FIL1^LIS|24325-3^Hepatic panel^LN|||20250301083000|20250301090000||||||||"
    "123^Welby^Marcus^^^Dr||||||20250301113000||CH|F|||||||555&Path&Ann&&&Dr",
    "NTE|1|L|Report comment",
    "OBX|1|NM|2885-2^Protein^LN||6.80|g/dL^g/dL^UCUM|6.0-8.3|N|||F|||20250301084500|||MTH^Method^L",
    "OBX|2|NM|1975-2^Bilirubin^LN||1.6|mg/dl|<1.2|H|||C",
    "NTE|1||Repeat advised",
    "NTE|2||Sample slightly haemolysed",
    "OBX|3|NM|2345-7^Glucose^LN||<5|mmol/L|>3.9|LL|||F",
    "OBX|4|SN|1554-5^Glucose^LN||>^10|mmol/l||A|||P",
    "OBX|5|SN|5048-4^ANA titer^LN||^1^:^128||||||F",
    "OBX|6|SN|X1^Range^L||^10^-^20|%|||||F",
    "OBX|7|SN|X2^Plus^L||^2^+||||||F",
    "OBX|8|ST|X3^Comment^L||Specimen received \\T\\ processed||||||F",
    "OBX|9|FT|X4^Narrative^L||First line\\.br\\Second line||||||F",
    "OBX|10|CWE|600-7^Culture^LN||27268008^Salmonella^SCT^^^^^^Salmonella species||||||F",
    "OBX|11|DT|X5^Collected^L||20250228||||||F",
    "OBX|12|TS|X6^Received^L||202503010915+1000||||||F",
    "OBX|13|TM|57715-5^Time of birth^LN||1318||||||F",
    "OBX|14|NM|8867-4^Heart rate^LN||60~120|beats/min|||||F",
    "OBX|15|CE|X7^Cancelled test^L||||||||X",
    "OBX|16|NM|X8^Deleted^L||5|mg|||||D",
    "OBX|17|NM|X9^Verified^L||7||||||F" + "|" * 12 + "Acme Lab^L^^^^CLIA&2.16.840.1.113883.4.7&ISO"
    "^XX^^^05D1234567|1 Lab St^^Springfield^IL^62701",
]


def _lab_bundle(profile: mapping.MappingProfile | None = None) -> Json:
    return mapping.to_fhir(oru(*LAB), profile)


def _by_code(bundle: Json) -> dict[str, Json]:
    return {o["code"]["coding"][-1]["code"]: o for o in resources(bundle, "Observation")}


def test_observation_values_by_type() -> None:
    observations = _by_code(_lab_bundle())
    ucum = "http://unitsofmeasure.org"
    assert observations["2885-2"]["valueQuantity"] == {
        "value": 6.8,
        "unit": "g/dL",
        "system": ucum,
        "code": "g/dL",
    }
    # Not declared UCUM, written as senders do: recognised and coded.
    assert observations["1975-2"]["valueQuantity"] == {
        "value": 1.6,
        "unit": "mg/dl",
        "system": ucum,
        "code": "mg/dL",
    }
    assert observations["2345-7"]["valueQuantity"]["comparator"] == "<"
    assert observations["1554-5"]["valueQuantity"] == {
        "value": 10,
        "unit": "mmol/l",
        "system": ucum,
        "code": "mmol/L",
        "comparator": ">",
    }
    assert observations["5048-4"]["valueRatio"] == {
        "numerator": {"value": 1},
        "denominator": {"value": 128},
    }
    assert observations["X1"]["valueRange"]["low"] == {
        "value": 10,
        "unit": "%",
        "system": ucum,
        "code": "%",
    }
    assert observations["X2"]["valueString"] == "2+"
    assert observations["X3"]["valueString"] == "Specimen received & processed"
    assert observations["X4"]["valueString"] == "First line\nSecond line"
    assert observations["600-7"]["valueCodeableConcept"] == {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "27268008", "display": "Salmonella"}
        ],
        "text": "Salmonella species",
    }
    assert observations["X5"]["valueDateTime"] == "2025-02-28"
    assert observations["X6"]["valueDateTime"] == "2025-03-01T09:15:00+10:00"
    assert observations["57715-5"]["valueTime"] == "13:18:00"
    heart = observations["8867-4"]
    assert [c["valueQuantity"]["value"] for c in heart["component"]] == [60, 120]
    assert heart["component"][0]["valueQuantity"]["code"] == "/min"
    assert "valueQuantity" not in heart


def test_observation_details() -> None:
    bundle = _lab_bundle()
    observations = _by_code(bundle)
    protein = observations["2885-2"]
    assert protein["referenceRange"] == [
        {
            "text": "6.0-8.3",
            "low": {
                "value": 6.0,
                "unit": "g/dL",
                "system": "http://unitsofmeasure.org",
                "code": "g/dL",
            },
            "high": {
                "value": 8.3,
                "unit": "g/dL",
                "system": "http://unitsofmeasure.org",
                "code": "g/dL",
            },
        }
    ]
    assert protein["interpretation"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        "code": "N",
        "display": "Normal",
    }
    assert protein["effectiveDateTime"] == "2025-03-01T08:45:00Z"  # OBX-14
    assert protein["method"]["coding"][0]["code"] == "MTH"
    assert protein["category"][0]["coding"][0]["code"] == "laboratory"
    bilirubin = observations["1975-2"]
    assert bilirubin["status"] == "corrected"
    assert bilirubin["effectiveDateTime"] == "2025-03-01T08:30:00Z"  # OBR-7
    assert bilirubin["referenceRange"][0]["high"]["value"] == 1.2
    assert [n["text"] for n in bilirubin["note"]] == [
        "Repeat advised",
        "Sample slightly haemolysed",
    ]
    assert observations["2345-7"]["referenceRange"][0]["low"]["value"] == 3.9
    assert observations["2345-7"]["interpretation"][0]["coding"][0]["code"] == "LL"
    assert observations["1554-5"]["status"] == "preliminary"
    cancelled = observations["X7"]
    assert cancelled["status"] == "cancelled"
    assert cancelled["dataAbsentReason"]["coding"][0]["code"] == "not-performed"
    assert observations["X8"]["status"] == "entered-in-error"
    lab = observations["X9"]["performer"][0]
    organizations = {o["name"]: o for o in resources(bundle, "Organization")}
    assert organizations["Acme Lab"]["identifier"][0] == {
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "XX"}]
        },
        "system": "urn:oid:2.16.840.1.113883.4.7",
        "value": "05D1234567",
    }
    assert organizations["Acme Lab"]["address"][0]["city"] == "Springfield"
    assert lab["display"] == "Acme Lab"


def test_report_details() -> None:
    bundle = _lab_bundle()
    (report,) = resources(bundle, "DiagnosticReport")
    assert report["effectivePeriod"] == {
        "start": "2025-03-01T08:30:00Z",
        "end": "2025-03-01T09:00:00Z",
    }
    assert report["issued"] == "2025-03-01T11:30:00Z"
    assert report["resultsInterpreter"][0]["display"] == "Dr Ann Path"
    assert len(report["result"]) == 17
    assert report["conclusion"] == "First line\nSecond line"  # the FT narrative
    assert report["extension"][0]["valueAnnotation"] == {"text": "Report comment"}
    assert {p["resource"]["resourceType"] for p in bundle["entry"]} >= {
        "Patient",
        "ServiceRequest",
        "DiagnosticReport",
        "Observation",
        "Practitioner",
        "Organization",
    }


def test_profile_code_maps_apply_to_results() -> None:
    profile = mapping.MappingProfile(
        code_maps={
            "L": {"X3": mapping.CodeMapping("http://loinc.org", "8251-1", "Service comment")}
        }
    )
    observations = {
        o["code"]["coding"][-1]["code"]: o for o in resources(_lab_bundle(profile), "Observation")
    }
    assert observations["X3"]["code"]["coding"] == [
        {"system": "http://loinc.org", "code": "8251-1", "display": "Service comment"},
        {"system": "urn:hl7v2:codesystem:L", "code": "X3", "display": "Comment"},
    ]


@pytest.mark.parametrize(
    ("segment", "location"),
    [
        ("OBX|1|NM|X^Bad number^L||abc||||||F", "OBX-5"),
        ("OBX|1|NM|X^Bad number^L||1,5||||||F", "OBX-5"),
        ("OBX|1|SN|X^Bad SN^L||^1^:^x||||||F", "OBX-5.4"),
        ("OBX|1|DT|X^Bad date^L||20250231||||||F", "OBX-5"),
        ("OBX|1|TM|X^Bad time^L||2575||||||F", "OBX-5"),
        ("OBX|1|ST|X^Bad status^L||text||||||Q", "OBX-11"),
        ("OBX|1|ST|||orphan value||||||F", "OBX-3"),
        ("OBX|1|ED|X^Bad document^L||^TEXT^RTF^Base64^***||||||F", "OBX-5.5"),
    ],
)
def test_bad_values_are_mapping_errors_with_a_location(segment: str, location: str) -> None:
    message = oru("OBR|1|ORD1^EHR||X^Test^L|||20250301||||||||||||||||||F", segment)
    with pytest.raises(MappingError) as info:
        mapping.to_fhir(message)
    assert info.value.location == location


def test_the_location_names_the_obx_occurrence() -> None:
    message = oru(
        "OBR|1|ORD1^EHR||X^Test^L|||20250301||||||||||||||||||F",
        "OBX|1|NM|A^Fine^L||1||||||F",
        "OBX|2|NM|B^Not a number^L||abc||||||F",
    )
    with pytest.raises(MappingError) as info:
        mapping.to_fhir(message)
    assert info.value.location == "OBX[2]-5"


@pytest.mark.parametrize(
    ("status", "expected"),
    [("F", "final"), ("P", "preliminary"), ("C", "corrected"), ("A", "partial"), ("X", "cancelled"),
     ("I", "registered"), ("O", "registered"), ("S", "registered"), ("R", "partial")],
)  # fmt: skip
def test_report_status(status: str, expected: str) -> None:
    message = oru(f"OBR|1|ORD1^EHR||X^Test^L|||20250301||||||||||||||||||{status}")
    (report,) = resources(mapping.to_fhir(message), "DiagnosticReport")
    assert report["status"] == expected


def test_report_status_errors_and_derivation() -> None:
    for code in ("Y", "Q"):
        message = oru(f"OBR|1|ORD1^EHR||X^Test^L|||20250301||||||||||||||||||{code}")
        with pytest.raises(MappingError) as info:
            mapping.to_fhir(message)
        assert info.value.location == "OBR-25"
    mixed = oru(
        "OBR|1|ORD1^EHR||X^Test^L|||20250301",
        "OBX|1|NM|A^One^L||1||||||F",
        "OBX|2|NM|B^Two^L||2||||||P",
    )
    (report,) = resources(mapping.to_fhir(mixed), "DiagnosticReport")
    assert report["status"] == "partial"
    with pytest.raises(MappingError) as missing:
        mapping.to_fhir(oru("OBR|1|ORD1^EHR|||||20250301"))
    assert missing.value.location == "OBR-4"


def test_hex_and_pdf_documents() -> None:
    message = oru(
        "OBR|1|ORD1^EHR||X^Test^L|||20250301||||||||||||||||||F",
        "OBX|1|ED|PDF^Report^L||LAB^application^pdf^Hex^255044462D312E34||||||F",
        "OBX|2|RP|IMG^Images^L||https://pacs.example/study/1^PACS^IM^JPEG||||||F",
    )
    (report,) = resources(mapping.to_fhir(message), "DiagnosticReport")
    pdf, link = report["presentedForm"]
    assert pdf == {"contentType": "application/pdf", "data": "JVBERi0xLjQ=", "title": "Report"}
    assert link == {
        "contentType": "image/jpeg",
        "url": "https://pacs.example/study/1",
        "title": "Images",
    }
    assert "conclusion" not in report


def test_results_interpreter_sent_as_xcn() -> None:
    message = oru("OBR|1|ORD1^EHR||X^Test^L|||20250301||||||||||||||||||F||||||||77^Reader^Rita")
    (report,) = resources(mapping.to_fhir(message), "DiagnosticReport")
    assert report["resultsInterpreter"][0]["display"] == "Rita Reader"


def test_repeated_codes_get_distinct_stable_keys() -> None:
    message = oru(
        "OBR|1|ORD1^EHR||X^Test^L|||20250301||||||||||||||||||F",
        "OBX|1|CE|57719-7^Conditions^LN|1|A^One^L||||||F",
        "OBX|2|CE|57719-7^Conditions^LN|2|B^Two^L||||||F",
        "OBX|3|CE|57719-7^Conditions^LN||C^Three^L||||||F",
        "OBX|4|CE|57719-7^Conditions^LN||D^Four^L||||||F",
    )
    bundle = mapping.to_fhir(message)
    urls = [e["request"]["url"] for e in entries(bundle, "Observation")]
    assert len(set(urls)) == 4
    assert urls[0].endswith("ORD1%2F57719-7%2F1")
    assert urls[2].endswith("ORD1%2F57719-7%233")  # set id appended only when needed


def test_orders_sharing_a_number_get_distinct_keys() -> None:
    message = oru(
        "ORC|RE|F1^FORM",
        "OBR|1|F1^FORM||54089-8^Panel^LN|||20250301||||||||||||||||||F",
        "OBR|2|F1^FORM||57128-1^Summary^LN|||20250301||||||||||||||||||F",
        "OBX|1|ST|X^Comment^L||text||||||F",
    )
    bundle = mapping.to_fhir(message)
    urls = sorted(e["request"]["url"] for e in entries(bundle, "DiagnosticReport"))
    assert urls == [
        "DiagnosticReport?identifier=urn:hl7v2:authority:LAB:order-item|F1%2F54089-8",
        "DiagnosticReport?identifier=urn:hl7v2:authority:LAB:order-item|F1%2F57128-1",
    ]
    assert len(entries(bundle, "ServiceRequest")) == 2


def test_two_patients_in_one_message_are_refused() -> None:
    message = v2.parse(HEADER + PATIENT + "OBR|1|A||X^T^L\r" + PATIENT + "OBR|1|B||X^T^L\r")
    with pytest.raises(MappingError) as info:
        mapping.to_fhir(message)
    assert info.value.location == "PID[2]"


def test_replaying_a_message_gives_the_same_bundle() -> None:
    for message in (radiology("oru_r01_v25_rtf_report.hl7"), oru(*LAB)):
        first = json.dumps(mapping.to_fhir(message), sort_keys=True)
        assert json.dumps(mapping.to_fhir(message), sort_keys=True) == first
    store = MemoryStore()
    for _ in range(3):
        store.transaction(mapping.to_fhir(oru(*LAB)))
    assert len(store.all("Observation")) == 17
    assert len(store.all("DiagnosticReport")) == 1


@pytest.mark.parametrize("kind", ["oru_lab", "oru_rad"])
@pytest.mark.parametrize("version", ["2.3", "2.5.1"])
def test_generated_results_map_and_validate(kind: str, version: str) -> None:
    for seed in range(25):
        bundle = mapping.to_fhir(v2.generate(kind, version=version, seed=seed))
        assert validate_resource(bundle) == []
        (report,) = resources(bundle, "DiagnosticReport")
        assert report["result"] and report["status"] == "final"
        if kind == "oru_rad":
            assert "IMPRESSION" in report["conclusion"]
            assert report["presentedForm"][0]["contentType"] == "application/rtf"


def test_ucum_recogniser() -> None:
    assert ucum_code("10*3/uL") == "10*3/uL"
    assert ucum_code("mL/min/{1.73_m2}") == "mL/min/{1.73_m2}"
    assert ucum_code("kg/m2") == "kg/m2"
    assert ucum_code("mm[Hg]") == "mm[Hg]"
    assert ucum_code("tera.l-1") is None
    assert ucum_code("per high power field") is None


def test_every_corpus_oru_maps_or_fails_with_a_location(capsys: pytest.CaptureFixture[str]) -> None:
    outcomes: Counter[str] = Counter()
    failures = []
    for path in hl7_files():
        try:
            messages = v2.parse_batch(path.read_bytes())
        except ParseError:
            continue
        for message in messages:
            if f"{message.message_type}^{message.trigger_event}" != "ORU^R01":
                continue
            try:
                bundle = mapping.to_fhir(message)
            except MappingError as exc:
                assert exc.location, f"{relative(path)}: {exc}"
                outcomes["refused"] += 1
                failures.append(f"{relative(path)}: {exc}")
                continue
            assert resources(bundle, "DiagnosticReport"), relative(path)
            outcomes["mapped"] += 1
    with capsys.disabled():
        print(
            f"\nORU^R01 corpus: {outcomes['mapped']} mapped and valid, {outcomes['refused']} refused"
        )
        for failure in failures:
            print(f"  refused {failure}")
    assert outcomes["mapped"] >= 70
    assert outcomes["refused"] <= 6
