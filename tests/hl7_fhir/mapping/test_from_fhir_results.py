"""FHIR R4 -> HL7 v2: DiagnosticReport + Observations + presentedForm -> ORU^R01."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hl7_fhir.errors import MappingError

from .fhir_samples import (
    Json,
    build,
    bundle_resources,
    fhir_example,
    patient,
    practitioner,
    service_request,
    typed,
    with_resources,
)

# -- ORU -----------------------------------------------------------------------------

RTF = b"{\\rtf1\\ansi{\\fonttbl{\\f0 Arial;}}\\f0 FINDINGS: Clear lungs.\\par}"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"


def observation(ident: str, code: str, **value: Any) -> Json:
    return {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2025-08-18T09:30:00+10:00",
        **value,
    }


def report(**extra: Any) -> Json:
    return {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "status": "final",
        "identifier": [typed("FILL", "urn:hl7v2:authority:LIS", "LAB-9")],
        "basedOn": [{"reference": "ServiceRequest/sr1"}],
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "CH"}]}
        ],
        "code": {"coding": [{"system": LOINC, "code": "24331-1", "display": "Lipid panel"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2025-08-18T09:30:00+10:00",
        "issued": "2025-08-18T16:00:00+10:00",
        "resultsInterpreter": [{"reference": "Practitioner/dr-5678"}],
        "result": [{"reference": f"Observation/o{n}"} for n in range(1, 8)],
        "presentedForm": [
            {"contentType": "application/rtf", "data": base64.b64encode(RTF).decode()},
            {"contentType": "text/plain", "data": base64.b64encode(b"Clear lungs.").decode()},
            {"contentType": "application/pdf", "url": "https://reports.example/r1.pdf"},
        ],
        **extra,
    }


def results() -> list[Json]:
    range_ = [{"low": {"value": 4.0}, "high": {"value": 5.5}}]
    flag = [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    "code": "H",
                }
            ]
        }
    ]
    return [
        observation(
            "o1",
            "2093-3",
            valueQuantity={
                "value": 5.90,
                "unit": "mmol/L",
                "system": UCUM,
                "code": "mmol/L",
            },
            referenceRange=range_,
            interpretation=flag,
            note=[{"text": "Fasting"}],
        ),
        observation(
            "o2", "2571-8", valueQuantity={"value": 0.00001, "comparator": "<", "unit": "g/L"}
        ),
        observation(
            "o3",
            "600-7",
            valueCodeableConcept={
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "3092008",
                        "display": "Staphylococcus aureus",
                    }
                ]
            },
        ),
        observation("o4", "8251-1", valueString="Line one|with a bar\nLine two"),
        observation("o5", "33882-2", valueDateTime="2025-08-18T08:00:00Z", status="corrected"),
        observation("o6", "8310-5", valueRange={"low": {"value": 36.5}, "high": {"value": 37}}),
        observation(
            "o7",
            "29463-7",
            valueString="Short text",
            status="preliminary",
            referenceRange=[{"text": "normal"}],
        ),
    ]


def test_report_to_oru() -> None:
    resources = [patient(), practitioner(), practitioner("5678", "Smith"), service_request()]
    msg = build([*resources, report(), *results()], "ORU^R01")
    assert msg["MSH-9"] == "ORU^R01^ORU_R01"
    assert (msg["ORC-1"], msg["ORC-2"], msg["ORC-3"], msg["ORC-5"]) == (
        "RE",
        "ORD001^EHR",
        "F-77^RIS",
        "CM",
    )
    assert (msg["OBR-2"], msg["OBR-3"], msg["OBR-18"]) == ("ORD001^EHR", "F-77^RIS", "ACC001")
    assert (msg["OBR-4"], msg["OBR-7"], msg["OBR-22"]) == (
        "24331-1^Lipid panel^LN",
        "20250818093000+1000",
        "20250818160000+1000",
    )
    assert (msg["OBR-24"], msg["OBR-25"], msg["OBR-16"]) == ("CH", "F", msg["ORC-12"])
    assert msg["OBR-32"] == "5678&Smith&Peter&&&Dr&MBBS&&AUSHICPR"
    assert msg["OBR-27"] == "^^^20250818090000+1000^^S"
    obx = msg.segments("OBX")
    assert [o[2] for o in obx] == ["NM", "SN", "CWE", "TX", "DTM", "SN", "ST", "ED", "ED", "RP"]
    assert [o[1] for o in obx] == [str(n) for n in range(1, 11)]
    assert (msg["OBX-3"], msg["OBX-5"], msg["OBX-6"]) == ("2093-3^^LN", "5.9", "mmol/L^mmol/L^UCUM")
    assert (msg["OBX-7"], msg["OBX-8"], msg["OBX-11"], msg["OBX-14"]) == (
        "4.0-5.5",
        "H",
        "F",
        "20250818093000+1000",
    )
    assert msg["NTE-3"] == "Fasting"
    assert (msg["OBX[2]-5"], msg["OBX[2]-6"]) == ("<^0.00001", "g/L")
    assert msg["OBX[3]-5"] == "3092008^Staphylococcus aureus^SCT"
    assert [r.value for r in obx[3].field(5)] == ["Line one|with a bar", "Line two"]
    assert (msg["OBX[5]-5"], msg["OBX[5]-11"]) == ("20250818080000+0000", "C")
    assert msg["OBX[6]-5"] == "^36.5^-^37"
    assert (msg["OBX[7]-5"], msg["OBX[7]-7"], msg["OBX[7]-11"]) == ("Short text", "normal", "P")
    rtf, text, pdf = obx[7:]
    assert rtf.get(5, 1, 2) + "/" + rtf.get(5, 1, 3) == "application/rtf"
    assert base64.b64decode(rtf.get(5, 1, 5)) == RTF
    assert (rtf.get(3, 1, 1), rtf.get(11)) == ("24331-1", "F")
    assert (text.get(5, 1, 2), text.get(5, 1, 3), text.get(5, 1, 4)) == ("text", "plain", "Base64")
    assert pdf.get(5) == "https://reports.example/r1.pdf^^application^pdf"


def test_oru_in_version_2_3() -> None:
    resources = [patient(), practitioner("5678", "Smith"), service_request()]
    msg = build([*resources, report(), *results()], "ORU^R01", version="2.3")
    assert msg["MSH-9"] == "ORU^R01"
    assert [o[2] for o in msg.segments("OBX")][:5] == ["NM", "SN", "CE", "TX", "TS"]


def test_report_numbers_without_a_service_request() -> None:
    alone = report(
        basedOn=[{"identifier": typed("PLAC", "urn:hl7v2:authority:EHR", "ORD9")}],
        identifier=[{"system": "urn:hl7v2:authority:LIS", "value": "LAB-9"}],
        resultsInterpreter=[{"display": "Dr Sarah Smith"}],
        result=[{"reference": "Observation/o1"}],
        presentedForm=[],
        conclusion="Normal lipids.\nNo action.",
    )
    msg = build([patient(), alone, results()[0]], "ORU^R01")
    assert (msg["OBR-2"], msg["OBR-3"], msg["OBR-18"]) == ("ORD9^EHR", "LAB-9^LIS", "")
    assert msg["OBR-32"] == "&Dr Sarah Smith"
    assert msg["NTE-3"] == "Normal lipids.~No action."
    assert msg.segments()[-2].name == "OBX"  # the conclusion NTE follows the OBR


def test_panels_and_components() -> None:
    panel = observation("panel", "85354-9", hasMember=[{"reference": "Observation/o1"}])
    pressure = observation(
        "bp",
        "85354-9",
        component=[
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 120, "unit": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": 80, "unit": "mm[Hg]"},
            },
        ],
    )
    bundle = report(result=[{"reference": "Observation/panel"}, {"reference": "Observation/bp"}])
    del bundle["presentedForm"]
    msg = build([patient(), bundle, panel, pressure, results()[0]], "ORU^R01")
    rows = [(o[1], o[3].split("^")[0], o[4], o[5]) for o in msg.segments("OBX")]
    assert rows == [
        ("1", "2093-3", "", "5.9"),
        ("2", "8480-6", "1", "120"),
        ("3", "8462-4", "1", "80"),
    ]


def test_results_that_cannot_be_sent() -> None:
    missing = report(result=[{"reference": "Observation/nowhere"}])
    with pytest.raises(MappingError) as caught:
        build([patient(), missing], "ORU^R01")
    assert caught.value.location == "DiagnosticReport.result[0]"
    sampled = observation(
        "o1", "1", valueSampledData={"origin": {"value": 0}, "period": 1, "dimensions": 1}
    )
    with pytest.raises(MappingError) as caught:
        build([patient(), report(result=[{"reference": "Observation/o1"}]), sampled], "ORU^R01")
    assert caught.value.location == "DiagnosticReport.result[0].valueSampledData"
    unknown = observation("o1", "1", status="unknown", valueString="x")
    with pytest.raises(MappingError, match="OBX-11"):
        build([patient(), report(result=[{"reference": "Observation/o1"}]), unknown], "ORU^R01")
    with pytest.raises(MappingError, match="no DiagnosticReport"):
        build([patient(), *results()], "ORU^R01")


def test_two_patients_make_two_patient_groups() -> None:
    other = patient(id="p2", identifier=[typed("MR", "urn:hl7v2:authority:AXIS", "P002")])
    first = report(basedOn=[], result=[], presentedForm=[])
    second = report(
        id="r2", subject={"reference": "Patient/p2"}, basedOn=[], result=[], presentedForm=[]
    )
    msg = build([patient(), other, first, second], "ORU^R01")
    assert [s.name for s in msg.segments()] == ["MSH", "PID", "ORC", "OBR", "PID", "ORC", "OBR"]
    assert (msg["PID[2]-3.1"], msg["OBR[2]-1"]) == ("P002", "2")


def test_public_diagnostic_report_example_as_oru() -> None:
    example = fhir_example("diagnosticreport-example.json")
    source = bundle_resources(example, "DiagnosticReport")[0]
    subject = patient(id="pat2")
    msg = build(with_resources(example, subject), "ORU^R01")
    assert (
        msg["OBR-4"]
        == "58410-2^Complete blood count (hemogram) panel - Blood by Automated count^LN^CBC^MASTER FULL BLOOD COUNT"
    )
    assert (msg["OBR-25"], msg["OBR-24"], msg["OBR-3"]) == (
        "F",
        "HM",
        "5234342^^http://acme.com/lab/reports^URI",
    )
    observations = bundle_resources(example, "Observation")
    values = [o for o in msg.segments("OBX") if o[2] != "ED"]
    assert len(values) == len(observations) == len(source["result"])
    assert (values[0][5], values[0][6], values[0][7]) == ("176", "g/L^g/L^UCUM", "135-180")
    assert values[2][8] == "H"
    (form,) = [o for o in msg.segments("OBX") if o[2] == "ED"]
    assert form.get(5, 1, 5) == source["presentedForm"][0]["data"]
